import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { COMMANDS, parseDriverArgs, USAGE } from "../src/driver/args.ts";

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
    assert.match(usageMessage(["deploy", "--stack", "dev"]), /unknown command "deploy" \(expected one of plan, preview, up, destroy, outputs, prune, sweep, promote\)/);
    assert.match(usageMessage(["--stack", "dev"]), /a command is required/);
    assert.match(usageMessage(["up"]), /--stack <name> is required/);
    assert.match(usageMessage(["up", "--stack", "../prod"]), /"\.\.\/prod" is not a valid stack name/);
  });

  it("promote: --from (a stack or org/project/stack) and --to, --stage defaulting to jira", () => {
    assert.deepEqual(parseDriverArgs(["promote", "--from", "dev", "--to", "prod"]), { command: "promote", from: "dev", to: "prod", stage: "jira" });
    assert.deepEqual(parseDriverArgs(["promote", "--to=prod", "--from=acme/jira-images/dev", "--stage", "base"]), {
      command: "promote",
      from: "acme/jira-images/dev",
      to: "prod",
      stage: "base",
    });
    assert.match(usageMessage(["promote", "--from", "dev"]), /promote needs --from <stack> and --to <stack>/);
    assert.match(usageMessage(["promote", "--from", "dev", "--to", "prod", "--stack", "prod"]), /--stack applies to plan, preview, up, destroy, outputs, prune, sweep only/);
    assert.match(usageMessage(["up", "--stack", "dev", "--from", "qa"]), /--from applies to promote only/);
    assert.match(usageMessage(["promote", "--from", "acme/dev", "--to", "prod"]), /--from "acme\/dev" is not a stack name \(dev\) or org\/project\/stack/);
    assert.match(usageMessage(["promote", "--from", "dev", "--to", "a/b/prod"]), /"a\/b\/prod" is not a valid stack name/);
    assert.match(usageMessage(["promote", "--from", "dev", "--to", "prod", "--stage", "Jira"]), /--stage "Jira" is not a stage name/);
  });

  it("the README's command block shows every command and every option of the usage, and no other", () => {
    const readme = readFileSync(join(import.meta.dirname, "..", "README.md"), "utf8");
    const start = readme.indexOf("## Running it: `npm run pipeline`");
    const section = readme.slice(start, readme.indexOf("\n## ", start));
    const block = /```\n([\s\S]*?)```/.exec(section)![1]!;
    const shown = [...block.matchAll(/^npm run (?:--silent )?pipeline -- ([a-z]+)/gm)].map((m) => m[1]!);
    assert.deepEqual([...new Set(shown)].sort(), [...COMMANDS].sort());
    // --help is answered before any parsing, and the usage is its output.
    const options = (text: string) => [...new Set(text.match(/(?<![\w-])--[a-z]+/g))].filter((o) => o !== "--help").sort();
    const strip = (text: string) => text.replace(/npm run (?:--silent )?pipeline --/g, "");
    assert.deepEqual(options(USAGE).filter((o) => !options(strip(section)).includes(o)), [], "options of the usage the README does not mention");
    assert.deepEqual(options(strip(block)).filter((o) => !options(USAGE).includes(o)), [], "options in the README's block the usage does not know");
  });

  it("the usage lists every command and, per option, the commands that take it", () => {
    assert.match(USAGE, /^usage: npm run pipeline -- <plan\|preview\|up\|destroy\|outputs\|prune\|sweep> --stack <dev\|prod> \[options\]$/m);
    assert.match(USAGE, /^ {2}--format <text\|markdown> +plan: Markdown table/m);
    assert.match(USAGE, /^ {2}--yes +destroy: confirm destroy$/m);
    assert.match(USAGE, /^ {2}--apply +prune, sweep: remove what it finds \(prune: deregister the images, delete their snapshots\); default: a dry run$/m);
    assert.match(USAGE, /^ {2}--stack <name> +stack \(a Pulumi\.<name>\.yaml must exist\)$/m);
    assert.match(USAGE, /^ {7}npm run pipeline -- promote --from <stack> --to <stack> \[--stage <stage>\]$/m);
    assert.match(USAGE, /^ {2}--stage <stage> +promote: stage promoted with its ancestors \(default jira\)$/m);
  });
});
