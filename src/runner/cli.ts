/**
 * Stage runner entry point: `npm run --silent stage -- --stage <name> --template <dir> ...`
 * (= `exec node --import tsx src/runner/cli.ts ...`). See `USAGE` in ./args.ts and the README.
 *
 * stdout carries exactly one JSON line on success and nothing otherwise, because the Pulumi command
 * provider stores it in state; every stderr line starts with `stage-runner: [<stage>] `.
 */
import { JiraImagesError } from "../errors.ts";
import { parseArgs, stageForMessages, USAGE } from "./args.ts";
import { Redactor } from "./redact.ts";
import { EXIT, runStage, StageFailure, type SignalSource } from "./run.ts";

const FORWARDED_SIGNALS: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

function processSignals(): SignalSource {
  const listeners: Array<(signal: NodeJS.Signals) => void> = [];
  const pending: NodeJS.Signals[] = [];
  for (const signal of FORWARDED_SIGNALS) {
    // Handling the signal keeps the process alive until Packer has cleaned up.
    process.on(signal, () => {
      if (listeners.length === 0) pending.push(signal);
      for (const listener of listeners) listener(signal);
    });
  }
  return {
    onSignal(listener) {
      listeners.push(listener);
      for (const signal of pending.splice(0)) listener(signal);
    },
  };
}

function writeLines(stage: string, lines: string[]): void {
  const prefix = `stage-runner: [${stage}] `;
  const text = lines
    .flatMap((line) => line.split("\n"))
    .map((line) => `${prefix}${line}\n`)
    .join("");
  process.stderr.write(text);
}

function exit(code: number): void {
  // stdout/stderr are synchronous for files and pipes on Linux; the callback covers the rest.
  process.stdout.write("", () => process.exit(code));
}

async function main(argv: string[]): Promise<void> {
  const signals = processSignals();
  const stage = stageForMessages(argv);
  let parsed;
  try {
    parsed = parseArgs(argv);
  } catch (error) {
    writeLines(stage, [error instanceof Error ? error.message : String(error)]);
    return exit(EXIT.usage);
  }
  if (parsed.kind === "help") {
    process.stdout.write(`${USAGE}\n`);
    return exit(0);
  }
  const args = parsed.args;
  try {
    const result = await runStage(args, {
      cwd: process.cwd(),
      env: process.env,
      stderr: (line) => writeLines(args.stage, [line]),
      signals,
    });
    process.stdout.write(`${JSON.stringify(result)}\n`);
    exit(0);
  } catch (error) {
    if (error instanceof StageFailure) {
      writeLines(args.stage, [error.message, ...error.details]);
      return exit(error.exitCode);
    }
    if (error instanceof JiraImagesError) {
      writeLines(args.stage, [error.message]);
      return exit(EXIT.usage);
    }
    const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
    writeLines(args.stage, [`unexpected error: ${Redactor.fromEnvironment(process.env, args.secretVars).redact(text)}`]);
    exit(EXIT.packerFailed);
  }
}

await main(process.argv.slice(2));
