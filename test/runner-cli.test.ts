/**
 * The stage runner through its real command line, against the stand-in packer
 * (test/fixtures/fake-packer), as the Pulumi command provider runs it.
 */
import { randomBytes } from "node:crypto";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { execa } from "execa";
import { StageResultSchema, type StageResult } from "../src/runner/result.ts";
import { liveRunIds } from "../src/runner/run-marker.ts";
import {
  FAKE_PACKER,
  LOGS,
  PREFIX_LINE,
  ROOT,
  RUN_ID_VARIABLE,
  lfsPointerText,
  makeTemplate,
  providerCommand,
  readRecord,
  runCli,
  startCli,
  survivors,
  tempDir,
  toCliRun,
  waitFor,
  type CliRun,
} from "./fixtures/fake-packer-harness.ts";

function assertSuccess(run: CliRun): StageResult {
  assert.equal(run.exitCode, 0, run.stderr);
  const lines = run.stdout.split("\n");
  assert.equal(lines.length, 2, `stdout must be one line: ${JSON.stringify(run.stdout)}`);
  assert.equal(lines[1], "");
  return StageResultSchema.parse(JSON.parse(lines[0]!));
}

function assertFailure(run: CliRun, code: string, exitCode = 1): void {
  assert.equal(run.exitCode, exitCode, run.stderr);
  assert.equal(run.stdout, "", "nothing on stdout on failure");
  assert.ok(run.stderrLines.length > 0);
  for (const line of run.stderrLines) assert.match(line, PREFIX_LINE);
  assert.ok(
    run.stderrLines.some((l) => l.includes(`] ${code}: `)),
    `expected ${code} in:\n${run.stderr}`,
  );
}

