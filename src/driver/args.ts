import { parseArgs } from "node:util";
import { JiraImagesError } from "../errors.ts";
import { PromotedPinSchema } from "../config.ts";

/** Commands that act on one stack (`--stack`). */
export const STACK_COMMANDS = ["plan", "preview", "up", "destroy", "outputs", "prune", "sweep"] as const;
export type StackCommand = (typeof STACK_COMMANDS)[number];
export const COMMANDS = [...STACK_COMMANDS, "promote"] as const;
export type DriverCommand = (typeof COMMANDS)[number];
export type PlanFormat = "text" | "markdown";

export interface StackCommandArgs {
  command: StackCommand;
  stack: string;
  /** Only meaningful for `plan`. */
  format: PlanFormat;
  /** Forward the Pulumi CLI's own output to stderr as well as the stage progress. */
  verbose: boolean;
  /** `destroy` terminates the stack's instances: it is never run without this explicit consent. */
  yes: boolean;
  /** `sweep` removes what it finds only with this; without it, it prints what it would remove. */
  apply: boolean;
  /** Only for `prune`. */
  prune?: PruneOptions;
}

export interface PruneOptions {
  /** Keep the newest N images of each stage per region. */
  keep: number;
  /** Keep every image younger than this many days. */
  olderThanDays: number;
  /** Remove (otherwise a dry run). */
  apply: boolean;
}

export const PRUNE_DEFAULTS = { keep: 3, olderThanDays: 30 } as const;
export const PRUNE_DEFAULT_OPTIONS: PruneOptions = { ...PRUNE_DEFAULTS, apply: false };


export interface PromoteArgs {
  command: "promote";
  /** Source stack: `dev` or `org/project/stack`. */
  from: string;
  /** Target stack: its Pulumi.<to>.yaml gets the pin. */
  to: string;
  stage: string;
}

export type DriverArgs = StackCommandArgs | PromoteArgs;

/** The stage `promote` pins unless `--stage` says otherwise. */
export const DEFAULT_PROMOTED_STAGE = "jira";

const COMMAND_HELP: Record<DriverCommand, string> = {
  plan: "which stages would rebuild and why (offline: no Pulumi CLI, no AWS)",
  preview: "pulumi preview --diff through the Automation API",
  up: "build the stages that changed and deploy the stack",
  destroy: "destroy the stack's resources (needs --yes)",
  outputs: "print the stack outputs as JSON on stdout",
  prune: "list the stack's old images no stack or instance uses (dry run); --apply removes them",
  sweep: "find what killed builds left (instances, volumes, groups, key pairs, unreferenced AMIs); --apply removes it",
  promote: "pin --from's tested image in Pulumi.<to>.yaml (a local file only); print what --to's next up rebuilds",
};

interface OptionSpec {
  type: "string" | "boolean";
  /** Placeholder of a string option's value in the usage. */
  value?: string;
  help: string;
  /** The commands that accept it; any other command refuses it by name. */
  commands: readonly DriverCommand[];
}

/** Every option of every command: parseArgs reads them all, then each command's list is enforced. */
const OPTIONS = {
  stack: { type: "string", value: "<name>", help: "stack (a Pulumi.<name>.yaml must exist)", commands: STACK_COMMANDS },
  format: { type: "string", value: "<text|markdown>", help: "Markdown table + Mermaid graph for a PR comment", commands: ["plan"] },
  verbose: { type: "boolean", help: "also show the Pulumi CLI's own output on stderr", commands: ["preview", "up", "destroy"] },
  yes: { type: "boolean", help: "confirm destroy", commands: ["destroy"] },
  keep: { type: "string", value: "<n>", help: `keep the newest n images of each stage per region (${PRUNE_DEFAULTS.keep})`, commands: ["prune"] },
  "older-than": { type: "string", value: "<days>", help: `keep images younger than this (${PRUNE_DEFAULTS.olderThanDays})`, commands: ["prune"] },
  apply: { type: "boolean", help: "remove what it finds (prune: deregister the images, delete their snapshots); default: a dry run", commands: ["prune", "sweep"] },
  from: { type: "string", value: "<stack>", help: "stack whose image is promoted (dev or org/project/stack)", commands: ["promote"] },
  to: { type: "string", value: "<stack>", help: "stack that takes it (its Pulumi.<stack>.yaml is written)", commands: ["promote"] },
  stage: { type: "string", value: "<stage>", help: `stage promoted with its ancestors (default ${DEFAULT_PROMOTED_STAGE})`, commands: ["promote"] },
} as const satisfies Record<string, OptionSpec>;
type OptionName = keyof typeof OPTIONS;

