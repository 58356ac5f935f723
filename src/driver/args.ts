import { JiraImagesError } from "../errors.ts";

export const COMMANDS = ["plan", "preview", "up", "destroy", "outputs"] as const;
export type DriverCommand = (typeof COMMANDS)[number];
export type PlanFormat = "text" | "markdown";

export interface DriverArgs {
  command: DriverCommand;
  stack: string;
  /** Only meaningful for `plan`. */
  format: PlanFormat;
  /** Forward the Pulumi CLI's own output to stderr as well as the stage progress. */
  verbose: boolean;
  /** `destroy` terminates the stack's instances: it is never run without this explicit consent. */
  yes: boolean;
}

export const USAGE = `usage: npm run pipeline -- <plan|preview|up|destroy|outputs> --stack <dev|prod> [options]
  plan      which stages would rebuild and why (offline: no Pulumi CLI, no AWS)
  preview   pulumi preview --diff through the Automation API
  up        build the stages that changed and deploy the stack
  destroy   destroy the stack's resources (needs --yes)
  outputs   print the stack outputs as JSON on stdout
options:
  --stack <name>               stack (a Pulumi.<name>.yaml must exist)
  --format <text|markdown>     plan only: Markdown table + Mermaid graph for a PR comment
  --verbose                    also show the Pulumi CLI's own output on stderr
  --yes                        confirm destroy`;

const STACK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function usageError(message: string): JiraImagesError {
  return new JiraImagesError("pipeline-usage", message);
}

/** Parses the driver's argv (without node and script). Pure: throws `pipeline-usage:` errors. */
export function parseDriverArgs(argv: readonly string[]): DriverArgs {
  let command: DriverCommand | undefined;
  let stack: string | undefined;
  let format: PlanFormat | undefined;
  let verbose = false;
  let yes = false;

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const inlineValue = eq > 0 ? arg.slice(eq + 1) : undefined;
    const takeValue = (): string => {
      if (inlineValue !== undefined) return inlineValue;
      const next = argv[i + 1];
      if (next === undefined || next.startsWith("--")) throw usageError(`${flag} needs a value`);
      i++;
      return next;
    };
    switch (flag) {
      case "--stack":
        stack = takeValue();
        break;
      case "--format": {
        const value = takeValue();
        if (value !== "text" && value !== "markdown") {
          throw usageError(`--format must be text or markdown, not "${value}"`);
        }
        format = value;
        break;
      }
      case "--verbose":
        verbose = true;
        break;
      case "--yes":
        yes = true;
        break;
      default:
        if (arg.startsWith("-")) throw usageError(`unknown option ${arg}`);
        if (command !== undefined) throw usageError(`one command only (got "${command}" and "${arg}")`);
        if (!(COMMANDS as readonly string[]).includes(arg)) {
          throw usageError(`unknown command "${arg}" (expected one of ${COMMANDS.join(", ")})`);
        }
        command = arg as DriverCommand;
    }
  }

  if (command === undefined) throw usageError(`a command is required (${COMMANDS.join(", ")})`);
  if (stack === undefined) throw usageError("--stack <name> is required (e.g. --stack dev)");
  if (!STACK_NAME.test(stack)) throw usageError(`"${stack}" is not a valid stack name`);
  if (format !== undefined && command !== "plan") throw usageError("--format applies to plan only");
  if (yes && command !== "destroy") throw usageError("--yes applies to destroy only");
  return { command, stack, format: format ?? "text", verbose, yes };
}
