import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as automation from "@pulumi/pulumi/automation/index.js";
import {
  type DestroyOptions,
  type EngineEvent,
  type OpType,
  type OutputMap,
  type PreviewOptions,
  type UpOptions,
} from "@pulumi/pulumi/automation/index.js";
import { runPipeline, type DriverDeps } from "../src/driver/run.ts";
import { JiraImagesError } from "../src/errors.ts";
import type { StackHandle, StackRequest } from "../src/driver/workspace.ts";
import { runPromote } from "../src/driver/promote-command.ts";

/**
 * `createCommandError` and `CommandResult` are exported at runtime but marked @internal (absent
 * from the .d.ts). The tests use them so that a failure is classified (StackNotFoundError,
 * ConcurrentUpdateError, ...) by Pulumi's own code from the CLI's stderr, as in a real run.
 */
const internals = automation as unknown as {
  createCommandError(result: unknown): Error;
  CommandResult: new (stdout: string, stderr: string, code: number, err?: Error) => unknown;
};
const cliFailure = (stderr: string, code = 255, err?: Error): Error =>
  internals.createCommandError(new internals.CommandResult("", stderr, code, err));

const COMMAND = "command:local:Command";
const urnOf = (name: string): string => `urn:pulumi:dev::jira-images::jira-images:pipeline:ImagePipeline$jira-images:pipeline:ImageStage$${COMMAND}::${name}-build`;
const stdoutOf = (stage: string, amiId: string): string =>
  `${JSON.stringify({ stage, amiId, region: "eu-west-1", amis: { "eu-west-1": amiId }, logFile: `/p/.packer-logs/${stage}/run.log` })}\n`;

let sequence = 0;
function stepEvent(kind: "resourcePreEvent" | "resOutputsEvent", name: string, op: OpType, extra: { oldTriggers?: string[]; newTriggers?: string[]; stdout?: string; oldStdout?: string; planning?: boolean }): EngineEvent {
  const urn = urnOf(name);
  const state = (triggers: string[] | undefined, stdout: string | undefined) => ({
    type: COMMAND, urn, id: name, parent: "", provider: "", inputs: { triggers: triggers ?? [] }, outputs: stdout === undefined ? {} : { stdout },
  });
  return {
    sequence: sequence++,
    timestamp: 0,
    [kind]: {
      metadata: {
        op, urn, type: COMMAND, provider: "",
        ...(extra.oldTriggers || extra.oldStdout ? { old: state(extra.oldTriggers, extra.oldStdout) } : {}),
        new: state(extra.newTriggers, extra.stdout),
      },
      ...(extra.planning ? { planning: true } : {}),
    },
  };
}
const failed = (name: string): EngineEvent => ({ sequence: sequence++, timestamp: 0, resOpFailedEvent: { metadata: { op: "create-replacement", urn: urnOf(name), type: COMMAND, provider: "" }, status: 1, steps: 0 } });
const diagnostic = (name: string | undefined, severity: "error" | "warning" | "info", message: string): EngineEvent => ({
  sequence: sequence++, timestamp: 0, diagnosticEvent: { ...(name ? { urn: urnOf(name) } : {}), severity, message, color: "never" },
});
const stdoutEvent = (message: string): EngineEvent => ({ sequence: sequence++, timestamp: 0, stdoutEvent: { message, color: "never" } });

const BASE_AMI = "ami-0aaaaaaaaaaaaaaa1";
const JIRA_AMI = "ami-0bbbbbbbbbbbbbbb2";
/** What Pulumi reports for dev when base is unchanged and jira's template changed. */
const UP_EVENTS: EngineEvent[] = [
  stepEvent("resourcePreEvent", "base", "same", { oldStdout: stdoutOf("base", BASE_AMI), oldTriggers: ["template=sha256:1"], newTriggers: ["template=sha256:1"] }),
  stepEvent("resourcePreEvent", "jira", "create-replacement", { oldTriggers: ["template=sha256:a", `parentAmi=${BASE_AMI}`], newTriggers: ["template=sha256:b", `parentAmi=${BASE_AMI}`] }),
  stepEvent("resOutputsEvent", "jira", "create-replacement", { newTriggers: ["template=sha256:b"], stdout: stdoutOf("jira", JIRA_AMI) }),
];

type Call = { op: "up" | "preview" | "destroy"; options: UpOptions | PreviewOptions | DestroyOptions };

interface Harness {
  deps: DriverDeps;
  requests: StackRequest[];
  calls: Call[];
  out: () => string;
  err: () => string;
  signals: EventEmitter;
}

