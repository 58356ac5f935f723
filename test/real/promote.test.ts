import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parse } from "yaml";
import { realTool } from "../helpers/real-tools.ts";
import { tempDir } from "../helpers/temp-dir.ts";

const ROOT = resolve(import.meta.dirname, "..", "..");
const BASE = "ami-0aaaaaaaaaaaaaaa1";
const JIRA = "ami-0bbbbbbbbbbbbbbb2";
const OLD_JIRA = "ami-0ddddddddddddddd4";
const PASSPHRASE = "promote test passphrase";

/** dev's outputs as its `up` exports them (src/pipeline.ts), with the image test result of each stage. */
function devOutputs(jiraTests: object | undefined): object {
  return {
    amiIds: { base: BASE, jira: JIRA, "custom-dev": "ami-0ccccccccccccccc3" },
    images: {
      base: { stage: "base", amiId: BASE, amis: { "eu-west-1": BASE }, parentStage: null, parentAmi: "none", tests: { passed: true, count: 6 } },
      jira: { stage: "jira", amiId: JIRA, amis: { "eu-west-1": JIRA }, parentStage: "base", parentAmi: BASE, ...(jiraTests ? { tests: jiraTests } : {}) },
    },
  };
}

/**
 * A project folder on a file backend (`.pulumi-state`, the driver's default) whose stacks are
 * created by the real Pulumi CLI and given outputs with `pulumi stack import`, as an `up` leaves them.
 */
function project(stacks: Record<string, object>) {
  const root = tempDir("promote-real-");
  copyFileSync(join(ROOT, "Pulumi.yaml"), join(root, "Pulumi.yaml"));
  for (const stack of ["dev", "prod"]) copyFileSync(join(ROOT, `Pulumi.${stack}.yaml`), join(root, `Pulumi.${stack}.yaml`));
  mkdirSync(join(root, ".pulumi-state"));
  const pulumi = realTool("pulumi");
  const env = {
    PATH: `${dirname(pulumi)}:${dirname(process.execPath)}:/usr/bin:/bin`,
    HOME: root,
    PULUMI_HOME: join(root, ".pulumi-home"),
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_CONFIG_PASSPHRASE: PASSPHRASE,
    PULUMI_BACKEND_URL: `file://${join(root, ".pulumi-state")}`,
  };
  const cli = (args: string[]): string => {
    const result = spawnSync(pulumi, args, { cwd: root, env, encoding: "utf8" });
    assert.equal(result.status, 0, `pulumi ${args.join(" ")}: ${result.stderr}`);
    return result.stdout;
  };
  for (const [stack, outputs] of Object.entries(stacks)) {
    // As `pulumi stack init` does for a passphrase stack: it adds encryptionsalt to Pulumi.<stack>.yaml.
    cli(["stack", "init", stack, "--secrets-provider", "passphrase"]);
    const file = join(root, `${stack}.state.json`);
    cli(["stack", "export", "--stack", stack, "--file", file]);
    const state = JSON.parse(readFileSync(file, "utf8"));
    state.deployment.resources = [
      { urn: `urn:pulumi:${stack}::jira-images::pulumi:pulumi:Stack::jira-images-${stack}`, custom: false, type: "pulumi:pulumi:Stack", outputs },
    ];
    writeFileSync(file, JSON.stringify(state));
    cli(["stack", "import", "--stack", stack, "--file", file]);
  }
  /** `npm run pipeline -- <argv>` on this folder: the real driver (processDeps) in its own process. */
  const pipeline = (argv: string[]) => {
    const script =
      `const { runPipeline } = await import(${JSON.stringify(pathToFileURL(join(ROOT, "src/driver/run.ts")).href)});` +
      `const { processDeps } = await import(${JSON.stringify(pathToFileURL(join(ROOT, "src/driver/process-deps.ts")).href)});` +
      `process.exitCode = await runPipeline(process.argv.slice(1), processDeps(process.env.PROJECT_ROOT));`;
    const result = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script, ...argv], {
      cwd: ROOT,
      env: { ...env, PROJECT_ROOT: root },
      encoding: "utf8",
    });
    return { code: result.status, stdout: result.stdout, stderr: result.stderr };
  };
  return { root, cli, pipeline, prodFile: join(root, "Pulumi.prod.yaml") };
}

