import { JiraImagesError } from "../errors.ts";

export interface RunnerArgs {
  stage: string;
  template: string;
  /** In command-line order; Packer gives the last `-var` for a name precedence. */
  vars: Array<[string, string]>;
  /** Variables whose values are secret: read by Packer from PKR_VAR_<name>, redacted by value. */
  secretVars: string[];
  varFiles: string[];
  inputs: string[];
  requires: string[];
  logDir?: string;
  timeoutSeconds?: number;
}

export const USAGE = `usage: npm run --silent stage -- --stage <name> --template <dir>
         [--var key=value]... [--secret-var <name>]... [--var-file <file>]... [--input <path>]... [--require <file>]...
         [--log-dir <dir>] [--timeout <seconds>]

Runs \`packer build -machine-readable\` for one image stage. On success prints one JSON line
(stage, amiId, region, amis, logFile, ...) on stdout and exits 0; Packer's output goes to the log file.
  --stage      stage name (lower-case letters, digits, dashes), used in messages and the log path
  --template   Packer template directory (*.pkr.hcl / *.pkr.json) or a JSON template file
  --var        passed to Packer as -var key=value (repeatable)
  --secret-var a template variable whose value is secret: set it as PKR_VAR_<name> in the
               environment (never --var, whose value would be on the command line, which Pulumi
               stores in state); its value is redacted wherever it appears (repeatable)
  --var-file   passed to Packer as -var-file (repeatable)
  --input      file or directory checked for git-lfs pointer files before the build (repeatable)
  --require    file that must exist, be non-empty and not be a git-lfs pointer (repeatable)
  --log-dir    where the log goes (default .packer-logs/<stage>/)
  --timeout    interrupt Packer after this many seconds, wait for its cleanup, fail
Environment: PACKER_BIN names the packer executable (default: packer on PATH). The values of
AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN are redacted from the log and stderr like secret variables.`;

const STAGE_NAME = /^[a-z0-9][a-z0-9-]*$/;
/** HCL identifiers: what Packer accepts as a variable name. */
const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;

export type ParsedCommandLine = { kind: "help" } | { kind: "run"; args: RunnerArgs };

function usageError(message: string): JiraImagesError {
  return new JiraImagesError("USAGE", `${message} (see --help)`);
}

/** Parses `key=value`; the value may itself contain `=`. */
function parseVar(text: string): [string, string] {
  const eq = text.indexOf("=");
  if (eq < 0) throw usageError(`--var ${JSON.stringify(text)} is not key=value`);
  const key = text.slice(0, eq);
  if (!VAR_NAME.test(key)) {
    throw usageError(`--var ${JSON.stringify(text)}: ${JSON.stringify(key)} is not a valid variable name`);
  }
  return [key, text.slice(eq + 1)];
}

/**
 * Best-effort stage name for messages, even when the command line is otherwise invalid, so every
 * stderr line can carry its `[<stage>]` prefix.
 */
export function stageForMessages(argv: readonly string[]): string {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--stage" && argv[i + 1] !== undefined) return argv[i + 1]!;
    if (arg.startsWith("--stage=")) return arg.slice("--stage=".length);
  }
  return "?";
}

/** A path flag's value; an empty one would resolve to the working directory, which is never meant. */
function nonEmpty(flag: string, value: string): string {
  if (value === "") throw usageError(`${flag} is empty`);
  return value;
}

const VALUE_FLAGS = ["--stage", "--template", "--var", "--secret-var", "--var-file", "--input", "--require", "--log-dir", "--timeout"];

export function parseArgs(argv: readonly string[]): ParsedCommandLine {
  let stage: string | undefined;
  let template: string | undefined;
  let logDir: string | undefined;
  let timeoutSeconds: number | undefined;
  const vars: Array<[string, string]> = [];
  const secretVars: string[] = [];
  const varFiles: string[] = [];
  const inputs: string[] = [];
  const requires: string[] = [];

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") return { kind: "help" };
    const eq = arg.indexOf("=");
    const flag = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    if (!VALUE_FLAGS.includes(flag)) {
      throw usageError(arg.startsWith("-") ? `unknown option ${arg}` : `unexpected argument ${JSON.stringify(arg)}`);
    }
    let value: string;
    if (flag !== arg) {
      value = arg.slice(eq + 1);
    } else {
      const next = argv[i + 1];
      if (next === undefined) throw usageError(`${flag} needs a value`);
      value = next;
      i++;
    }
    switch (flag) {
      case "--stage":
        if (stage !== undefined) throw usageError("--stage given twice");
        if (!STAGE_NAME.test(value)) {
          throw usageError(`--stage ${JSON.stringify(value)}: use lower-case letters, digits and dashes`);
        }
        stage = value;
        break;
      case "--template":
        if (template !== undefined) throw usageError("--template given twice");
        template = nonEmpty(flag, value);
        break;
      case "--var":
        vars.push(parseVar(value));
        break;
      case "--secret-var":
        if (!VAR_NAME.test(value)) throw usageError(`--secret-var ${JSON.stringify(value)} is not a valid variable name`);
        if (!secretVars.includes(value)) secretVars.push(value);
        break;
      case "--var-file":
        varFiles.push(nonEmpty(flag, value));
        break;
      case "--input":
        inputs.push(nonEmpty(flag, value));
        break;
      case "--require":
        requires.push(nonEmpty(flag, value));
        break;
      case "--log-dir":
        logDir = nonEmpty(flag, value);
        break;
      case "--timeout": {
        const n = Number(value);
        if (value.trim() === "" || !Number.isFinite(n) || n <= 0) {
          throw usageError(`--timeout ${JSON.stringify(value)} is not a positive number of seconds`);
        }
        timeoutSeconds = n;
        break;
      }
    }
  }
  if (stage === undefined) throw usageError("--stage is required");
  if (template === undefined) throw usageError("--template is required");
  return {
    kind: "run",
    args: {
      stage,
      template,
      vars,
      secretVars,
      varFiles,
      inputs,
      requires,
      ...(logDir !== undefined ? { logDir } : {}),
      ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}),
    },
  };
}
