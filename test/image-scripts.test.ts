import { strict as assert } from "node:assert";
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { HOST_KEY_FILES, prepareImageRoot } from "./helpers/image-root.ts";
import { PROJECT_ROOT } from "./helpers/pulumi-mocks.ts";
import { tempDir } from "./helpers/temp-dir.ts";

const STAND_INS = join(PROJECT_ROOT, "test", "fixtures", "packer-smoke", "bin");
const OS_BASE = join(PROJECT_ROOT, "packer", "base", "scripts", "os-base.sh");
const SYSTEM_PATH = "/usr/bin:/bin";

/** Runs a provisioning script against a prepared root, with the smoke run's stand-ins on PATH. */
function runScript(script: string, root: string, bin = STAND_INS) {
  return execa("bash", [script], {
    env: { PATH: `${bin}:${SYSTEM_PATH}`, TARGET_ROOT: root, SMOKE_SCRATCH: root },
    extendEnv: false,
    reject: false,
  });
}

describe("os-base.sh: the sshd hardening proven in force by `sshd -T` (stand-in sshd)", () => {
  it("passes on Amazon Linux 2023's layout, asking sshd for the configuration it would run with", async () => {
    const root = tempDir("os-base-");
    prepareImageRoot(root);
    const result = await runScript(OS_BASE, root);
    assert.equal(result.exitCode, 0, result.stderr);
    assert.match(result.stdout, /os-base: sshd -T shows every hardened value in force/);
    assert.ok(readFileSync(join(root, "calls.log"), "utf8").includes(`sshd -T -f ${root}/etc/ssh/sshd_config\n`));
  });

  it("fails on a line that sshd reads before the drop-ins, naming every value not in force", async () => {
    const root = tempDir("os-base-");
    prepareImageRoot(root);
    const config = join(root, "etc", "ssh", "sshd_config");
    writeFileSync(config, `PermitRootLogin yes\nMaxAuthTries 10\n${readFileSync(config, "utf8")}`);
    const result = await runScript(OS_BASE, root);
    assert.equal(result.exitCode, 1);
    assert.match(
      result.stderr,
      /^os-base: error: sshd does not run with the hardening of \/etc\/ssh\/sshd_config\.d\/01-jira-images-hardening\.conf: PermitRootLogin no \(sshd -T: permitrootlogin yes\);MaxAuthTries 3 \(sshd -T: maxauthtries 10\)$/m,
    );
  });

  it("fails when sshd rejects the configuration", async () => {
    const root = tempDir("os-base-");
    prepareImageRoot(root);
    writeFileSync(join(root, "etc", "ssh", "sshd_config.d", "10-typo.conf"), "PasswordAuthenticaton no\n");
    const result = await runScript(OS_BASE, root);
    assert.equal(result.exitCode, 1);
    assert.match(result.stderr, /Bad configuration option: passwordauthenticaton/);
    assert.match(result.stderr, /os-base: error: `sshd -T -f \S+\/etc\/ssh\/sshd_config` failed: sshd would not start with this configuration/);
  });

  it("fails when there is no sshd to ask", async () => {
    const root = tempDir("os-base-");
    prepareImageRoot(root);
    const bin = join(tempDir("os-base-bin-"), "bin");
    mkdirSync(bin);
    for (const tool of readdirSync(STAND_INS).filter((t) => t !== "sshd")) symlinkSync(join(STAND_INS, tool), join(bin, tool));
    const result = await runScript(OS_BASE, root, bin);
    assert.equal(result.exitCode, 1);
    assert.match(result.stderr, /os-base: error: sshd not found: the image must run OpenSSH's sshd/);
  });
});

describe("image-cleanup.sh: the last step of every stage (prepared root folder)", () => {
  const cleanup = join(PROJECT_ROOT, "packer", "common", "scripts", "image-cleanup.sh");

  it("removes every SSH host key and authorized_keys, and nothing else of /etc/ssh", async () => {
    const root = tempDir("image-cleanup-");
    prepareImageRoot(root);
    writeFileSync(join(root, "etc", "ssh", "ssh_host_ed25519_key-cert.pub"), "a host certificate\n");
    const result = await runScript(cleanup, root);
    assert.equal(result.exitCode, 0, result.stderr);
    for (const key of [...HOST_KEY_FILES, "ssh_host_ed25519_key-cert.pub"]) {
      assert.equal(existsSync(join(root, "etc", "ssh", key)), false, `${key} left on the image`);
    }
    assert.deepEqual(readdirSync(join(root, "etc", "ssh")).sort(), ["moduli", "sshd_config", "sshd_config.d"]);
    assert.equal(existsSync(join(root, "home", "ec2-user", ".ssh", "authorized_keys")), false);
    assert.equal(existsSync(join(root, "root", ".ssh", "authorized_keys")), false);
    assert.ok(existsSync(join(root, "home", "ec2-user", ".ssh")), "the user's .ssh folder stays for cloud-init's launch key");
  });

  it("is every stage's last provisioner, through the stage folder's own link", () => {
    for (const [stage, file] of [["base", "base.pkr.hcl"], ["jira", "jira.pkr.hcl"], ["custom", "custom.pkr.hcl"]] as const) {
      assert.equal(readlinkSync(join(PROJECT_ROOT, "packer", stage, "scripts", "image-cleanup.sh")), "../../common/scripts/image-cleanup.sh", stage);
      const text = readFileSync(join(PROJECT_ROOT, "packer", stage, file), "utf8");
      const last = text.slice(text.lastIndexOf('provisioner "'));
      assert.match(last, /^provisioner "shell" \{\s*script\s*=\s*"\$\{path\.root\}\/scripts\/image-cleanup\.sh"/, `${stage}: last provisioner`);
    }
  });
});
