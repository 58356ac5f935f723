import { existsSync, readdirSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { CommandError, EngineEvent, PulumiCommand } from "@pulumi/pulumi/automation/index.js";
import { JiraImagesError } from "../errors.ts";
import { parseDriverArgs, PRUNE_DEFAULT_OPTIONS, USAGE, type DriverArgs, type StackCommandArgs } from "./args.ts";
import { checkPassphrase, resolveBackend, type BackendSettings } from "./backend.ts";
import type { DriverIo } from "./io.ts";
import type { PlanRequest } from "./plan.ts";
import type { PromoteRequest } from "./promote-command.ts";
import type { PruneCommand } from "./prune.ts";
import { isMissingCliError, missingCliError } from "./pulumi-cli.ts";
import { ProgressTracker, renderSummary, stripColors, type DriverMode } from "./progress.ts";
import type { StackFactory, StackHandle } from "./workspace.ts";

export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  /** A prerequisite is missing (Pulumi CLI, passphrase): nothing was attempted. */
  prerequisite: 3,
  /** Interrupted (128 + SIGINT), as shells report it. */
  interrupted: 130,
} as const;

/** What the process offers for interrupts; `process` in production, an EventEmitter in tests. */
export interface SignalSource {
  on(signal: "SIGINT" | "SIGTERM", listener: () => void): unknown;
  off(signal: "SIGINT" | "SIGTERM", listener: () => void): unknown;
}

export interface DriverDeps {
  /** Project root: Pulumi.yaml, Pulumi.<stack>.yaml, `.pulumi-state/`. */
  root: string;
  env: NodeJS.ProcessEnv;
  io: DriverIo;
  /** Finds the Pulumi CLI or throws `pulumi-cli-missing:` (undefined: let the workspace find it). */
  detectCli: () => Promise<PulumiCommand | undefined>;
  stackFactory: StackFactory;
  signals: SignalSource;
  now: () => number;
  /** How often running Packer builds report their elapsed time. */
  heartbeatMs: number;
  /**
   * After an interrupt, how long to wait for the Pulumi CLI to say it is cancelling on its own
   * (a terminal's Ctrl-C reaches the whole process group) before forwarding it: a second SIGINT
   * would make Pulumi terminate at once instead of letting the runner clean up.
   */
  interruptGraceMs: number;
  plan: (request: PlanRequest, io: DriverIo) => Promise<number>;
  prune: (request: PruneCommand, io: DriverIo) => Promise<number>;
  /** `promote`: reads stack outputs with this driver's CLI and workspace, writes one stack file. */
  promote: (request: PromoteRequest, deps: DriverDeps) => Promise<number>;
}

