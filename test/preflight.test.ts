import { strict as assert } from "node:assert";
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadStackConfigFile } from "../src/config.ts";
import { describeProblem, stackPreflight, type PreflightProblem } from "../src/preflight.ts";
import { stackStages } from "../stages/index.ts";
import { jiraInstaller } from "../stages/jira.ts";
import { BUILDER_ENV, PROJECT_ROOT, byType, projectCopy, runProgram } from "./helpers/pulumi-mocks.ts";

const INSTALLER = jiraInstaller("9.12.15");
const POINTER = `version https://git-lfs.github.com/spec/v1\noid sha256:${"4d7a".repeat(16)}\nsize 612345678\n`;
const SPLIT_INTERNET = { PKR_VAR_ssh_source_cidrs: '["0.0.0.0/1","128.0.0.0/1"]' };

function problemsOf(root: string, env: NodeJS.ProcessEnv, stack = "dev"): PreflightProblem[] {
  return stackPreflight(stackStages(loadStackConfigFile(PROJECT_ROOT, stack), root), root, env);
}

/** Runs `fn` with console.warn captured: under runtime mocks pulumi.log.warn writes there. */
async function capturingWarnings<T>(fn: () => Promise<T>): Promise<{ result: T; warnings: string[] }> {
  const warnings: string[] = [];
  const original = console.warn;
  console.warn = (...args: unknown[]) => void warnings.push(args.map(String).join(" "));
  try {
    return { result: await fn(), warnings };
  } finally {
    console.warn = original;
  }
}

describe("preflight: every sure failure before anything is declared (src/preflight.ts)", () => {
  it("finds nothing in a checkout with the installer and the builder's address set", () => {
    assert.deepEqual(problemsOf(projectCopy(), BUILDER_ENV), []);
  });

  it("a fresh clone: names the missing installer, where Atlassian publishes it, and the unset SSH setting", () => {
    const problems = problemsOf(projectCopy({ installer: false }), {});
    assert.deepEqual(problems.map((p) => [p.code, p.subject, p.stages]), [
      ["REQUIRED_FILE_MISSING", INSTALLER, ["jira"]],
      ["SSH_CIDRS_INVALID", "PKR_VAR_ssh_source_cidrs", []],
    ]);
    assert.equal(
      describeProblem(problems[0]!),
      `REQUIRED_FILE_MISSING ${INSTALLER} (stage jira): does not exist (a fresh clone has no installers); download Jira Software 9.12.15 ` +
        "(TAR.GZ archive) from https://www.atlassian.com/software/jira/downloads/binary/atlassian-jira-software-9.12.15.tar.gz " +
        "(all versions: https://www.atlassian.com/software/jira/download-archives), copy it to " +
        `${INSTALLER} and commit it with git-lfs (README: Installers (git-lfs)); if it is committed already, run \`git lfs pull\``,
    );
    assert.match(describeProblem(problems[1]!), /^SSH_CIDRS_INVALID PKR_VAR_ssh_source_cidrs: not set \(.*\); export PKR_VAR_ssh_source_cidrs="\[\\"\$\(curl -s https:\/\/checkip\.amazonaws\.com\)\/32\\"\]"$/);
  });

  it("lists every problem at once: a pointer installer, a missing var file, a pointer in the workspace, each too-wide CIDR", () => {
    const root = projectCopy({ installer: false });
    writeFileSync(join(root, INSTALLER), POINTER);
    rmSync(join(root, "packer/custom/dev.pkrvars.hcl"));
    writeFileSync(join(root, "packer/chef/cookbooks/jira/files/big.rpm"), POINTER);
    const problems = problemsOf(root, SPLIT_INTERNET);
    assert.deepEqual(problems.map((p) => [p.code, p.subject, p.stages]), [
      ["LFS_POINTER", INSTALLER, ["jira"]],
      // The pointer's oid is the SHA-256 of the file it stands for: not the pinned one.
      ["INSTALLER_CHECKSUM_MISMATCH", INSTALLER, ["jira"]],
      ["LFS_POINTER", "packer/chef/cookbooks/jira/files/big.rpm", ["jira", "custom-dev"]],
      ["VAR_FILE_MISSING", "packer/custom/dev.pkrvars.hcl", ["custom-dev"]],
      ["SSH_CIDRS_INVALID", "PKR_VAR_ssh_source_cidrs", []],
      ["SSH_CIDRS_INVALID", "PKR_VAR_ssh_source_cidrs", []],
    ]);
    assert.match(problems[0]!.fix, /git lfs pull/);
    assert.match(problems[4]!.problem, /"0\.0\.0\.0\/1" opens SSH to 2\^31 addresses/);
    assert.match(problems[5]!.problem, /"128\.0\.0\.0\/1" opens SSH/);
  });

  it("refuses an empty installer, and one that is a directory or a dangling link", () => {
    const root = projectCopy({ installer: false });
    writeFileSync(join(root, INSTALLER), "");
    assert.deepEqual(problemsOf(root, BUILDER_ENV).map((p) => p.code), ["REQUIRED_FILE_EMPTY"]);
    rmSync(join(root, INSTALLER));
    mkdirSync(join(root, INSTALLER));
    assert.deepEqual(problemsOf(root, BUILDER_ENV).map((p) => p.code), ["REQUIRED_FILE_MISSING"]);
    rmSync(join(root, INSTALLER), { recursive: true });
    symlinkSync("nowhere.tar.gz", join(root, INSTALLER));
    assert.deepEqual(problemsOf(root, BUILDER_ENV).map((p) => p.code), ["REQUIRED_FILE_MISSING"]);
  });
});

