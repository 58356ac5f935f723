import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const INSTALLER = "packer/files/atlassian-jira-software-9.12.15.tar.gz";

function requireTool(command: string, aptPackage: string): void {
  const probe = spawnSync("sh", ["-c", `command -v ${command}`]);
  if (probe.status !== 0) {
    throw new Error(`${command} is not installed: apt-get install -y ${aptPackage}`);
  }
}

describe("git-lfs installers: a checkout without `git lfs pull` is stopped by the stage runner's preflight", function () {
  let scratch: string;
  let gitEnv: Record<string, string>;
  let origin: string;
  let clone: string;
  let installer: Buffer;
  let buildMarker: string;
  let fakePacker: string;

  async function git(cwd: string, ...args: string[]) {
    return execa("git", args, { cwd, env: gitEnv });
  }

  async function runner() {
    return execa(
      "npm",
      [
        "run", "--silent", "stage", "--",
        "--stage", "jira",
        "--template", "packer/jira",
        "--var", "source_ami=ami-0123456789abcdef0",
        "--require", join(clone, INSTALLER),
        "--log-dir", join(scratch, "logs"),
      ],
      // The builder's own address, as a user exports it (README: Set-up).
      { cwd: root, reject: false, env: { PACKER_BIN: fakePacker, CHECKPOINT_DISABLE: "1", PKR_VAR_ssh_source_cidrs: '["203.0.113.7/32"]' } },
    );
  }

  before(async function () {
    requireTool("git", "git");
    requireTool("git-lfs", "git-lfs");
    scratch = await mkdtemp(join(tmpdir(), "lfs-preflight-"));
    // A user's machine: its own HOME with git-lfs installed, nothing from this machine's config.
    const home = join(scratch, "home");
    await mkdir(home);
    gitEnv = {
      HOME: home,
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_AUTHOR_NAME: "Test",
      GIT_AUTHOR_EMAIL: "test@example.invalid",
      GIT_COMMITTER_NAME: "Test",
      GIT_COMMITTER_EMAIL: "test@example.invalid",
    };
    await execa("git", ["lfs", "install"], { cwd: home, env: gitEnv });

    // The repository with the installer committed through the project's own .gitattributes.
    origin = join(scratch, "origin");
    await mkdir(join(origin, "packer", "files"), { recursive: true });
    await git(origin, "init", "--quiet", "--initial-branch=main");
    await copyFile(join(root, ".gitattributes"), join(origin, ".gitattributes"));
    installer = randomBytes(4096);
    await writeFile(join(origin, INSTALLER), installer);
    await git(origin, "add", ".gitattributes", INSTALLER);
    await git(origin, "commit", "--quiet", "-m", "Add the Jira installer");

    // A checkout that skipped the LFS download, as CI without `lfs: true` or `git lfs pull` does.
    clone = join(scratch, "clone");
    await execa("git", ["clone", "--quiet", origin, clone], { env: { ...gitEnv, GIT_LFS_SKIP_SMUDGE: "1" } });

    // Stand-in packer: answers `version` as Packer 1.6.6 does, records that a build was started
    // (and fails it: no AWS here).
    buildMarker = join(scratch, "packer-build-started");
    fakePacker = join(scratch, "packer");
    await writeFile(
      fakePacker,
      [
        "#!/bin/sh",
        'case " $* " in',
        // A Packer the templates accept (packer/plugins.pkr.hcl's required_version), so init runs too.
        '  *" version "*) printf \'1700000000,,version,1.11.2\\n1700000000,,version-prerelease,\\n1700000000,,ui,say,Packer v1.11.2\\n\'; exit 0 ;;',
        '  *" init "*) exit 0 ;;',
        `  *" build "*) : > "${buildMarker}"; exit 1 ;;`,
        "esac",
        "exit 2",
        "",
      ].join("\n"),
    );
    await chmod(fakePacker, 0o755);
  });

  after(async function () {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it("stores the installer in git-lfs through the project's .gitattributes", async function () {
    const { stdout } = await git(origin, "lfs", "ls-files", "--name-only");
    assert.deepEqual(stdout.split("\n"), [INSTALLER]);
  });

  it("leaves a pointer file in a checkout without `git lfs pull`", async function () {
    const text = await readFile(join(clone, INSTALLER), "utf8");
    assert.match(text, /^version https:\/\/git-lfs\.github\.com\/spec\/v1\noid sha256:[0-9a-f]{64}\nsize 4096\n$/);
  });

  it("stops the jira stage before Packer runs, naming the pointer file and `git lfs pull`", async function () {
    const result = await runner();
    assert.notEqual(result.exitCode, 0);
    assert.equal(result.stdout, "");
    const lines = result.stderr.split("\n").filter((l) => l.length > 0);
    assert.ok(lines.length > 0 && lines.every((l) => l.startsWith("stage-runner: [jira] ")), result.stderr);
    assert.match(result.stderr, /atlassian-jira-software-9\.12\.15\.tar\.gz/);
    assert.match(result.stderr, /git-lfs pointer/);
    assert.match(result.stderr, /git lfs pull/);
    assert.equal(await stat(buildMarker).catch(() => null), null, "packer build ran with a pointer as installer");
  });

  it("lets the build start once `git lfs pull` fetched the real installer", async function () {
    await git(clone, "lfs", "pull");
    assert.ok((await readFile(join(clone, INSTALLER))).equals(installer), "git lfs pull did not restore the installer");
    const result = await runner();
    assert.doesNotMatch(result.stderr, /git-lfs pointer|git lfs pull/);
    assert.ok(await stat(buildMarker).catch(() => null), `packer build was not started:\n${result.stderr}`);
  });
});