function optionUsage(name: OptionName): string {
  const spec: OptionSpec = OPTIONS[name];
  const flag = spec.value ? `--${name} ${spec.value}` : `--${name}`;
  // An option of every stack command needs no list; any other names the commands that take it.
  const only = spec.commands === STACK_COMMANDS ? "" : `${spec.commands.join(", ")}: `;
  return `  ${flag.padEnd(29)}${only}${spec.help}`;
}

export const USAGE = [
  `usage: npm run pipeline -- <${STACK_COMMANDS.join("|")}> --stack <dev|prod> [options]`,
  `       npm run pipeline -- promote --from <stack> --to <stack> [--stage <stage>]`,
  ...COMMANDS.map((c) => `  ${c.padEnd(10)}${COMMAND_HELP[c]}`),
  "options:",
  ...(Object.keys(OPTIONS) as OptionName[]).map(optionUsage),
].join("\n");

const STACK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function usageError(message: string): JiraImagesError {
  return new JiraImagesError("pipeline-usage", message);
}

/** parseArgs's own messages are long and name no command; ours name the option and the fix. */
function parseError(error: unknown): JiraImagesError {
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  const option = /'(-[^' ]*)/.exec(message)?.[1];
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") return usageError(`unknown option ${option ?? message}`);
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
    return usageError(message.includes("argument missing") ? `${option ?? "an option"} needs a value` : message);
  }
  return usageError(message);
}

function isCommand(word: string): word is DriverCommand {
  return (COMMANDS as readonly string[]).includes(word);
}

/** Parses the driver's argv (without node and script). Pure: throws `pipeline-usage:` errors. */
export function parseDriverArgs(argv: readonly string[]): DriverArgs {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw parseError(error);
  }
  const { values, positionals } = parsed;

  const [command, ...extra] = positionals;
  if (command === undefined) throw usageError(`a command is required (${COMMANDS.join(", ")})`);
  if (!isCommand(command)) throw usageError(`unknown command "${command}" (expected one of ${COMMANDS.join(", ")})`);
  if (extra.length > 0) throw usageError(`one command only (got "${command}" and "${extra.join('", "')}")`);
  for (const name of Object.keys(values) as OptionName[]) {
    const allowed: readonly DriverCommand[] = OPTIONS[name].commands;
    if (!allowed.includes(command)) throw usageError(`--${name} applies to ${allowed.join(", ")} only`);
  }

  if (command === "promote") return promoteArgs(values);
  const { stack, format } = values;
  if (stack === undefined) throw usageError("--stack <name> is required (e.g. --stack dev)");
  if (!STACK_NAME.test(stack)) throw usageError(`"${stack}" is not a valid stack name`);
  if (format !== undefined && format !== "text" && format !== "markdown") {
    throw usageError(`--format must be text or markdown, not "${format}"`);
  }
  return {
    command,
    stack,
    format: format ?? "text",
    verbose: values.verbose ?? false,
    yes: values.yes ?? false,
    apply: values.apply ?? false,
    ...(command === "prune"
      ? {
          prune: {
            keep: count("--keep", values.keep, 0) ?? PRUNE_DEFAULTS.keep,
            // A day at least: an image an `up` has just made is in no state until that `up` ends.
            olderThanDays: count("--older-than", values["older-than"]?.replace(/d$/, ""), 1) ?? PRUNE_DEFAULTS.olderThanDays,
            apply: values.apply ?? false,
          },
        }
      : {}),
  };
}

function count(flag: string, value: string | undefined, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,5}$/.test(value) || Number(value) < min) throw usageError(`${flag} must be a whole number from ${min}, not "${value}"`);
  return Number(value);
}

function promoteArgs(values: { from?: string; to?: string; stage?: string }): PromoteArgs {
  const { from, to } = values;
  const stage = values.stage ?? DEFAULT_PROMOTED_STAGE;
  if (from === undefined || to === undefined) throw usageError("promote needs --from <stack> and --to <stack> (e.g. --from dev --to prod)");
  // The pin's own schema (src/config.ts): what promote writes is what the program accepts.
  if (!PromotedPinSchema.shape.fromStack.safeParse(from).success) throw usageError(`--from "${from}" is not a stack name (dev) or org/project/stack`);
  if (!STACK_NAME.test(to)) throw usageError(`"${to}" is not a valid stack name`);
  if (!PromotedPinSchema.shape.stage.safeParse(stage).success) throw usageError(`--stage "${stage}" is not a stage name (e.g. jira)`);
  return { command: "promote", from, to, stage };
}