describe("npm run pipeline -- promote with the real Pulumi CLI (file backend)", function () {
  this.timeout(120_000);

  it("pins dev's tested jira image in Pulumi.prod.yaml, keeping the file, and a second run writes nothing", () => {
    const p = project({
      dev: devOutputs({ passed: true, count: 14 }),
      prod: { images: { "custom-prod": { stage: "custom-prod", amiId: "ami-0fffffffffffffff6", parentStage: "jira", parentAmi: OLD_JIRA } } },
    });
    const before = readFileSync(p.prodFile, "utf8");
    // `pulumi stack init` rewrote the file and put the passphrase's salt after config:.
    assert.match(before, /^encryptionsalt: /m);

    const first = p.pipeline(["promote", "--from", "dev", "--to", "prod"]);
    assert.equal(first.code, 0, first.stderr);
    const after = readFileSync(p.prodFile, "utf8");
    // Every line stays, in its order (the salt included); only the pin's lines are new.
    const lines = after.split("\n");
    const added: string[] = [];
    let at = 0;
    for (const kept of before.split("\n")) {
      while (at < lines.length && lines[at] !== kept) added.push(lines[at++]!);
      assert.ok(at < lines.length, `line kept in order: ${JSON.stringify(kept)}\n${after}`);
      at++;
    }
    added.push(...lines.slice(at));
    assert.ok(added.every((l) => /^ {2}(# Promotion: .*|jira-images:promoted:)$|^ {4}(fromStack: dev|stage: jira|amiId: ami-\w+)$/.test(l)), `only the pin is new: ${added.join(" | ")}`);
    assert.deepEqual(parse(after).config["jira-images:promoted"], { fromStack: "dev", stage: "jira", amiId: JIRA });
    assert.match(first.stdout, new RegExp(`^ {2}jira {9}promoted from dev ${JIRA} \\(tests passed, 14\\)$`, "m"));
    assert.match(first.stdout, new RegExp(`^ {2}base {9}dev's ${BASE} `, "m"));
    assert.match(first.stdout, new RegExp(`^ {2}custom-prod {2}rebuilds \\(parent AMI changes from ${OLD_JIRA} to ${JIRA}\\)$`, "m"));

    // The program's own config parser reads the file (Pulumi hands it the pin as JSON).
    const config = JSON.parse(p.cli(["config", "get", "jira-images:promoted", "--stack", "prod", "--json"]));
    assert.deepEqual(JSON.parse(config.value), { fromStack: "dev", stage: "jira", amiId: JIRA });

    const same = p.pipeline(["promote", "--from", "dev", "--to", "prod"]);
    assert.equal(same.code, 0, same.stderr);
    assert.match(same.stdout, /already pins dev's jira .*; nothing written/);
    assert.equal(readFileSync(p.prodFile, "utf8"), after);

    // A fully qualified source (as a StackReference names it) reads the same stack on this backend.
    const qualified = p.pipeline(["promote", "--from", "organization/jira-images/dev", "--to", "prod"]);
    assert.equal(qualified.code, 0, qualified.stderr);
    assert.equal(readFileSync(p.prodFile, "utf8"), after.replace(/fromStack: dev$/m, "fromStack: organization/jira-images/dev"));
  });

  it("refuses dev's image without a test result (exit 1) and a dev stack the backend does not have", () => {
    const p = project({ dev: devOutputs(undefined) });
    const before = readFileSync(p.prodFile, "utf8");
    const untested = p.pipeline(["promote", "--from", "dev", "--to", "prod"]);
    assert.equal(untested.code, 1);
    assert.match(untested.stderr, new RegExp(`^promote-untested: stack dev's jira image ${JIRA} has no image test result`, "m"));
    const missing = p.pipeline(["promote", "--from", "qa", "--to", "prod"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^pipeline-stack-missing: stack "qa" does not exist in file:\/\/.*\.pulumi-state; nothing to promote from/m);
    assert.equal(readFileSync(p.prodFile, "utf8"), before);
  });
});
