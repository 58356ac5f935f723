import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { processIo } from "./io.ts";
import { runPlan } from "./plan.ts";
import { detectPulumiCli } from "./pulumi-cli.ts";
import { runPipeline } from "./run.ts";
import { localStackFactory } from "./workspace.ts";

// `npm run pipeline -- <command> --stack <s>`: the Automation API driver of this project.
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

process.exitCode = await runPipeline(process.argv.slice(2), {
  root,
  env: process.env,
  io: processIo(),
  detectCli: detectPulumiCli,
  stackFactory: localStackFactory,
  signals: process,
  now: Date.now,
  heartbeatMs: 30_000,
  interruptGraceMs: 2_000,
  plan: runPlan,
});
