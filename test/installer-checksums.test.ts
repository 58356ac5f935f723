import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { loadStackConfigFile } from "../src/config.ts";
import { INSTALLER_CHECKSUMS, parseSha256Sums, readInstallerPins } from "../src/installer-checksums.ts";
import { describeProblem, stackPreflight } from "../src/preflight.ts";
import { stackStages } from "../stages/index.ts";
import { copyPackerFolder } from "./helpers/packer-copy.ts";
import { PROJECT_ROOT } from "./helpers/pulumi-mocks.ts";
import { tempDir } from "./helpers/temp-dir.ts";

const INSTALLER = "atlassian-jira-software-9.12.15.tar.gz";
const CONTENT = "stand-in Jira 9.12.15 installer\n";
const SHA = createHash("sha256").update(CONTENT).digest("hex");
const OTHER = "ab".repeat(32);

/** A project root with the real packer/ (installers aside), a SHA256SUMS and maybe an installer. */
function project(sums: string | undefined, installer?: string): string {
  const root = tempDir("installer-pins-");
  copyPackerFolder(PROJECT_ROOT, root);
  if (sums !== undefined) writeFileSync(join(root, INSTALLER_CHECKSUMS), sums);
  if (installer !== undefined) writeFileSync(join(root, "packer", "files", INSTALLER), installer);
  return root;
}

describe("installer checksums (packer/files/SHA256SUMS)", () => {
  it("reads sha256sum's own format, text and binary mode, blank lines, CRLF", () => {
    const pins = parseSha256Sums(`${SHA}  ${INSTALLER}\r\n\n${OTHER.toUpperCase()} *jdk.rpm\n`, INSTALLER_CHECKSUMS);
    assert.deepEqual([...pins], [[INSTALLER, SHA], ["jdk.rpm", OTHER]]);
  });

  it("refuses a malformed line or a second, different pin, naming file and line", () => {
    assert.throws(() => parseSha256Sums(`${SHA}  ${INSTALLER}\n${SHA.slice(1)}  x.tar.gz\n`, "SUMS"), /^JiraImagesError: INSTALLER_CHECKSUMS_INVALID: SUMS:2 is not "<sha256>  <file name>"/);
    assert.throws(() => parseSha256Sums(`${SHA}  ../x.tar.gz\n`, "SUMS"), /INSTALLER_CHECKSUMS_INVALID: SUMS:1/);
    assert.throws(() => parseSha256Sums(`${SHA}  ${INSTALLER}\n${OTHER}  ${INSTALLER}\n`, "SUMS"), /SUMS:2 pins atlassian-jira-software-9\.12\.15\.tar\.gz a second time/);
  });

  it("agrees with `sha256sum -c` on the same file", async () => {
    const root = project(`${SHA}  ${INSTALLER}\n`, CONTENT);
    const check = await execa("sha256sum", ["--check", "--strict", "SHA256SUMS"], { cwd: join(root, "packer", "files"), reject: false });
    assert.equal(check.exitCode, 0, check.stdout + check.stderr);
    assert.equal(readInstallerPins(root).get(INSTALLER), SHA);
  });

  it("hands the jira stage its installer's pin, and an empty one when there is none", () => {
    const config = loadStackConfigFile(PROJECT_ROOT, "dev");
    const jira = (root: string) => stackStages(config, root).find((s) => s.name === "jira")!;
    assert.equal(jira(project(`${SHA}  ${INSTALLER}\n`)).vars.jira_installer_sha256, SHA);
    assert.equal(jira(project(`${OTHER}  atlassian-jira-software-10.3.0.tar.gz\n`)).vars.jira_installer_sha256, "");
    assert.equal(jira(project(undefined)).vars.jira_installer_sha256, "");
  });

  it("stops an up before anything is built when the installer is not pinned or contradicts its pin, also as a git-lfs pointer", () => {
    const config = loadStackConfigFile(PROJECT_ROOT, "dev");
    const env = { PKR_VAR_ssh_source_cidrs: '["203.0.113.7/32"]' };
    const problems = (root: string) =>
      stackPreflight(stackStages(config, root), root, env).map((p) => ({ code: p.code, line: describeProblem(p) }));
    assert.deepEqual(problems(project(`${SHA}  ${INSTALLER}\n`, CONTENT)), []);
    const file = `packer/files/${INSTALLER}`;
    assert.deepEqual(problems(project(`${OTHER}  ${INSTALLER}\n`, CONTENT)), [
      {
        code: "INSTALLER_CHECKSUM_MISMATCH",
        line:
          `INSTALLER_CHECKSUM_MISMATCH ${file} (stage jira): has SHA-256 ${SHA}, but packer/files/SHA256SUMS pins ${OTHER}; ` +
          "put back the installer Atlassian published for that checksum, or (after checking the new one against Atlassian's published SHA-256) update its line in packer/files/SHA256SUMS",
      },
    ]);
    assert.deepEqual(problems(project(undefined, CONTENT)), [
      {
        code: "INSTALLER_NOT_PINNED",
        line:
          `INSTALLER_NOT_PINNED ${file} (stage jira): has no pinned SHA-256 in packer/files/SHA256SUMS; ` +
          `add the line "<sha256>  ${INSTALLER}" to packer/files/SHA256SUMS with the SHA-256 Atlassian publishes for the download (README: Installers (git-lfs))`,
      },
    ]);
    const pointer = (oid: string) => `version https://git-lfs.github.com/spec/v1\noid sha256:${oid}\nsize 512000000\n`;
    assert.deepEqual(problems(project(`${SHA}  ${INSTALLER}\n`, pointer(SHA))).map((p) => p.code), ["LFS_POINTER"]);
    assert.deepEqual(problems(project(`${SHA}  ${INSTALLER}\n`, pointer(OTHER))).map((p) => p.code), ["LFS_POINTER", "INSTALLER_CHECKSUM_MISMATCH"]);
    assert.deepEqual(problems(project(undefined)).map((p) => p.code), ["REQUIRED_FILE_MISSING", "INSTALLER_NOT_PINNED"]);
  });
});

