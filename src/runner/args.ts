import { parseArgs as parseCommandLine } from "node:util";
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

const OPTIONS = {
  stage: { type: "string" },
  template: { type: "string" },
  var: { type: "string", multiple: true },
  "secret-var": { type: "string", multiple: true },
  "var-file": { type: "string", multiple: true },
  input: { type: "string", multiple: true },
  require: { type: "string", multiple: true },
  "log-dir": { type: "string" },
  timeout: { type: "string" },
  help: { type: "boolean" },
} as const;
const SINGLE = ["stage", "template", "log-dir", "timeout"] as const;

/** parseArgs's own messages are long and generic; ours name the option as the usage spells it. */
function parseError(error: unknown): JiraImagesError {
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  const option = /'(-[^' ]*)/.exec(message)?.[1];
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") return usageError(`unknown option ${option ?? message}`);
  if (code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") {
    return usageError(`unexpected argument ${JSON.stringify(/'([^']*)'/.exec(message)?.[1] ?? message)}`);
  }
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && message.includes("argument missing")) {
    return usageError(`${option ?? "an option"} needs a value`);
  }
  return usageError(message);
}

export function parseArgs(argv: readonly string[]): ParsedCommandLine {
  if (argv.includes("--help") || argv.includes("-h")) return { kind: "help" };
  // parseArgs would read `-var` as the short flags -v -a -r and name only `-v`.
  const single = argv.find((arg) => /^-[^-]/.test(arg));
  if (single !== undefined) throw usageError(`unknown option ${single}`);
  let parsed;
  try {
    parsed = parseCommandLine({ args: [...argv], options: OPTIONS, strict: true, tokens: true });
  } catch (error) {
    throw parseError(error);
  }
  const { values, tokens } = parsed;
  for (const name of SINGLE) {
    if (tokens.filter((t) => t.kind === "option" && t.name === name).length > 1) throw usageError(`--${name} given twice`);
  }

  const { stage, template } = values;
  if (stage === undefined) throw usageError("--stage is required");
  if (!STAGE_NAME.test(stage)) throw usageError(`--stage ${JSON.stringify(stage)}: use lower-case letters, digits and dashes`);
  if (template === undefined) throw usageError("--template is required");
  const secretVars: string[] = [];
  for (const name of values["secret-var"] ?? []) {
    if (!VAR_NAME.test(name)) throw usageError(`--secret-var ${JSON.stringify(name)} is not a valid variable name`);
    if (!secretVars.includes(name)) secretVars.push(name);
  }
  const paths = (flag: "var-file" | "input" | "require") => (values[flag] ?? []).map((v) => nonEmpty(`--${flag}`, v));
  const logDir = values["log-dir"] === undefined ? undefined : nonEmpty("--log-dir", values["log-dir"]);
  let timeoutSeconds: number | undefined;
  if (values.timeout !== undefined) {
    const n = Number(values.timeout);
    if (values.timeout.trim() === "" || !Number.isFinite(n) || n <= 0) {
      throw usageError(`--timeout ${JSON.stringify(values.timeout)} is not a positive number of seconds`);
    }
    timeoutSeconds = n;
  }
  return {
    kind: "run",
    args: {
      stage,
      template: nonEmpty("--template", template),
      vars: (values.var ?? []).map(parseVar),
      secretVars,
      varFiles: paths("var-file"),
      inputs: paths("input"),
      requires: paths("require"),
      ...(logDir !== undefined ? { logDir } : {}),
      ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}),
    },
  };
}
