import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { processIo } from "./io.ts";
import { runPipeline } from "./run.ts";

// `npm run pipeline -- <command> --stack <s>`: the Automation API driver of this project.
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

process.exitCode = await runPipeline(process.argv.slice(2), {
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
});