describe("verify-installer.sh (the build instance's check before Chef unpacks the installer)", () => {
  const script = join(PROJECT_ROOT, "packer", "jira", "scripts", "verify-installer.sh");

  function run(installer: string, sha256: string | undefined) {
    const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin", INSTALLER: installer };
    if (sha256 !== undefined) env.INSTALLER_SHA256 = sha256;
    return execa("bash", [script], { env, extendEnv: false, reject: false });
  }

  function upload(content: string): string {
    const dir = tempDir("verify-installer-");
    mkdirSync(join(dir, "files"));
    const path = join(dir, "files", INSTALLER);
    writeFileSync(path, content);
    chmodSync(path, 0o600);
    return path;
  }

  it("passes the pinned installer", async () => {
    const result = await run(upload(CONTENT), SHA);
    assert.equal(result.exitCode, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`${INSTALLER.replace(/\./g, "\\.")} matches its pinned SHA-256 ${SHA}`));
  });

  it("fails the build on a replaced installer, naming both checksums", async () => {
    const result = await run(upload("a different tarball\n"), SHA);
    assert.equal(result.exitCode, 1);
    const actual = createHash("sha256").update("a different tarball\n").digest("hex");
    assert.match(result.stderr, new RegExp(`verify-installer: error: .* has SHA-256 ${actual}, but packer/files/SHA256SUMS pins ${SHA}.*nothing was unpacked`));
  });

  it("fails without a pin, or with a malformed one, saying where the pin goes", async () => {
    for (const pin of [undefined, "", SHA.toUpperCase(), SHA.slice(2)]) {
      const result = await run(upload(CONTENT), pin);
      assert.equal(result.exitCode, 1, `pin ${pin}`);
      assert.match(result.stderr, /no pinned SHA-256 for atlassian-jira-software-9\.12\.15\.tar\.gz: add "<sha256>  atlassian-jira-software-9\.12\.15\.tar\.gz" to packer\/files\/SHA256SUMS/);
    }
  });

  it("fails when the installer never arrived", async () => {
    const result = await run(join(tempDir("verify-installer-"), INSTALLER), SHA);
    assert.equal(result.exitCode, 1);
    assert.match(result.stderr, /was not uploaded/);
  });
});