function logPathFrom(run: CliRun): string {
  const line = run.stderrLines.find((l) => / log: \//.test(l));
  assert.ok(line, `no log path in:\n${run.stderr}`);
  return line.slice(line.indexOf("log: ") + 5);
}

describe("stage runner CLI (stand-in packer): builds", function () {
  const dir = tempDir();
  const plain = makeTemplate(dir, { name: "plain" });
  const withManifest = makeTemplate(dir, { name: "with-manifest", manifest: true });
  const runs: Record<string, CliRun> = {};
  const records: Record<string, string> = {};

  const scenario = (name: string, args: string[], env: Record<string, string>) => {
    records[name] = join(dir, `${name}.record`);
    return runCli(["--stage", "jira", "--log-dir", join(dir, "logs", name), ...args], {
      env: { FAKE_PACKER_RECORD: records[name]!, ...env },
    }).then((run) => {
      runs[name] = run;
    });
  };

  before(async function () {
    this.timeout(60_000);
    writeFileSync(join(dir, "dev.pkrvars.hcl"), 'environment = "dev"\n');
    // Independent runs, started together to keep the suite short.
    await Promise.all([
      scenario(
        "success",
        ["--template", plain, "--var", "stage=jira", "--var", "region=ap-northeast-1", "--var-file", join(dir, "dev.pkrvars.hcl")],
        { FAKE_PACKER_LOG: join(LOGS, "amazon-ebs-success.log") },
      ),
      scenario("multi-region", ["--template", plain], { FAKE_PACKER_LOG: join(LOGS, "amazon-ebs-multi-region.log") }),
      scenario("manifest", ["--template", withManifest, "--var", "manifest_path=/elsewhere/manifest.json"], {
        FAKE_PACKER_LOG: join(LOGS, "amazon-ebs-manifest.log"),
        FAKE_PACKER_MANIFEST: join(LOGS, "amazon-ebs-manifest.manifest.json"),
      }),
      scenario("failure", ["--template", plain], { FAKE_PACKER_LOG: join(LOGS, "amazon-ebs-error.log"), FAKE_PACKER_EXIT: "1" }),
      scenario("no-artifact", ["--template", plain], { FAKE_PACKER_LOG: join(LOGS, "no-artifacts.log") }),
      scenario("two-builds", ["--template", plain], { FAKE_PACKER_LOG: join(LOGS, "two-builds.log") }),
    ]);
  });

  const log = (name: string) => readFileSync(join(LOGS, name), "utf8");

  it("succeeds with exactly one JSON line on stdout (StageResultSchema) and Packer's whole output in the log file only", () => {
    const result = assertSuccess(runs["success"]!);
    assert.equal(result.stage, "jira");
    assert.equal(result.amiId, "ami-0123456789abcdef0");
    assert.equal(result.region, "ap-northeast-1");
    assert.deepEqual(result.amis, { "ap-northeast-1": "ami-0123456789abcdef0" });
    assert.equal(result.builderId, "mitchellh.amazonebs");
    assert.equal(result.packerVersion, "1.11.2");
    assert.equal(dirname(result.logFile), join(dir, "logs", "success"));
    assert.equal(readFileSync(result.logFile, "utf8"), log("amazon-ebs-success.log"));
    assert.equal(statSync(result.logFile).mode & 0o777, 0o600, "the log is private to its owner");
    assert.ok(!runs["success"]!.stdout.includes("Launching a source AWS instance"));
    for (const line of runs["success"]!.stderrLines) assert.match(line, PREFIX_LINE);
  });

  it("runs `packer build -machine-readable -var ... -var-file ... <template>`, with Packer writing straight to the log file", () => {
    const start = readRecord(records["success"]!).find((e) => e.event === "start");
    assert.ok(start);
    assert.deepEqual(start["argv"], [
      "build",
      "-machine-readable",
      "-var",
      "stage=jira",
      "-var",
      "region=ap-northeast-1",
      "-var-file",
      join(dir, "dev.pkrvars.hcl"),
      plain,
    ]);
    // No pipe between Packer and the runner: a dead runner can never SIGPIPE Packer mid-cleanup.
    assert.equal(start["stdout"], assertSuccess(runs["success"]!).logFile);
    assert.equal(start["pgid"], start["pid"], "Packer leads its own process group");
  });

  it("reports every region of a multi-region build; amiId/region are the first region listed", () => {
    const result = assertSuccess(runs["multi-region"]!);
    assert.equal(result.region, "ap-northeast-1");
    assert.equal(result.amiId, "ami-0aaaaaaaaaaaaaaa1");
    assert.deepEqual(result.amis, {
      "ap-northeast-1": "ami-0aaaaaaaaaaaaaaa1",
      "eu-west-1": "ami-0bbbbbbbbbbbbbbb2",
      "us-east-1": "ami-0ccccccccccccccc3",
    });
  });

  it("passes its own per-run manifest_path, counts the repeated manifest artifact once, and takes the run uuid from the manifest's last run", () => {
    const run = runs["manifest"]!;
    const result = assertSuccess(run);
    assert.equal(result.amiId, "ami-0d0d0d0d0d0d0d0d1");
    assert.equal(result.packerRunUuid, "7f3e2a10-5b6c-4d8e-a9f0-1b2c3d4e5f60");
    const start = readRecord(records["manifest"]!).find((e) => e.event === "start")!;
    const manifestPath = (start["vars"] as Record<string, string>)["manifest_path"]!;
    assert.equal(dirname(manifestPath), dirname(result.logFile));
    assert.equal(basename(manifestPath), basename(result.logFile).replace(/\.log$/, ".manifest.json"));
    assert.equal((start["argv"] as string[]).filter((a) => a.startsWith("manifest_path=")).length, 1);
  });

  it("fails on a Packer error, quoting Packer's decoded error text and the log path", () => {
    const run = runs["failure"]!;
    assertFailure(run, "PACKER_FAILED");
    assert.match(run.stderr, /PACKER_FAILED: packer build exited with status 1/);
    assert.match(run.stderr, /packer: ==> amazon-ebs\.jira: Error launching source instance: UnauthorizedOperation/);
    // %!(PACKER_COMMA) decoded, and the escaped newline became a line of its own (with the prefix).
    assert.match(run.stderr, /instance\/\*, because no identity-based policy/);
    assert.match(run.stderr, /\] packer: \tstatus code: 403, request id: 5b7a3e2c/);
    assert.ok(!run.stderr.includes("PACKER_COMMA"));
    assert.ok(existsSync(logPathFrom(run)));
  });

  it("fails when Packer exits 0 without an AMI artifact", () => {
    const run = runs["no-artifact"]!;
    assertFailure(run, "NO_AMI");
    assert.match(run.stderr, /exited 0 but created no artifact at all/);
    assert.ok(existsSync(logPathFrom(run)));
  });

  it("fails when two builds each produce an AMI, naming both", () => {
    const run = runs["two-builds"]!;
    assertFailure(run, "MULTIPLE_IMAGES");
    assert.match(run.stderr, /amazon-ebs\.jira -> eu-west-1:ami-0111111111111111a/);
    assert.match(run.stderr, /amazon-ebs\.jira-arm64 -> eu-west-1:ami-0222222222222222b/);
  });

});

