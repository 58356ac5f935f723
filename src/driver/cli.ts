import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { processDeps } from "./process-deps.ts";
import { runPipeline } from "./run.ts";

// `npm run pipeline -- <command> --stack <s>`: the Automation API driver of this project.
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

process.exitCode = await runPipeline(process.argv.slice(2), processDeps(root));
