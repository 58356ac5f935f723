import { strict as assert } from "node:assert";
import { parseDriverArgs, USAGE } from "../src/driver/args.ts";

function usageMessage(argv: string[]): string {
  try {
    parseDriverArgs(argv);
  } catch (error) {
    assert.ok(error instanceof Error);
    assert.match(error.message, /^pipeline-usage: /);
    return error.message;
  }
  assert.fail(`${JSON.stringify(argv)} was accepted`);
}

describe("driver command line (parseArgs)", () => {
  it("reads a command, its stack and its options in any order, with --opt=value too", () => {
    assert.deepEqual(parseDriverArgs(["--stack", "prod", "plan", "--format=markdown"]), {
      command: "plan",
      stack: "prod",
      format: "markdown",
      verbose: false,
      yes: false,
      apply: false,
    });
    assert.deepEqual(parseDriverArgs(["destroy", "--yes", "--stack=dev", "--verbose"]), {
      command: "destroy",
      stack: "dev",
      format: "text",
      verbose: true,
      yes: true,
      apply: false,
    });
  });

  it("refuses unknown or misplaced options, missing values and stray words, naming them", () => {
    assert.match(usageMessage(["up", "--stack", "dev", "--force"]), /unknown option --force$/);
    assert.match(usageMessage(["up", "--stack"]), /--stack needs a value/);
    assert.match(usageMessage(["up", "--stack", "dev", "--yes"]), /--yes applies to destroy only/);
    assert.match(usageMessage(["preview", "--stack", "dev", "--format", "markdown"]), /--format applies to plan only/);
    assert.match(usageMessage(["outputs", "--stack", "dev", "--verbose"]), /--verbose applies to preview, up, destroy only/);
    assert.match(usageMessage(["plan", "--stack", "dev", "--format", "html"]), /--format must be text or markdown, not "html"/);
    assert.match(usageMessage(["up", "down", "--stack", "dev"]), /one command only \(got "up" and "down"\)/);
    assert.match(usageMessage(["deploy", "--stack", "dev"]), /unknown command "deploy" \(expected one of plan, preview, up, destroy, outputs, sweep\)/);
    assert.match(usageMessage(["--stack", "dev"]), /a command is required/);
    assert.match(usageMessage(["up"]), /--stack <name> is required/);
    assert.match(usageMessage(["up", "--stack", "../prod"]), /"\.\.\/prod" is not a valid stack name/);
  });

  it("the usage lists every command and, per option, the commands that take it", () => {
    assert.match(USAGE, /^usage: npm run pipeline -- <plan\|preview\|up\|destroy\|outputs\|sweep> --stack <dev\|prod> \[options\]$/m);
    assert.match(USAGE, /^ {2}--format <text\|markdown> +plan: Markdown table/m);
    assert.match(USAGE, /^ {2}--yes +destroy: confirm destroy$/m);
    assert.match(USAGE, /^ {2}--apply +sweep: remove what sweep finds \(default: a dry run\)$/m);
    assert.match(USAGE, /^ {2}--stack <name> +stack \(a Pulumi\.<name>\.yaml must exist\)$/m);
  });
});
