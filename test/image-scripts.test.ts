import { strict as assert } from "node:assert";
import { existsSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { HOST_KEY_FILES, prepareImageRoot } from "./helpers/image-root.ts";
import { PROJECT_ROOT } from "./helpers/pulumi-mocks.ts";
import { tempDir } from "./helpers/temp-dir.ts";

const STAND_INS = join(PROJECT_ROOT, "test", "fixtures", "packer-smoke", "bin");
const SYSTEM_PATH = "/usr/bin:/bin";

/** Runs a provisioning script against a prepared root, with the smoke run's stand-ins on PATH. */
function runScript(script: string, root: string, bin = STAND_INS) {
  return execa("bash", [script], {
    env: { PATH: `${bin}:${SYSTEM_PATH}`, TARGET_ROOT: root, SMOKE_SCRATCH: root },
    extendEnv: false,
    reject: false,
  });
}

describe("image-cleanup.sh: what no instance may share, taken off before the image tests (prepared root folder)", () => {
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

  it("runs in every stage right before the image tests (upload and run), which are the last provisioners", () => {
    for (const [stage, file] of [["base", "base.pkr.hcl"], ["jira", "jira.pkr.hcl"], ["custom", "custom.pkr.hcl"]] as const) {
      assert.equal(readlinkSync(join(PROJECT_ROOT, "packer", stage, "scripts", "image-cleanup.sh")), "../../common/scripts/image-cleanup.sh", stage);
      const text = readFileSync(join(PROJECT_ROOT, "packer", stage, file), "utf8");
      const provisioners = [...text.matchAll(/^  provisioner "(\w+)" \{\n\s*(\w+)\s*=\s*(\S+)/gm)].map((m) => `${m[1]} ${m[2]} ${m[3]}`);
      assert.deepEqual(provisioners.slice(-3), [
        'shell script "${path.root}/scripts/image-cleanup.sh"',
        "file source local.image_tests_source",
        "shell inline local.image_tests_inline",
      ], `${stage}: the last provisioners`);
    }
  });
});