describe("preflight in the program (runtime mocks)", () => {
  it("up: stops with one PREFLIGHT_FAILED error listing every problem, before declaring any resource", async () => {
    const root = projectCopy({ installer: false });
    rmSync(join(root, "packer/custom/dev.pkrvars.hcl"));
    const run = await runProgram({ stack: "dev", projectRoot: root, env: SPLIT_INTERNET });
    assert.equal(run.resources.length, 0);
    const message = String((run.error as Error).message);
    assert.match(message, /^PREFLIGHT_FAILED: stack dev: 4 problems stop the build before anything is built or launched:\n/);
    const lines = message.split("\n").slice(1);
    assert.deepEqual(lines.map((l) => l.trim().split(" ").slice(0, 2).join(" ")), [
      `REQUIRED_FILE_MISSING ${INSTALLER}`,
      "VAR_FILE_MISSING packer/custom/dev.pkrvars.hcl",
      "SSH_CIDRS_INVALID PKR_VAR_ssh_source_cidrs:",
      "SSH_CIDRS_INVALID PKR_VAR_ssh_source_cidrs:",
    ]);
  });

  it("preview: the same problems are warnings, and the preview declares everything", async () => {
    const root = projectCopy({ installer: false });
    const { result: run, warnings } = await capturingWarnings(() => runProgram({ stack: "dev", preview: true, projectRoot: root, env: {} }));
    assert.equal(run.error, undefined, String(run.error));
    assert.equal(byType(run, "command:local:Command").length, 3);
    assert.equal(byType(run, "aws:ec2/instance:Instance").length, 1);
    const ours = warnings.filter((w) => w.includes("an up stops here"));
    assert.deepEqual(ours.map((w) => /(REQUIRED_FILE_MISSING|SSH_CIDRS_INVALID) \S+/.exec(w)?.[0]), [
      `REQUIRED_FILE_MISSING ${INSTALLER}`,
      "SSH_CIDRS_INVALID PKR_VAR_ssh_source_cidrs:",
    ]);
  });

  it("preview of a ready checkout warns about nothing", async () => {
    const { result: run, warnings } = await capturingWarnings(() => runProgram({ stack: "dev", preview: true }));
    assert.equal(run.error, undefined);
    assert.deepEqual(warnings.filter((w) => w.includes("an up stops here")), []);
  });
});
