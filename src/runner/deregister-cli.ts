/**
 * The stage command's `delete` (set when `deregisterReplacedImages` is on):
 * `exec node --import tsx src/runner/deregister-cli.ts --stage <name> --stack <stack>`, run by the command provider
 * when the stage is rebuilt or destroyed, with the old stage result in PULUMI_COMMAND_STDOUT.
 *
 * Exit 0: every image of the old result is gone (or there was none). Exit 1: an image could not be
 * removed, or is not this stack's image of this stage in the caller's account (then nothing was
 * touched). Without `--stack` (a delete recorded by a version before images carried a stack tag)
 * the stack tag is not checked. Exit 2: usage, or an old result that
 * cannot be read. Any non-zero exit fails the update and keeps the old command in state, so that
 * the next `up` tries again. Nothing goes to stdout; every stderr line starts with
 * `stage-runner: [<stage>] `, like the stage runner's.
 */
import { parseStageStdout, type StageResult } from "./result.ts";
import { DeregisterRefused, deregisterStageImages, type Owner } from "./deregister.ts";

const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

// The SDK warns on Node < 22 through process.emitWarning, a stderr line without our prefix. Node 20
// is this project's floor (the pinned Pulumi SDK's), and the lock file pins an SDK that runs on it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

function writeLines(stage: string, lines: string[]): void {
  const prefix = `stage-runner: [${stage}] `;
  process.stderr.write(
    lines
      .flatMap((line) => line.split("\n"))
      .map((line) => `${prefix}${line}\n`)
      .join(""),
  );
}

function exit(code: number): void {
  process.stderr.write("", () => process.exit(code));
}

const NAME = /^[a-z][a-z0-9-]*$/;
/** Pulumi stack names: letters, digits, `-`, `_`, `.`. */
const STACK = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function ownerArgs(argv: readonly string[]): Owner | undefined {
  if (argv.length !== 2 && argv.length !== 4) return undefined;
  if (argv[0] !== "--stage" || !NAME.test(argv[1]!)) return undefined;
  if (argv.length === 2) return { stage: argv[1]! };
  if (argv[2] !== "--stack" || !STACK.test(argv[3]!)) return undefined;
  return { stage: argv[1]!, stack: argv[3]! };
}

async function main(argv: string[]): Promise<void> {
  const owner = ownerArgs(argv);
  if (owner === undefined) {
    writeLines("?", [
      `USAGE: deregister-cli.ts --stage <name> [--stack <stack>] (with the old stage result in PULUMI_COMMAND_STDOUT), got ${JSON.stringify(argv)}`,
    ]);
    return exit(EXIT.usage);
  }
  const stage = owner.stage;
  const say = (lines: string[]) => writeLines(stage, lines);
  const previous = process.env.PULUMI_COMMAND_STDOUT ?? "";
  if (previous.trim() === "") {
    say(["nothing to deregister (no previous stage result)"]);
    return exit(EXIT.ok);
  }

  // An unreadable result is not "nothing": exiting 0 would drop the command from state and with
  // it the only record of which images to remove, so they would stay forever unnoticed.
  let result: StageResult;
  try {
    result = parseStageStdout(stage, previous);
  } catch (error) {
    say([
      `DEREGISTER_INPUT_INVALID: the old result in PULUMI_COMMAND_STDOUT cannot be read, so its images cannot be found`,
      error instanceof Error ? error.message : String(error),
      `Fix: remove the stage's images by hand, then drop the old command from state: pulumi state delete <urn of ${stage}-build>`,
    ]);
    return exit(EXIT.usage);
  }

  try {
    // Loaded only when there are images to remove: the SDK takes about a second to load, which
    // the no-op and bad-input paths should not pay.
    const { sdkEc2Layer } = await import("./deregister-ec2.ts");
    const { failures } = await deregisterStageImages(owner, result, sdkEc2Layer(), (line) => say([line]));
    if (failures.length > 0) {
      say([...failures, "the old command stays in state; the next up tries again"]);
      return exit(EXIT.failed);
    }
    exit(EXIT.ok);
  } catch (error) {
    if (error instanceof DeregisterRefused) {
      say([error.message, ...error.details, `Fix: check the stage's state; to keep the images, drop the old command from state: pulumi state delete <urn of ${stage}-build>`]);
      return exit(EXIT.failed);
    }
    say([`DEREGISTER_FAILED: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`]);
    exit(EXIT.failed);
  }
}

await main(process.argv.slice(2));
