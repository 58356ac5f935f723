import assert from "node:assert/strict";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import * as automation from "@pulumi/pulumi/automation/index.js";
import type { OutputMap } from "@pulumi/pulumi/automation/index.js";
import { parse } from "yaml";
import { tempDir } from "./helpers/temp-dir.ts";
import { runPromote, type PromoteRequest } from "../src/driver/promote-command.ts";
import { runPipeline, type DriverDeps } from "../src/driver/run.ts";
import type { StackHandle, StackRequest } from "../src/driver/workspace.ts";

const ROOT = resolve(import.meta.dirname, "..");
const BASE = "ami-0aaaaaaaaaaaaaaa1";
const JIRA = "ami-0bbbbbbbbbbbbbbb2";
const OLD_JIRA = "ami-0ddddddddddddddd4";

/** See test/driver.test.ts: Pulumi's own classification of a CLI failure (StackNotFoundError, ...). */
const internals = automation as unknown as {
  createCommandError(result: unknown): Error;
  CommandResult: new (stdout: string, stderr: string, code: number, err?: Error) => unknown;
};
const notFound = (stack: string): Error =>
  internals.createCommandError(new internals.CommandResult("", `error: no stack named '${stack}' found\n`, 255));

function outputMap(values: Record<string, unknown>): OutputMap {
  return Object.fromEntries(Object.entries(values).map(([key, value]) => [key, { value, secret: false }]));
}

/** `tests: "none"`: an image entry from before image tests existed. */
function devOutputs(tests: unknown = { passed: true, count: 14 }): Record<string, unknown> {
  return {
    amiIds: { base: BASE, jira: JIRA },
    images: {
      base: { stage: "base", amiId: BASE, amis: { "eu-west-1": BASE }, parentStage: null, parentAmi: "none", tests: { passed: true, count: 5 } },
      jira: { stage: "jira", amiId: JIRA, amis: { "eu-west-1": JIRA }, parentStage: "base", parentAmi: BASE, ...(tests === "none" ? {} : { tests }) },
    },
  };
}

/** A project folder (the real stack files) and stacks whose outputs are given; an absent stack does not exist. */
function harness(stacks: Record<string, Record<string, unknown>>, env: NodeJS.ProcessEnv = { PULUMI_CONFIG_PASSPHRASE: "test-only" }) {
  const root = tempDir("promote-");
  for (const file of ["Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"]) cpSync(join(ROOT, file), join(root, file));
  let stdout = "";
  let stderr = "";
  const requests: StackRequest[] = [];
  const deps: DriverDeps = {
    root,
    env,
    io: { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), stderrIsTTY: false },
    detectCli: async () => undefined,
    stackFactory: async (request) => {
      requests.push(request);
      const outputs = stacks[request.stackName];
      if (outputs === undefined) throw notFound(request.stackName);
      return { name: request.stackName, outputs: async () => outputMap(outputs) } as unknown as StackHandle;
    },
    signals: { on: () => undefined, off: () => undefined },
    now: Date.now,
    heartbeatMs: 60_000,
    interruptGraceMs: 20,
    plan: async () => assert.fail("promote is not plan"),
    prune: async () => assert.fail("promote is not prune"),
    promote: runPromote,
  };
  const run = async (request: Partial<PromoteRequest> = {}) => {
    stdout = "";
    stderr = "";
    const code = await runPromote({ from: "dev", to: "prod", stage: "jira", ...request }, deps);
    return { code, stdout, stderr };
  };
  /** Through the driver's command line, as `npm run pipeline -- <argv>`. */
  const pipeline = async (argv: string[]) => {
    stdout = "";
    stderr = "";
    const code = await runPipeline(argv, deps);
    return { code, stdout, stderr };
  };
  return { root, run, pipeline, requests, prodFile: join(root, "Pulumi.prod.yaml") };
}

