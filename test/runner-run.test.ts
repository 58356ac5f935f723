/**
 * The runner's behaviour in-process (`runStage`, the function behind the CLI), against the
 * stand-in packer: the cases that need no separate runner process, so they cost no Node startup.
 */
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { type InProcessRun as Outcome, LOGS, runInProcess as run, lfsPointerText, makeTemplate, readRecord, tempDir } from "./fixtures/fake-packer-harness.ts";

describe("stage runner (in-process, stand-in packer)", function () {
  this.timeout(40_000);
  const dir = tempDir();
  const plain = makeTemplate(dir, { name: "plain" });
  const withManifest = makeTemplate(dir, { name: "with-manifest", manifest: true });
  const outcomes: Record<string, Outcome> = {};
  const logs = (name: string) => ["--log-dir", join(dir, "logs", name)];

  before(async function () {
    this.timeout(60_000);
    const leaky = join(dir, "leaky.log");
    // Built at run time so that no credential-shaped string is committed anywhere.
    const accessKey = ["AKIA", "IOSFODNN7", "EXAMPLE"].join("");
    const secret = ["wJalrXUtnFEMI", "K7MDENG", "bPxRfiCYEXAMPLEKEY"].join("/");
    writeFileSync(
      leaky,
      readFileSync(join(LOGS, "amazon-ebs-success.log"), "utf8").replace(
        "Converging 14 resources\n",
        `Converging 14 resources\n1732540879,,ui,message,    amazon-ebs.jira: env: AWS_ACCESS_KEY_ID=${accessKey} aws_secret_access_key=${secret}\n`,
      ),
    );
    const pointerTemplate = makeTemplate(dir, { name: "pointer-template" });
    mkdirSync(join(pointerTemplate, "scripts"));
    writeFileSync(join(pointerTemplate, "scripts", "setup.sh.gz"), lfsPointerText(99));
    mkdirSync(join(dir, "no-hcl"));
    writeFileSync(join(dir, "no-hcl", "README.md"), "nothing to build\n");
    writeFileSync(join(dir, "empty.tar.gz"), "");
    const packerDir = join(dir, "packer");
    makeTemplate(packerDir, { name: "base" });
    writeFileSync(
      join(packerDir, "plugins.pkr.hcl"),
      'packer {\n  required_plugins {\n    amazon = {\n      version = ">= 1.3.0"\n      source  = "github.com/hashicorp/amazon"\n    }\n  }\n}\n',
    );
    const versionedDir = join(dir, "versioned");
    makeTemplate(versionedDir, { name: "base" });
    writeFileSync(join(versionedDir, "plugins.pkr.hcl"), 'packer {\n  required_version = ">= 1.10.0"\n}\n');
    const selfContained = makeTemplate(dir, { name: "self-contained", extra: 'packer {\n  required_plugins {\n  }\n}\n' });
    mkdirSync(join(dir, "cwd"));

    const cases: Array<[string, Promise<Outcome>]> = [
      [
        "mismatch",
        run(["--stage", "custom-dev", "--template", withManifest, ...logs("mismatch")], {
          FAKE_PACKER_LOG: join(LOGS, "amazon-ebs-manifest.log"),
          FAKE_PACKER_MANIFEST: join(LOGS, "amazon-ebs-manifest-mismatch.manifest.json"),
        }),
      ],
      [
        "no-manifest",
        run(["--stage", "base", "--template", withManifest, ...logs("no-manifest")], { FAKE_PACKER_MANIFEST: "none" }),
      ],
      [
        "generated",
        run(
          ["--stage", "base", "--template", withManifest, "--var", "stage=base", "--var", 'ami_regions=["us-west-2","eu-west-1"]', ...logs("generated")],
          { FAKE_PACKER_RECORD: join(dir, "generated.record") },
        ),
      ],
      ["leaky", run(["--stage", "jira", "--template", plain, ...logs("leaky")], { FAKE_PACKER_LOG: leaky })],
      [
        "init-modern",
        run(["--stage", "base", "--template", join(packerDir, "base"), ...logs("init")], {
          FAKE_PACKER_RECORD: join(dir, "init-modern.record"),
        }),
      ],
      [
        "init-old",
        run(["--stage", "base", "--template", join(packerDir, "base"), ...logs("init")], {
          FAKE_PACKER_RECORD: join(dir, "init-old.record"),
          FAKE_PACKER_VERSION: "1.6.6",
        }),
      ],
      [
        "init-fails",
        run(["--stage", "base", "--template", join(packerDir, "base"), ...logs("init")], { FAKE_PACKER_INIT_EXIT: "1" }),
      ],
      [
        "too-old",
        run(["--stage", "base", "--template", selfContained, ...logs("init")], { FAKE_PACKER_VERSION: "1.6.6" }),
      ],
      [
        "below-required",
        run(["--stage", "base", "--template", join(versionedDir, "base"), ...logs("init")], {
          FAKE_PACKER_RECORD: join(dir, "below-required.record"),
          FAKE_PACKER_VERSION: "1.8.7",
        }),
      ],
      ["default-log-dir", run(["--stage", "custom-prod", "--template", plain], {}, join(dir, "cwd"))],
      ["lfs-template", run(["--stage", "jira", "--template", pointerTemplate, ...logs("x")])],
      ["no-template", run(["--stage", "jira", "--template", join(dir, "missing")])],
      ["no-hcl", run(["--stage", "jira", "--template", join(dir, "no-hcl")])],
      ["require-empty", run(["--stage", "jira", "--template", plain, "--require", join(dir, "empty.tar.gz")])],
      ["credential-var", run(["--stage", "jira", "--template", plain, "--var", "secret_key=abc123"])],
      ["missing-input", run(["--stage", "jira", "--template", plain, "--input", join(dir, "nowhere")])],
      ["no-packer", run(["--stage", "jira", "--template", plain], { PACKER_BIN: join(dir, "no-such-packer") })],
    ];
    const settled = await Promise.all(cases.map(([, outcome]) => outcome));
    cases.forEach(([name], i) => (outcomes[name] = settled[i]!));
  });

  it("fails when the manifest's last run names another AMI than the stream, naming both", () => {
    const o = outcomes["mismatch"]!;
    assert.equal(o.exitCode, 1);
    assert.match(o.error!, /^MANIFEST_MISMATCH: /);
    assert.match(o.error!, /ami-0e0e0e0e0e0e0e0e0/);
    assert.match(o.error!, /ami-0d0d0d0d0d0d0d0d1/);
  });

  it("still succeeds on the stream alone when a template declares manifest_path but writes no manifest, and says so", () => {
    const o = outcomes["no-manifest"]!;
    assert.ok(o.result, o.error);
    assert.equal(o.result.packerRunUuid, undefined);
    assert.ok(o.stderr.some((l) => l.startsWith("warning: the template declares manifest_path but wrote no manifest")));
  });

  it("hands every --var to Packer (the stand-in derives its AMIs and regions from them)", () => {
    const o = outcomes["generated"]!;
    assert.ok(o.result, o.error);
    assert.deepEqual(Object.keys(o.result.amis), ["eu-west-1", "us-east-1", "us-west-2"]);
    assert.equal(o.result.region, "eu-west-1", "first listed = alphabetical, as the amazon plugin sorts");
    assert.ok(o.result.packerRunUuid);
    const start = readRecord(join(dir, "generated.record")).find((e) => e.event === "start")!;
    assert.equal((start["vars"] as Record<string, string>)["ami_regions"], '["us-west-2","eu-west-1"]');
  });

  it("redacts AWS credentials from the log and keeps the log private", () => {
    const o = outcomes["leaky"]!;
    assert.ok(o.result, o.error);
    const text = readFileSync(o.result.logFile, "utf8");
    assert.ok(!/AKIA[A-Z0-9]{16}/.test(text), "access key id redacted");
    assert.ok(!text.includes("bPxRfiCYEXAMPLEKEY"), "secret key redacted");
    assert.match(text, /AWS_ACCESS_KEY_ID=\[REDACTED-AWS-ACCESS-KEY-ID\] aws_secret_access_key=\[REDACTED\]/);
    assert.equal(statSync(o.result.logFile).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dirname(o.result.logFile)), [o.result.logFile.slice(dirname(o.result.logFile).length + 1)]);
  });

  it("runs `packer init <parent>` first when the parent folder declares required_plugins and Packer is >= 1.7", () => {
    assert.ok(outcomes["init-modern"]!.result, outcomes["init-modern"]!.error);
    const events = readRecord(join(dir, "init-modern.record"));
    assert.deepEqual(
      events.map((e) => e.event),
      ["version", "init", "start", "exit"],
    );
    assert.deepEqual(events[1]!["argv"], ["init", join(dir, "packer")]);
  });

  it("skips `packer init` with Packer 1.6.6, which has the amazon builder built in", () => {
    assert.ok(outcomes["init-old"]!.result, outcomes["init-old"]!.error);
    assert.deepEqual(
      readRecord(join(dir, "init-old.record")).map((e) => e.event),
      ["version", "start", "exit"],
    );
  });

  it("fails clearly when `packer init` fails, and when the template itself needs a Packer newer than the one installed", () => {
    assert.match(outcomes["init-fails"]!.error!, /^PACKER_INIT_FAILED: `packer init .*\/packer` exited with status 1/);
    assert.match(outcomes["too-old"]!.error!, /^PACKER_TOO_OLD: .*Packer 1\.6\.6 cannot load/);
  });

  it("refuses a Packer older than the required_version next to the template before Packer starts", () => {
    const o = outcomes["below-required"]!;
    assert.match(o.error ?? "", /^PACKER_TOO_OLD: Packer 1\.8\.7 does not satisfy required_version ">= 1\.10\.0" of .*versioned\/plugins\.pkr\.hcl/);
    assert.deepEqual(readRecord(join(dir, "below-required.record")).map((e) => e.event), ["version"], "no init, no build");
  });

  it("writes the log under .packer-logs/<stage>/ of the current directory by default", () => {
    const o = outcomes["default-log-dir"]!;
    assert.ok(o.result, o.error);
    assert.equal(dirname(o.result.logFile), join(dir, "cwd", ".packer-logs", "custom-prod"));
  });

  it("preflight: names a git-lfs pointer anywhere under the template folder", () => {
    assert.match(outcomes["lfs-template"]!.error!, /^LFS_POINTER: .*pointer-template\/scripts\/setup\.sh\.gz is a git-lfs pointer/);
  });

  it("preflight: a missing template, a folder without templates, an empty required file, a missing input", () => {
    assert.match(outcomes["no-template"]!.error!, /^TEMPLATE_NOT_FOUND: template .*missing does not exist/);
    assert.match(outcomes["no-hcl"]!.error!, /^TEMPLATE_EMPTY: .* holds no \*\.pkr\.hcl or \*\.pkr\.json file/);
    assert.match(outcomes["require-empty"]!.error!, /^REQUIRED_FILE_EMPTY: required file .*empty\.tar\.gz is empty/);
    assert.match(outcomes["missing-input"]!.error!, /^INPUT_NOT_FOUND: --input .*nowhere does not exist/);
  });

  it("preflight: refuses AWS credentials passed as template variables, without echoing them", () => {
    const error = outcomes["credential-var"]!.error!;
    assert.match(error, /^CREDENTIAL_IN_VAR: --var secret_key=… looks like an AWS credential/);
    assert.ok(!error.includes("abc123"));
  });

  it("says how to install Packer when PACKER_BIN cannot be run", () => {
    assert.match(outcomes["no-packer"]!.error!, /^PACKER_NOT_FOUND: .*apt-get install -y packer/);
  });
});