/** The workspace layer is stubbed: a factory returning a stack whose operations replay events. */
function harness(options: {
  root: string;
  env?: NodeJS.ProcessEnv;
  run?: (call: Call, emit: (e: EngineEvent) => void, h: Harness) => Promise<void>;
  outputs?: OutputMap;
  factoryError?: Error;
  heartbeatMs?: number;
}): Harness {
  let stdout = "";
  let stderr = "";
  const signals = new EventEmitter();
  const h: Harness = {
    requests: [],
    calls: [],
    out: () => stdout,
    err: () => stderr,
    signals,
    deps: undefined as unknown as DriverDeps, // assigned just below; the stack closes over h
  };
  const operation = (op: Call["op"]) => async (opts?: UpOptions | PreviewOptions | DestroyOptions) => {
    const call = { op, options: opts ?? {} };
    h.calls.push(call);
    const emit = (event: EngineEvent) => call.options.onEvent?.(event);
    await (options.run ?? (async (c, e) => { if (c.op !== "destroy") UP_EVENTS.forEach(e); }))(call, emit, h);
    // The driver reads nothing from the result objects; the type only needs a shape.
    return {} as never;
  };
  const stack: StackHandle = {
    name: "dev",
    up: operation("up"),
    preview: operation("preview"),
    destroy: operation("destroy"),
    outputs: async () => options.outputs ?? {},
  };
  h.deps = {
    root: options.root,
    env: options.env ?? { PULUMI_CONFIG_PASSPHRASE: "test-only" },
    io: { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), stderrIsTTY: false },
    detectCli: async () => undefined,
    stackFactory: async (request) => {
      h.requests.push(request);
      if (options.factoryError) throw options.factoryError;
      return stack;
    },
    signals,
    now: Date.now,
    heartbeatMs: options.heartbeatMs ?? 60_000,
    interruptGraceMs: 20,
    plan: async () => 0,
    prune: async () => 0,
    promote: runPromote,
  };
  return h;
}

