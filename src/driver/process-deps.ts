import { processIo } from "./io.ts";
import type { DriverDeps } from "./run.ts";

/** The real driver's dependencies for a project folder: this process, the Pulumi CLI on PATH. */
export function processDeps(root: string): DriverDeps {
  return {
    root,
    env: process.env,
    io: processIo(),
    // The Automation API takes about a second to load: it is loaded once `pulumi` is found on PATH,
    // and `plan` runs without it.
    detectCli: async () => (await import("./pulumi-cli.ts")).detectPulumiCli(process.env),
    stackFactory: async (request) => (await import("./workspace.ts")).localStackFactory(request),
    signals: process,
    now: Date.now,
    heartbeatMs: 30_000,
    interruptGraceMs: 2_000,
    plan: async (request, io) => (await import("./plan.ts")).runPlan(request, io),
    prune: async (request, io) => (await import("./prune.ts")).runPrune(request, io),
    promote: async (request, deps) => (await import("./promote-command.ts")).runPromote(request, deps),
  };
}