/** Runs one driver command; returns the process exit code and never throws. */
export async function runPipeline(argv: readonly string[], deps: DriverDeps): Promise<number> {
  const say = (line: string): void => deps.io.stderr(`${line}\n`);
  if (argv.some((arg) => arg === "--help" || arg === "-h")) {
    deps.io.stdout(`${USAGE}\n`);
    return EXIT.ok;
  }
  let parsed: DriverArgs;
  try {
    parsed = parseDriverArgs(argv);
    // Every command, `plan` and `promote` included, says the same about a stack that does not exist.
    checkStackFile(deps.root, parsed.command === "promote" ? parsed.to : parsed.stack);
  } catch (err) {
    say(messageOf(err));
    if (!(err instanceof JiraImagesError && err.code === "pipeline-stack-unknown")) say(USAGE);
    return EXIT.usage;
  }
  if (parsed.command === "promote") return deps.promote({ from: parsed.from, to: parsed.to, stage: parsed.stage }, deps);
  const args = parsed;
  if (args.command === "plan") {
    return deps.plan({ stack: args.stack, format: args.format, root: deps.root, env: deps.env }, deps.io);
  }
  if (args.command === "sweep") {
    const { automationStateReader, runSweep } = await import("./sweep-command.ts");
    const readState = async (stack: string) => (await automationStateReader(deps.root, deps.env))(stack);
    return runSweep({ stack: args.stack, apply: args.apply }, { root: deps.root, env: deps.env, io: deps.io, now: deps.now, readState });
  }
  if (args.command === "prune") {
    try {
      const pulumiCommand = await deps.detectCli();
      const backend = resolveBackend(deps.env, deps.root);
      if (backend.localStateDir) await mkdir(backend.localStateDir, { recursive: true });
      // Exporting a stack needs no passphrase: prune reads every stack's state, whatever its passphrase.
      return await deps.prune(
        {
          stack: args.stack,
          ...(args.prune ?? PRUNE_DEFAULT_OPTIONS),
          root: deps.root,
          envVars: { PULUMI_BACKEND_URL: backend.url, PULUMI_SKIP_UPDATE_CHECK: "true" },
          ...(pulumiCommand ? { pulumiCommand } : {}),
        },
        deps.io,
      );
    } catch (err) {
      return await report(err, args, deps);
    }
  }
  if (args.command === "destroy" && !args.yes) {
    say(`pipeline-usage: destroy removes every resource of stack "${args.stack}" (its instances included); add --yes to confirm`);
    return EXIT.usage;
  }

  let pulumiCommand: PulumiCommand | undefined;
  let backend: BackendSettings;
  try {
    pulumiCommand = await deps.detectCli();
    backend = resolveBackend(deps.env, deps.root);
    checkPassphrase(deps.env, backend);
  } catch (err) {
    return await report(err, args, deps);
  }

  let tracker: ProgressTracker | undefined;
  try {
    if (backend.localStateDir) await mkdir(backend.localStateDir, { recursive: true });
    const stack = await deps.stackFactory({
      stackName: args.stack,
      root: deps.root,
      // Creating a stack by accident (a typo in `outputs`/`destroy`) would only hide the mistake.
      create: args.command === "up" || args.command === "preview",
      envVars: { PULUMI_BACKEND_URL: backend.url, PULUMI_SKIP_UPDATE_CHECK: "true" },
      ...(backend.selfManaged ? { secretsProvider: "passphrase" } : {}),
      ...(pulumiCommand ? { pulumiCommand } : {}),
    });
    if (args.command === "outputs") return await printOutputs(stack, deps.io);
    tracker = new ProgressTracker(args.command, deps.now);
    return await runOperation(args.command, stack, tracker, args, backend, deps);
  } catch (err) {
    return await report(err, args, deps, tracker);
  }
}

/**
 * Pulumi reads a stack's config only from `Pulumi.<stack>` with its project file's extension,
 * `.yaml` here: a `Pulumi.<stack>.yml` would be ignored and the stack run with no config.
 */
function checkStackFile(root: string, stack: string): void {
  if (existsSync(join(root, `Pulumi.${stack}.yaml`))) return;
  const known = readdirSync(root)
    .map((file) => /^Pulumi\.(.+)\.yaml$/.exec(file)?.[1])
    .filter((name): name is string => name !== undefined);
  throw new JiraImagesError(
    "pipeline-stack-unknown",
    `no stack "${stack}": Pulumi.${stack}.yaml does not exist in ${root} (stacks: ${known.sort().join(", ") || "none"})`,
  );
}

async function printOutputs(stack: StackHandle, io: DriverIo): Promise<number> {
  const outputs = await stack.outputs();
  // Secret values never reach stdout (scripts and CI logs); this project exports none.
  const plain = Object.fromEntries(
    Object.entries(outputs).map(([key, output]) => [key, output.secret ? "[secret]" : output.value]),
  );
  io.stdout(`${JSON.stringify(plain, null, 2)}\n`);
  return EXIT.ok;
}

