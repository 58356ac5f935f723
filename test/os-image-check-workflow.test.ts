/**
 * .github/workflows/os-image-check.yml: the weekly preview that says when a rebuild is due. Its
 * scripts run here with stand-in `pulumi`, `npm` and `gh` that print what the real ones would.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { tempDir } from "./helpers/temp-dir.ts";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const file = join(root, ".github", "workflows", "os-image-check.yml");

interface Step {
  name?: string;
  id?: string;
  uses?: string;
  run?: string;
  env?: Record<string, string>;
  with?: Record<string, unknown>;
}
interface Job {
  if?: string;
  needs?: string[];
  permissions?: Record<string, string>;
  outputs?: Record<string, string>;
  env?: Record<string, string>;
  steps: Step[];
}
interface Workflow {
  on: { schedule?: Array<{ cron: string }>; workflow_dispatch?: { inputs?: Record<string, { type: string; default: unknown }> } };
  permissions?: Record<string, string>;
  jobs: Record<string, Job>;
}

const workflow = () => parse(readFileSync(file, "utf8")) as Workflow;
const step = (job: string, id: string) => workflow().jobs[job]!.steps.find((s) => s.id === id || s.name?.startsWith(id))!;

function standIn(bin: string, name: string, body: string[]): void {
  writeFileSync(join(bin, name), ["#!/bin/sh", ...body].join("\n"));
  chmodSync(join(bin, name), 0o755);
}

describe("weekly OS image check (.github/workflows/os-image-check.yml)", function () {
  this.timeout(20_000);

  it("runs weekly and by hand, with least privilege: nothing by default, read + OIDC to preview, issues: write only to report", function () {
    const w = workflow();
    const cron = w.on.schedule?.[0]?.cron.split(" ") ?? [];
    assert.equal(cron.length, 5);
    assert.deepEqual([cron[2], cron[3]], ["*", "*"], "every month, every day of the month");
    assert.match(cron[4]!, /^[0-6]$/, "one day of the week");
    assert.equal(w.on.workflow_dispatch?.inputs?.["open-issue"]?.type, "boolean");
    assert.deepEqual(w.permissions, {});
    assert.deepEqual(w.jobs.check!.permissions, { contents: "read", "id-token": "write" });
    assert.deepEqual(w.jobs.issue!.permissions, { issues: "write" });
    assert.deepEqual(w.jobs.issue!.needs, ["check"]);
    assert.match(w.jobs.issue!.if!, /needs\.check\.outputs\.due != ''/);
    assert.match(w.jobs.issue!.if!, /vars\.OS_IMAGE_CHECK_ISSUE == 'true'/);
    assert.match(w.jobs.issue!.if!, /inputs\.open-issue/);
    const aws = w.jobs.check!.steps.find((s) => s.uses?.startsWith("aws-actions/configure-aws-credentials@"));
    assert.equal(aws?.with?.["role-to-assume"], "${{ vars.AWS_PREVIEW_ROLE_ARN }}", "the read-only preview role");
    assert.doesNotMatch(readFileSync(file, "utf8"), /PULUMI_CONFIG_PASSPHRASE \}\}|secrets\./, "no deploy passphrase, no secret");
  });

  function runCheck(previews: Record<string, { exit: number; stderr: string }>) {
    const dir = tempDir("os-image-check-");
    const bin = join(dir, "bin");
    mkdirSync(bin);
    standIn(bin, "pulumi", ['case "$1 $2" in', '  "stack ls") printf \'[{"name":"dev"},{"name":"prod"}]\\n\' ;;', '  "stack export") echo \'{"deployment":{"resources":[]}}\' > "$6" ;;', "esac"]);
    // `npm run --silent pipeline -- preview --stack <s>`: the driver's progress lines on stderr.
    standIn(bin, "npm", ['stack=$7', 'printf \'%s\\n\' "$*|$PULUMI_BACKEND_URL" >> "$RECORD"', 'cat "$PREVIEWS/$stack.err" >&2', 'exit "$(cat "$PREVIEWS/$stack.exit")"']);
    mkdirSync(join(dir, "previews"));
    for (const [stack, p] of Object.entries(previews)) {
      writeFileSync(join(dir, "previews", `${stack}.err`), p.stderr);
      writeFileSync(join(dir, "previews", `${stack}.exit`), String(p.exit));
      copyFileSync(join(root, `Pulumi.${stack}.yaml`), join(dir, `Pulumi.${stack}.yaml`));
    }
    const s = step("check", "preview");
    const env = {
      PATH: `${bin}:${process.env.PATH}`,
      HOME: dir,
      RUNNER_TEMP: dir,
      GITHUB_STEP_SUMMARY: join(dir, "summary.md"),
      GITHUB_OUTPUT: join(dir, "output"),
      PULUMI_BACKEND_URL: "s3://state-bucket",
      SCRATCH_BACKEND: `file://${dir}/preview-state`,
      STACKS: Object.keys(previews).join(" "),
      RECORD: join(dir, "record"),
      PREVIEWS: join(dir, "previews"),
    };
    assert.equal(s.env?.STACKS, "dev prod");
    const result = spawnSync("bash", ["--norc", "--noprofile", "-e", "-c", s.run!], { cwd: dir, env, encoding: "utf8" });
    const read = (name: string) => (existsSync(join(dir, name)) ? readFileSync(join(dir, name), "utf8") : "");
    return { result, summary: read("summary.md"), output: read("output"), record: read("record"), dir };
  }

  it("reports in the run summary which stages of which stack would rebuild, and why", function () {
    const { result, summary, output, record, dir } = runCheck({
      dev: {
        exit: 0,
        stderr: 'pipeline: preview of stack "dev" (backend file://x)\n[base] would rebuild (changed: sourceImage)\n[jira] would rebuild (changed: parentAmi)\nSTAGE  RESULT\nbase   would rebuild (sourceImage)\n',
      },
      prod: { exit: 0, stderr: 'pipeline: preview of stack "prod" (backend file://x)\npipeline: preview of "prod" finished\n' },
    });
    assert.equal(result.status, 0, result.stderr + result.stdout);
    assert.match(summary, /\*\*dev: rebuild due\*\*\n\n- \[base\] would rebuild \(changed: sourceImage\)\n- \[jira\] would rebuild \(changed: parentAmi\)\n/);
    assert.match(summary, /prod: no rebuild due/);
    assert.match(output, /^due=dev$/m);
    assert.match(output, /^report<<report-[0-9a-f]{16}\n### OS image check\n[\s\S]*dev: rebuild due[\s\S]*\nreport-[0-9a-f]{16}$/m);
    // The preview ran through the project's driver, on the scratch copy of the state.
    assert.match(record, new RegExp(`^run --silent pipeline -- preview --stack dev\\|file://${dir}/preview-state$`, "m"));
    assert.doesNotMatch(readFileSync(join(dir, "Pulumi.dev.yaml"), "utf8"), /encryptionsalt/);
  });

  it("says no rebuild is due when none is, and leaves `due` empty (no issue)", function () {
    const quiet = { exit: 0, stderr: "pipeline: preview finished\n" };
    const { result, summary, output } = runCheck({ dev: quiet, prod: quiet });
    assert.equal(result.status, 0, result.stderr);
    assert.match(summary, /dev: no rebuild due\n\nprod: no rebuild due/);
    assert.match(output, /^due=$/m);
  });

  it("fails the run when a preview fails (e.g. the OS image lookup), showing its last lines", function () {
    const { result, output } = runCheck({
      dev: { exit: 1, stderr: "JiraImagesError: SOURCE_IMAGE_LOOKUP_FAILED: stack dev: resolveSourceAmi: no OS image could be resolved\npipeline-failed: pulumi preview failed\n" },
    });
    assert.equal(result.status, 1);
    assert.match(result.stdout, /SOURCE_IMAGE_LOOKUP_FAILED/);
    assert.match(result.stdout, /::error::the preview of stack dev failed/);
    assert.equal(output, "");
  });

  function runIssue(openIssues: string) {
    const dir = tempDir("os-image-issue-");
    const bin = join(dir, "bin");
    mkdirSync(bin);
    standIn(bin, "gh", ['printf \'%s\\n\' "$*" >> "$RECORD"', 'if [ "$1 $2" = "issue list" ]; then printf \'%s\' "$OPEN"; fi']);
    const job = workflow().jobs.issue!;
    const env = { PATH: `${bin}:${process.env.PATH}`, RECORD: join(dir, "record"), OPEN: openIssues, REPORT: "### OS image check\n\n**dev: rebuild due**", RUN_URL: "https://github.com/o/r/actions/runs/1" };
    assert.equal(job.env?.GH_TOKEN, "${{ github.token }}");
    const result = spawnSync("bash", ["--norc", "--noprofile", "-e", "-c", job.steps[0]!.run!], { env, encoding: "utf8" });
    return { result, record: readFileSync(join(dir, "record"), "utf8") };
  }

  it("opens an issue with the report when none is open, and comments on the open one otherwise", function () {
    const fresh = runIssue("");
    assert.equal(fresh.result.status, 0, fresh.result.stderr);
    assert.match(fresh.record, /^issue create --title OS image check: image rebuild due --body ### OS image check\n\n\*\*dev: rebuild due\*\*\n\nRun: https:\/\/github\.com\/o\/r\/actions\/runs\/1$/m);
    const again = runIssue("42");
    assert.equal(again.result.status, 0, again.result.stderr);
    assert.match(again.record, /^issue comment 42 --body ### OS image check/m);
    assert.doesNotMatch(again.record, /issue create/);
  });
});