describe("driver (npm run pipeline) with the workspace layer stubbed", () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "driver-"));
    writeFileSync(join(root, "Pulumi.yaml"), "name: jira-images\nruntime: nodejs\n");
    writeFileSync(join(root, "Pulumi.dev.yaml"), "config: {}\n");
    writeFileSync(join(root, "Pulumi.prod.yaml"), "config: {}\n");
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("up: selects/creates the stack on the project folder with the local file backend and passphrase provider", async () => {
    const h = harness({ root });
    assert.equal(await runPipeline(["up", "--stack", "dev"], h.deps), 0);
    assert.equal(h.requests.length, 1);
    const request = h.requests[0]!;
    assert.equal(request.stackName, "dev");
    assert.equal(request.root, root);
    assert.equal(request.create, true);
    assert.equal(request.envVars.PULUMI_BACKEND_URL, `file://${join(root, ".pulumi-state")}`);
    assert.equal(request.secretsProvider, "passphrase");
    assert.ok(existsSync(join(root, ".pulumi-state")), "the local state folder is created");
    assert.deepEqual(h.calls.map((c) => c.op), ["up"]);
    assert.ok(h.calls[0]!.options.signal instanceof AbortSignal, "up can be cancelled");
  });

  it("up: progress and the summary table go to stderr, nothing to stdout", async () => {
    const h = harness({ root });
    assert.equal(await runPipeline(["up", "--stack", "dev"], h.deps), 0);
    assert.equal(h.out(), "");
    const err = h.err();
    assert.match(err, /\[jira\] Packer build started \(changed: template\)/);
    assert.match(err, new RegExp(`\\[jira\\] done: ${JIRA_AMI} in eu-west-1 after \\d+s`));
    assert.match(err, /^STAGE\s+RESULT\s+AMI\s+REGION\s+TIME\s+LOG$/m);
    assert.match(err, new RegExp(`^base\\s+unchanged\\s+${BASE_AMI}\\s+eu-west-1\\s+/p/.packer-logs/base/run.log$`, "m"));
    assert.match(err, new RegExp(`^jira\\s+rebuilt \\(template\\)\\s+${JIRA_AMI}\\s+eu-west-1\\s+\\d+s\\s+/p/.packer-logs/jira/run.log$`, "m"));
  });

  it("up: a running build reports its elapsed time", async () => {
    const h = harness({
      root,
      heartbeatMs: 1,
      run: async (_call, emit, hh) => {
        emit(UP_EVENTS[1]!);
        while (!hh.err().includes("[jira] Packer running, ")) await new Promise((r) => setTimeout(r, 2));
        emit(UP_EVENTS[2]!);
      },
    });
    assert.equal(await runPipeline(["up", "--stack", "dev"], h.deps), 0);
    assert.match(h.err(), /\[jira\] Packer running, \d+s/);
  });

  it("up: a failed stage shows the runner's error, the log path and FAILED in the summary (exit 1, no stack trace)", async () => {
    const runnerError =
      'exit status 1: running "exec node --import tsx src/runner/cli.ts --stage custom-dev ...":\n' +
      "stage-runner: [custom-dev] amazon-ebs.custom: Error waiting for SSH: i/o timeout\n" +
      "stage-runner: [custom-dev] Packer log: /p/.packer-logs/custom-dev/20250101T000000Z.log";
    const h = harness({
      root,
      run: async (_call, emit) => {
        emit(stepEvent("resourcePreEvent", "custom-dev", "create-replacement", { oldTriggers: ["parentAmi=ami-0ccccccccccccccc3"], newTriggers: [`parentAmi=${JIRA_AMI}`] }));
        emit(diagnostic("custom-dev", "error", runnerError));
        emit(failed("custom-dev"));
        throw cliFailure("error: update failed", 255);
      },
    });
    assert.equal(await runPipeline(["up", "--stack", "dev"], h.deps), 1);
    const err = h.err();
    assert.match(err, /\[custom-dev\] stage-runner: \[custom-dev\] amazon-ebs\.custom: Error waiting for SSH/);
    assert.match(err, /\[custom-dev\] FAILED after \d+s; Packer log: \/p\/\.packer-logs\/custom-dev\/20250101T000000Z\.log/);
    assert.match(err, /^custom-dev\s+FAILED\s+.*\/p\/\.packer-logs\/custom-dev\/20250101T000000Z\.log$/m);
    assert.match(err, /pipeline-failed: pulumi up failed \(exit code 255\)/);
    assert.doesNotMatch(err, /^\s+at /m);
    assert.equal(h.out(), "");
  });

  it("preview: asks for a diff, shows the CLI's diff and which stages would rebuild and why", async () => {
    const h = harness({
      root,
      run: async (call, emit) => {
        call.options.onOutput?.("Previewing update (dev):\n  +-  command:local:Command jira replace [diff: ~triggers]\n");
        emit(stepEvent("resourcePreEvent", "jira", "create-replacement", { planning: true, oldTriggers: ["template=sha256:a", "installer=sha256:i"], newTriggers: ["template=sha256:b", "installer=sha256:j"] }));
        emit(stepEvent("resourcePreEvent", "custom-dev", "create", { planning: true, newTriggers: ["parentAmi=04da6b54-80e4-46f7-96ec-b56ff0331ba9"] }));
      },
    });
    assert.equal(await runPipeline(["preview", "--stack", "dev"], h.deps), 0);
    assert.equal((h.calls[0]!.options as PreviewOptions).diff, true);
    const err = h.err();
    assert.match(err, /jira replace \[diff: ~triggers\]/);
    assert.match(err, /\[jira\] would rebuild \(changed: template, installer\)/);
    assert.match(err, /^jira\s+would rebuild \(template, installer\)$/m);
    assert.match(err, /^custom-dev\s+would build \(new\)$/m);
    assert.equal(h.out(), "");
  });

  it("an update of a stage command (settings only) is not reported as a Packer build", async () => {
    const h = harness({
      root,
      run: async (_call, emit) => {
        const triggers = ["template=sha256:1", `parentAmi=${BASE_AMI}`];
        emit(stepEvent("resourcePreEvent", "jira", "update", { oldTriggers: triggers, newTriggers: triggers, oldStdout: stdoutOf("jira", JIRA_AMI) }));
        emit(stepEvent("resOutputsEvent", "jira", "update", { newTriggers: triggers, stdout: stdoutOf("jira", JIRA_AMI) }));
      },
    });
    assert.equal(await runPipeline(["up", "--stack", "dev"], h.deps), 0);
    assert.doesNotMatch(h.err(), /Packer build started/);
    assert.match(h.err(), new RegExp(`^jira\\s+updated \\(no rebuild\\)\\s+${JIRA_AMI}`, "m"));
  });

  it("outputs: prints only JSON on stdout, secrets masked, and never creates a stack", async () => {
    const amiIds = { base: BASE_AMI, jira: JIRA_AMI, "custom-dev": "ami-0ddddddddddddddd4" };
    const h = harness({ root, outputs: { amiIds: { value: amiIds, secret: false }, token: { value: "s3cr3t", secret: true } } });
    assert.equal(await runPipeline(["outputs", "--stack", "dev"], h.deps), 0);
    assert.deepEqual(JSON.parse(h.out()), { amiIds, token: "[secret]" });
    assert.equal(h.err(), "");
    assert.equal(h.requests[0]!.create, false);
  });

  it("outputs of a stack that was never deployed says how to create it", async () => {
    const notFound = cliFailure("error: no stack named 'dev' found", 255);
    const h = harness({ root, factoryError: notFound });
    assert.equal(await runPipeline(["outputs", "--stack", "dev"], h.deps), 1);
    assert.match(h.err(), /pipeline-stack-missing: stack "dev" does not exist in file:\/\/.*\.pulumi-state yet; `npm run pipeline -- up --stack dev` creates it/);
    assert.equal(h.out(), "");
  });

  it("a locked stack points to pulumi cancel", async () => {
    const locked = cliFailure("error: [409] Conflict: Another update is currently in progress.", 255);
    const h = harness({ root, factoryError: locked });
    assert.equal(await runPipeline(["up", "--stack", "dev"], h.deps), 1);
    assert.match(h.err(), /pipeline-stack-locked: .*`pulumi cancel --stack dev`/);
  });

  it("destroy needs --yes and then destroys an existing stack only", async () => {
    const refused = harness({ root });
    assert.equal(await runPipeline(["destroy", "--stack", "prod"], refused.deps), 2);
    assert.match(refused.err(), /add --yes to confirm/);
    assert.equal(refused.requests.length, 0);

    const h = harness({ root });
    assert.equal(await runPipeline(["destroy", "--stack", "prod", "--yes"], h.deps), 0);
    assert.deepEqual(h.calls.map((c) => c.op), ["destroy"]);
    assert.equal(h.requests[0]!.create, false);
  });

  it("PULUMI_BACKEND_URL overrides the embedded backend (no local state folder; no passphrase for Pulumi Cloud)", async () => {
    const s3 = harness({ root, env: { PULUMI_BACKEND_URL: "s3://team-state/jira-images", PULUMI_CONFIG_PASSPHRASE_FILE: "/run/pass" } });
    assert.equal(await runPipeline(["preview", "--stack", "dev"], s3.deps), 0);
    assert.equal(s3.requests[0]!.envVars.PULUMI_BACKEND_URL, "s3://team-state/jira-images");
    assert.equal(s3.requests[0]!.secretsProvider, "passphrase");
    assert.ok(!existsSync(join(root, ".pulumi-state")));

    const cloud = harness({ root, env: { PULUMI_BACKEND_URL: "https://api.pulumi.com" } });
    assert.equal(await runPipeline(["preview", "--stack", "dev"], cloud.deps), 0);
    assert.equal(cloud.requests[0]!.secretsProvider, undefined);
  });

  it("without a passphrase for the file backend it stops before touching the stack (exit 3)", async () => {
    const h = harness({ root, env: {} });
    assert.equal(await runPipeline(["up", "--stack", "dev"], h.deps), 3);
    assert.match(h.err(), /pipeline-passphrase: .*PULUMI_CONFIG_PASSPHRASE .*PULUMI_CONFIG_PASSPHRASE_FILE/);
    assert.equal(h.requests.length, 0);
  });

  it("an unknown stack or bad arguments are usage errors (exit 2) naming the known stacks", async () => {
    const h = harness({ root });
    assert.equal(await runPipeline(["up", "--stack", "staging"], h.deps), 2);
    assert.match(h.err(), /no stack "staging": Pulumi\.staging\.yaml does not exist .*\(stacks: dev, prod\)/);
    assert.equal(h.requests.length, 0);

    // Pulumi would ignore this file (the project file is Pulumi.yaml), so it is no stack.
    writeFileSync(join(root, "Pulumi.qa.yml"), "config: {}\n");
    const yml = harness({ root });
    assert.equal(await runPipeline(["up", "--stack", "qa"], yml.deps), 2);
    assert.match(yml.err(), /no stack "qa": Pulumi\.qa\.yaml does not exist .*\(stacks: dev, prod\)/);

    const bad = harness({ root });
    assert.equal(await runPipeline(["deploy", "--stack", "dev"], bad.deps), 2);
    assert.match(bad.err(), /pipeline-usage: unknown command "deploy"/);
    assert.match(bad.err(), /usage: npm run pipeline -- <plan\|preview\|up\|destroy\|outputs[|a-z]*>/);
  });

  it("plan goes to the plan module with the stack and format, without looking for the Pulumi CLI", async () => {
    const h = harness({ root });
    const seen: unknown[] = [];
    h.deps.detectCli = async () => {
      throw new Error("plan must not need the CLI");
    };
    h.deps.plan = async (request) => {
      seen.push({ stack: request.stack, format: request.format, root: request.root });
      return 0;
    };
    assert.equal(await runPipeline(["plan", "--stack", "prod", "--format", "markdown"], h.deps), 0);
    assert.deepEqual(seen, [{ stack: "prod", format: "markdown", root }]);
  });

  it("prune goes to the prune module with its options and the backend, with no passphrase needed, and passes its exit code on", async () => {
    const h = harness({ root, env: {} });
    const seen: unknown[] = [];
    h.deps.prune = async (request) => {
      seen.push({ stack: request.stack, keep: request.keep, olderThanDays: request.olderThanDays, apply: request.apply, backend: request.envVars.PULUMI_BACKEND_URL });
      return 4;
    };
    assert.equal(await runPipeline(["prune", "--stack", "prod", "--keep", "5", "--apply"], h.deps), 4);
    assert.deepEqual(seen, [{ stack: "prod", keep: 5, olderThanDays: 30, apply: true, backend: `file://${join(root, ".pulumi-state")}` }]);
    assert.equal(h.requests.length, 0, "prune selects no stack: it reads them all");
  });

  it("prune without the Pulumi CLI gives the install message (exit 3)", async () => {
    const h = harness({ root });
    h.deps.detectCli = async () => {
      throw new JiraImagesError("pulumi-cli-missing", "no pulumi on PATH");
    };
    assert.equal(await runPipeline(["prune", "--stack", "dev"], h.deps), 3);
    assert.match(h.err(), /pulumi-cli-missing/);
  });

  it("a Pulumi CLI missing at operation time (CommandError ENOENT) gives the install message (exit 3)", async () => {
    const enoent = cliFailure("Command failed with ENOENT: pulumi preview\nspawn pulumi ENOENT", -2, new Error("spawn pulumi ENOENT"));
    const h = harness({ root, factoryError: enoent });
    assert.equal(await runPipeline(["preview", "--stack", "dev"], h.deps), 3);
    assert.match(h.err(), /pulumi-cli-missing: .*curl -fsSL https:\/\/get\.pulumi\.com \| sh/);
  });

  describe("Ctrl-C during up", () => {
    const cancelled = () => cliFailure("error: update canceled", 255);

    it("when Pulumi got the terminal's SIGINT itself, the driver does not send a second one (that would terminate it)", async () => {
      let aborted = false;
      const h = harness({
        root,
        run: async (call, emit, hh) => {
          call.options.signal?.addEventListener("abort", () => (aborted = true));
          emit(UP_EVENTS[1]!);
          // The terminal delivers SIGINT to the whole process group: Pulumi reports it and cancels.
          await new Promise<void>((resolve) => hh.signals.once("SIGINT", resolve));
          emit(stdoutEvent("^C received; cancelling. If you would like to terminate immediately, press ^C again.\n"));
          await new Promise((r) => setTimeout(r, 60)); // longer than the driver's grace period
          throw cancelled();
        },
      });
      const done = runPipeline(["up", "--stack", "dev"], h.deps);
      while (h.calls.length === 0) await new Promise((r) => setTimeout(r, 1));
      h.signals.emit("SIGINT");
      assert.equal(await done, 130);
      assert.equal(aborted, false);
      assert.match(h.err(), /pulumi: \^C received; cancelling/);
      assert.match(h.err(), /cancelled\. Finished stages are recorded/);
      assert.match(h.err(), /^jira\s+interrupted/m);
      assert.equal(h.signals.listenerCount("SIGINT"), 0);
      assert.equal(h.signals.listenerCount("SIGTERM"), 0);
    });

    it("a SIGTERM sent to the driver alone is forwarded to Pulumi through the abort signal", async () => {
      const h = harness({
        root,
        run: async (call, emit) => {
          emit(UP_EVENTS[1]!);
          await new Promise<void>((resolve) => call.options.signal?.addEventListener("abort", () => resolve()));
          throw cancelled();
        },
      });
      const done = runPipeline(["up", "--stack", "dev"], h.deps);
      while (h.calls.length === 0) await new Promise((r) => setTimeout(r, 1));
      h.signals.emit("SIGTERM");
      assert.equal(await done, 130);
      assert.match(h.err(), /interrupt received; cancelling up of "dev"/);
      assert.match(h.err(), /forwarding the interrupt to Pulumi/);
    });
  });
});