async function runOperation(
  mode: DriverMode,
  stack: StackHandle,
  tracker: ProgressTracker,
  args: StackCommandArgs,
  backend: BackendSettings,
  deps: DriverDeps,
): Promise<number> {
  const say = (line: string): void => deps.io.stderr(`${line}\n`);
  const controller = new AbortController();
  let interrupts = 0;
  let forwardTimer: NodeJS.Timeout | undefined;
  const onInterrupt = (): void => {
    interrupts++;
    if (interrupts > 1) {
      say("pipeline: interrupt received again; waiting for Pulumi to exit");
      return;
    }
    say(
      `pipeline: interrupt received; cancelling ${mode} of "${args.stack}". A running Packer build is ` +
        "interrupted by its stage runner, which waits for Packer to delete the temporary instance, key " +
        "pair and security group; this can take a few minutes.",
    );
    forwardTimer = setTimeout(() => {
      if (tracker.pulumiCancelling) return;
      say("pipeline: forwarding the interrupt to Pulumi");
      controller.abort();
    }, deps.interruptGraceMs);
  };
  deps.signals.on("SIGINT", onInterrupt);
  deps.signals.on("SIGTERM", onInterrupt);
  const heartbeat = setInterval(() => tracker.tick().forEach(say), deps.heartbeatMs);

  const rawOutput = args.verbose || mode === "preview";
  const common = {
    color: rawOutput && deps.io.stderrIsTTY ? ("always" as const) : ("never" as const),
    onEvent: (event: EngineEvent) => tracker.handle(event).forEach(say),
    onOutput: (out: string) => {
      if (rawOutput) deps.io.stderr(out);
    },
    onError: (err: string) => {
      if (args.verbose) deps.io.stderr(err);
    },
    signal: controller.signal,
  };
  say(`pipeline: ${mode} of stack "${args.stack}" (backend ${backend.url})`);
  try {
    if (mode === "preview") await stack.preview({ ...common, diff: true });
    else if (mode === "up") await stack.up(common);
    else await stack.destroy(common);
  } catch (err) {
    if (interrupts === 0) throw err;
    deps.io.stderr(renderSummary(tracker.rows()));
    say(
      `pipeline: ${mode} of "${args.stack}" cancelled. Finished stages are recorded in the state; ` +
        `the next \`npm run pipeline -- ${mode} --stack ${args.stack}\` continues from there.`,
    );
    return EXIT.interrupted;
  } finally {
    clearInterval(heartbeat);
    clearTimeout(forwardTimer);
    deps.signals.off("SIGINT", onInterrupt);
    deps.signals.off("SIGTERM", onInterrupt);
  }
  deps.io.stderr(renderSummary(tracker.rows()));
  say(`pipeline: ${mode} of "${args.stack}" finished`);
  return EXIT.ok;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The Pulumi CLI's own stderr inside a CommandError (the message is its `CommandResult`). */
export function commandErrorDetails(err: CommandError): { exitCode?: number; stderr: string } {
  const code = /^code: (-?\d+)/.exec(err.message)?.[1];
  const stderr = /\n stderr: ([\s\S]*?)\n err\?: /.exec(err.message)?.[1] ?? "";
  return { ...(code !== undefined ? { exitCode: Number(code) } : {}), stderr: stripColors(stderr).trim() };
}

/**
 * Turns any failure into one clear message on stderr (no stack trace) and an exit code. The
 * Automation API takes about a second to load and `plan` never needs it, so it is loaded here
 * and by the CLI's factories, not at start-up.
 */
async function report(err: unknown, args: StackCommandArgs, deps: DriverDeps, tracker?: ProgressTracker): Promise<number> {
  const say = (line: string): void => deps.io.stderr(`${line}\n`);
  if (tracker) deps.io.stderr(renderSummary(tracker.rows()));
  if (isMissingCliError(err)) {
    say(missingCliError(err).message);
    return EXIT.prerequisite;
  }
  // Our own errors (a missing CLI among them) are reported without loading the Automation API.
  if (err instanceof JiraImagesError) {
    say(err.message);
    if (err.code === "pipeline-usage") return EXIT.usage;
    return err.code.startsWith("pulumi-cli") || err.code === "pipeline-passphrase" ? EXIT.prerequisite : EXIT.failed;
  }
  const { CommandError, ConcurrentUpdateError, StackNotFoundError } = await import("@pulumi/pulumi/automation/index.js");
  const backend = resolveBackend(deps.env, deps.root).url;
  if (err instanceof StackNotFoundError) {
    say(
      `pipeline-stack-missing: stack "${args.stack}" does not exist in ${backend} yet; ` +
        `\`npm run pipeline -- up --stack ${args.stack}\` creates it`,
    );
    return EXIT.failed;
  }
  if (err instanceof ConcurrentUpdateError) {
    say(
      `pipeline-stack-locked: stack "${args.stack}" is locked by another update. If none is running ` +
        `(e.g. after a crash), release the lock with \`pulumi cancel --stack ${args.stack}\` (backend ${backend}).`,
    );
    return EXIT.failed;
  }
  if (err instanceof CommandError) {
    const { exitCode, stderr } = commandErrorDetails(err);
    say(`pipeline-failed: pulumi ${args.command} failed${exitCode !== undefined ? ` (exit code ${exitCode})` : ""}`);
    if ((tracker?.errorsReported ?? 0) === 0 && !args.verbose && stderr) {
      say(stderr.split("\n").slice(-30).join("\n"));
    }
    return EXIT.failed;
  }
  say(`pipeline-failed: ${messageOf(err)}`);
  return EXIT.failed;
}