describe("stage runner CLI (stand-in packer): preflight and command line", function () {
  const dir = tempDir();
  const template = makeTemplate(dir);
  const record = join(dir, "record");
  const workspace = join(dir, "chef");
  const files = join(dir, "files");
  const runs: Record<string, CliRun> = {};

  const scenario = (name: string, args: string[]) =>
    runCli(args, { env: { FAKE_PACKER_RECORD: record } }).then((run) => {
      runs[name] = run;
    });
  const stage = (...rest: string[]) => ["--stage", "jira", "--template", template, "--log-dir", join(dir, "logs"), ...rest];

  before(async function () {
    this.timeout(60_000);
    mkdirSync(join(workspace, "cookbooks", "jira", "files"), { recursive: true });
    writeFileSync(join(workspace, "cookbooks", "jira", "recipes.rb"), "package 'java-17-amazon-corretto-headless'\n");
    writeFileSync(join(workspace, "cookbooks", "jira", "files", "dbconfig.tar.gz"), lfsPointerText(2048));
    mkdirSync(files);
    writeFileSync(join(files, "atlassian-jira-software-9.12.15.tar.gz"), lfsPointerText());
    await Promise.all([
      scenario("lfs-input", stage("--input", workspace, "--input", files)),
      scenario("require-missing", stage("--require", join(files, "atlassian-jira-software-9.99.0.tar.gz"))),
      scenario("require-pointer", stage("--require", join(files, "atlassian-jira-software-9.12.15.tar.gz"))),
      scenario("bad-var", stage("--var", "region")),
      scenario("unknown-flag", stage("--force")),
    ]);
  });

  it("stops at git-lfs pointers under --input directories, naming every one and saying to run git lfs pull", () => {
    const run = runs["lfs-input"]!;
    assertFailure(run, "LFS_POINTER", 2);
    assert.match(run.stderr, /chef\/cookbooks\/jira\/files\/dbconfig\.tar\.gz is a git-lfs pointer/);
    assert.match(run.stderr, /files\/atlassian-jira-software-9\.12\.15\.tar\.gz is a git-lfs pointer \(real file: 117\.7 MiB/);
    assert.match(run.stderr, /git lfs pull/);
  });

  it("requires --require files to exist and not be pointers, saying how to add or fetch them", () => {
    assertFailure(runs["require-missing"]!, "REQUIRED_FILE_MISSING", 2);
    assert.match(runs["require-missing"]!.stderr, /atlassian-jira-software-9\.99\.0\.tar\.gz does not exist/);
    assert.match(runs["require-missing"]!.stderr, /git lfs track/);
    assert.match(runs["require-missing"]!.stderr, /git lfs pull/);
    assertFailure(runs["require-pointer"]!, "LFS_POINTER", 2);
    assert.match(runs["require-pointer"]!.stderr, /atlassian-jira-software-9\.12\.15\.tar\.gz is a git-lfs pointer.*git lfs pull/);
  });

  it("rejects bad --var syntax and unknown options", () => {
    assertFailure(runs["bad-var"]!, "USAGE", 2);
    assert.match(runs["bad-var"]!.stderr, /--var "region" is not key=value/);
    assertFailure(runs["unknown-flag"]!, "USAGE", 2);
    assert.match(runs["unknown-flag"]!.stderr, /unknown option --force/);
  });

  it("never started a build when preflight failed", () => {
    assert.deepEqual(
      readRecord(record).filter((e) => e.event === "start"),
      [],
    );
  });
});

describe("stage runner CLI (stand-in packer): interrupts, SIGKILL and timeout", function () {
  this.timeout(30_000);

  it("forwards SIGTERM to Packer as an interrupt, waits for its cleanup, then exits non-zero", async () => {
    const dir = tempDir();
    const record = join(dir, "record");
    const child = startCli(["--stage", "jira", "--template", makeTemplate(dir), "--log-dir", join(dir, "logs")], {
      env: { FAKE_PACKER_HANG: "1", FAKE_PACKER_CLEANUP_MS: "300", FAKE_PACKER_RECORD: record },
    });
    await waitFor("packer build to start", () => readRecord(record).some((e) => e.event === "start"));
    child.kill("SIGTERM");
    const run = toCliRun(await child);
    assertFailure(run, "INTERRUPTED", 143);
    assert.match(run.stderr, /received SIGTERM; Packer cleaned up and reported its builds cancelled/);
    // `packer version` runs next to the build, so its record may come at any point.
    const events = readRecord(record)
      .map((e) => e.event)
      .filter((e) => e !== "version");
    assert.deepEqual(events, ["start", "interrupted", "cleaned-up", "exit"], "the runner exited after Packer's cleanup");
    assert.equal(readRecord(record).find((e) => e.event === "interrupted")!["signal"], "SIGINT");
    await waitFor("no process left", () => survivors({ text: dir }).length === 0, 5_000);
  });

  it("when the runner is SIGKILLed (provider cancel), the watchdog interrupts Packer, which cleans up; nothing keeps running", async () => {
    const dir = tempDir();
    const record = join(dir, "record");
    const command = providerCommand([
      "--stage",
      "jira",
      "--template",
      makeTemplate(dir, { extra: RUN_ID_VARIABLE }),
      "--log-dir",
      join(dir, "logs"),
      "--secret-var",
      "db_password",
    ]);
    // As the Pulumi command provider runs it: /bin/sh -c "exec node ...", then SIGKILL to that child.
    // Packer printed a credential before it hung: the watchdog must leave the log redacted too.
    // And a session token and a secret variable's value, bare, which only redaction by value finds.
    const leaky = join(dir, "leaky.log");
    const accessKey = ["AKIA", "IOSFODNN7", "EXAMPLE"].join("");
    const sessionToken = randomBytes(120).toString("base64");
    const dbPassword = `pw-${randomBytes(12).toString("hex")}`;
    writeFileSync(
      leaky,
      `1732540879,,ui,message,    amazon-ebs.jira: env: AWS_ACCESS_KEY_ID=${accessKey}\n` +
        `1732540879,,ui,error,    amazon-ebs.jira: request failed: token ${sessionToken} rejected; db ${dbPassword}\n`,
    );
    const child = execa("/bin/sh", ["-c", command], {
      cwd: ROOT,
      env: {
        PACKER_BIN: FAKE_PACKER,
        FAKE_PACKER_LOG: leaky,
        FAKE_PACKER_HANG: "1",
        FAKE_PACKER_CLEANUP_MS: "500",
        FAKE_PACKER_RECORD: record,
        AWS_SESSION_TOKEN: sessionToken,
        PKR_VAR_db_password: dbPassword,
      },
      reject: false,
    });
    await waitFor("packer build to start", () => readRecord(record).some((e) => e.event === "start"));
    const packerPid = readRecord(record).find((e) => e.event === "start")!["pid"] as number;
    // Give the watchdog time to start: the runner spawns it right after Packer.
    await waitFor("the watchdog", () => survivors({ text: "watchdog.sh" }).some((p) => p.cmdline.includes(String(packerPid))));
    child.kill("SIGKILL");
    const killed = await child;
    assert.equal(killed.signal, "SIGKILL");
    // The runner is gone but its Packer still cleans up: the build counts as live for sweep.
    const runId = String((readRecord(record).find((e) => e.event === "start")!["argv"] as string[]).find((a) => a.startsWith("run_id=")) ?? "").slice("run_id=".length);
    assert.ok(liveRunIds(dir).has(runId), `run ${runId} live while Packer cleans up`);
    await waitFor("Packer's cleanup", () => readRecord(record).some((e) => e.event === "cleaned-up"));
    const interrupted = readRecord(record).find((e) => e.event === "interrupted")!;
    assert.equal(interrupted["signal"], "SIGINT");
    await waitFor("Packer and the watchdog to exit", () => survivors({ text: dir }).length === 0, 10_000);
    const logDir = join(dir, "logs");
    assert.deepEqual(readdirSync(logDir).filter((f) => f.endsWith(".run.json")), [], "the watchdog removed the live-run marker");
    assert.ok(!liveRunIds(dir).has(runId));
    const logText = readFileSync(join(logDir, readdirSync(logDir).find((f) => f.endsWith(".log"))!), "utf8");
    assert.match(logText, /stage-runner watchdog: runner \(pid \d+\) is gone; interrupting Packer/);
    assert.match(logText, /Cleanly cancelled builds after being interrupted\./);
    assert.ok(!logText.includes(accessKey), "the watchdog had the log redacted");
    assert.match(logText, /AWS_ACCESS_KEY_ID=\[REDACTED-AWS-ACCESS-KEY-ID\]/);
    assert.ok(!logText.includes(sessionToken) && !logText.includes(dbPassword), "the watchdog redacted the known secrets by value");
    assert.match(logText, /token \[REDACTED\] rejected; db \[REDACTED\]/);
  });

  it("--timeout interrupts Packer, waits for its cleanup and exits non-zero saying 'timed out'", async () => {
    const dir = tempDir();
    const record = join(dir, "record");
    const run = await runCli(["--stage", "jira", "--template", makeTemplate(dir), "--log-dir", join(dir, "logs"), "--timeout", "2"], {
      env: { FAKE_PACKER_HANG: "1", FAKE_PACKER_RECORD: record },
    });
    assertFailure(run, "TIMEOUT", 124);
    assert.match(run.stderr, /timed out after 2 s; Packer cleaned up/);
    assert.deepEqual(
      readRecord(record)
        .map((e) => e.event)
        .filter((e) => e !== "version"),
      ["start", "interrupted", "cleaned-up", "exit"],
    );
  });
});

describe("stage runner CLI: as a user runs it", function () {
  this.timeout(30_000);

  it("`npm run --silent stage -- ...` from the project root prints the one JSON line and nothing else", async () => {
    const dir = tempDir();
    const args = ["--stage", "custom-dev", "--template", makeTemplate(dir), "--log-dir", join(dir, "logs")];
    const result = await execa("npm", ["run", "--silent", "stage", "--", ...args], {
      cwd: ROOT,
      env: { PACKER_BIN: FAKE_PACKER, FAKE_PACKER_LOG: join(LOGS, "amazon-ebs-success.log") },
      reject: false,
      stripFinalNewline: false,
    });
    const stageResult = assertSuccess(toCliRun(result));
    assert.equal(stageResult.stage, "custom-dev");
    assert.equal(stageResult.amiId, "ami-0123456789abcdef0");
  });
});