describe("promote (Automation API stubbed)", () => {
  it("pins dev's tested jira image in Pulumi.prod.yaml and says what prod's next up rebuilds", async () => {
    const h = harness({ dev: devOutputs(), prod: { images: { "custom-prod": { amiId: "ami-0fffffffffffffff6", parentAmi: OLD_JIRA } } } });
    const before = readFileSync(h.prodFile, "utf8");
    const { code, stdout, stderr } = await h.run();
    assert.equal(code, 0, stderr);
    const after = readFileSync(h.prodFile, "utf8");
    assert.ok(after.startsWith(before), "comments and order kept: the pin is appended");
    assert.deepEqual(parse(after).config["jira-images:promoted"], { fromStack: "dev", stage: "jira", amiId: JIRA });
    assert.match(stdout, new RegExp(`^promote: Pulumi\\.prod\\.yaml: jira-images:promoted now pins dev's jira ${JIRA} \\(tests passed, 14\\) \\(it had no promotion before\\)$`, "m"));
    assert.match(stdout, /^The next `npm run pipeline -- up --stack prod`:$/m);
    assert.match(stdout, new RegExp(`^ {2}jira {9}promoted from dev ${JIRA} \\(tests passed, 14\\)$`, "m"));
    assert.match(stdout, new RegExp(`^ {2}base {9}dev's ${BASE} `, "m"));
    assert.match(stdout, new RegExp(`^ {2}custom-prod {2}rebuilds \\(parent AMI changes from ${OLD_JIRA} to ${JIRA}\\)$`, "m"));
    assert.match(stdout, /Review the change to Pulumi\.prod\.yaml in a pull request; reverting it rolls the promotion back/);
    // Both stacks are only read: neither is created by a typo.
    assert.deepEqual(h.requests.map((r) => [r.stackName, r.create]), [["dev", false], ["prod", false]]);
    assert.equal(h.requests[0]!.envVars.PULUMI_BACKEND_URL, `file://${join(h.root, ".pulumi-state")}`);
  });

  it("`pipeline -- promote` again with the same image is a no-op that says so; a new dev image updates the pin in place", async () => {
    const h = harness({ dev: devOutputs(), prod: { images: { "custom-prod": { amiId: "ami-0fffffffffffffff6", parentAmi: OLD_JIRA } } } });
    const first = await h.pipeline(["promote", "--from", "dev", "--to", "prod"]);
    assert.equal(first.code, 0, first.stderr);
    const pinned = readFileSync(h.prodFile, "utf8");
    const again = await h.pipeline(["promote", "--from", "dev", "--to", "prod"]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`^promote: Pulumi\\.prod\\.yaml already pins dev's jira ${JIRA} \\(tests passed, 14\\); nothing written$`, "m"));
    assert.doesNotMatch(again.stdout, /Review the change/);
    assert.equal(readFileSync(h.prodFile, "utf8"), pinned);

    const newer = "ami-0123456789abcdef0";
    const next = harness({ dev: { images: { ...(devOutputs().images as object), jira: { amiId: newer, amis: { "eu-west-1": newer }, parentStage: "base", parentAmi: BASE, tests: { passed: true, count: 15 } } } } });
    writeFileSync(next.prodFile, pinned);
    const update = await next.pipeline(["promote", "--to", "prod", "--from", "dev"]);
    assert.equal(update.code, 0, update.stderr);
    assert.match(update.stdout, new RegExp(`now pins dev's jira ${newer} \\(tests passed, 15\\) \\(before: dev's jira ${JIRA}\\)`));
    assert.equal(readFileSync(next.prodFile, "utf8"), pinned.replace(JIRA, newer));
  });

  it("a prod stack that does not exist yet: custom-prod builds", async () => {
    const h = harness({ dev: devOutputs() });
    const { code, stdout } = await h.run();
    assert.equal(code, 0);
    assert.match(stdout, /\(stack prod has no state on file:\/\/.* yet\):/);
    assert.match(stdout, new RegExp(`custom-prod {2}builds \\(no custom-prod image in prod's state yet; parent AMI ${JIRA}\\)`));
  });

  for (const [name, tests, code] of [
    ["without a test result", "none", "promote-untested"],
    ["whose tests failed", { passed: false, count: 14 }, "promote-tests-failed"],
  ] as const) {
    it(`refuses dev's image ${name} (exit 1) and leaves the file alone`, async () => {
      const h = harness({ dev: devOutputs(tests) });
      const before = readFileSync(h.prodFile, "utf8");
      const result = await h.run();
      assert.equal(result.code, 1);
      assert.match(result.stderr, new RegExp(`^${code}: stack dev's jira image ${JIRA} `, "m"));
      assert.equal(result.stdout, "");
      assert.equal(readFileSync(h.prodFile, "utf8"), before);
    });
  }

  it("a source stack that does not exist: pipeline-stack-missing naming it, exit 1", async () => {
    const h = harness({});
    const { code, stderr } = await h.run();
    assert.equal(code, 1);
    assert.match(stderr, /^pipeline-stack-missing: stack "dev" does not exist in file:\/\/.*; nothing to promote from\. Build it first with `npm run pipeline -- up --stack dev`/m);
  });

  it("usage mistakes (same stack, a stage prod always builds) are exit 2, before any backend call", async () => {
    const h = harness({ dev: devOutputs() });
    const same = await h.run({ from: "prod" });
    assert.equal(same.code, 2);
    assert.match(same.stderr, /^pipeline-usage: --from and --to name the same stack \(prod\)/);
    const leaf = await h.run({ stage: "custom-prod" });
    assert.equal(leaf.code, 2);
    assert.match(leaf.stderr, /^pipeline-usage: --stage custom-prod: stack prod can take one of base, jira from another stack/);
    assert.equal(h.requests.length, 0);
  });

  it("a file backend without a passphrase stops before reading any stack (exit 3)", async () => {
    const h = harness({ dev: devOutputs() }, {});
    const { code, stderr } = await h.run();
    assert.equal(code, 3);
    assert.match(stderr, /^pipeline-passphrase: /);
    assert.equal(h.requests.length, 0);
  });

  it("an invalid target stack file is named (CONFIG_INVALID, exit 1), nothing written", async () => {
    const h = harness({ dev: devOutputs() });
    writeFileSync(h.prodFile, "config:\n  jira-images:region: [\n");
    const { code, stderr } = await h.run();
    assert.equal(code, 1);
    assert.match(stderr, /^CONFIG_INVALID: stack prod: Pulumi\.prod\.yaml is not valid YAML/);
    assert.equal(readFileSync(h.prodFile, "utf8"), "config:\n  jira-images:region: [\n");
  });
});
