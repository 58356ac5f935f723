import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The SSH host key files an Amazon Linux 2023 instance has after its first boot. */
export const HOST_KEY_FILES = ["rsa", "ecdsa", "ed25519"].flatMap((type) => [`ssh_host_${type}_key`, `ssh_host_${type}_key.pub`]);

/**
 * A scratch folder laid out like the build instance's root for the provisioning scripts
 * (TARGET_ROOT): Amazon Linux 2023's os-release, its sshd_config (the drop-in folder included
 * first, as AL2023 ships it, with the path under `dir` so that `sshd -T -f` reads these files) and
 * 50-redhat.conf, the host keys of a booted instance, Packer's temporary key authorised for
 * ec2-user and root, and the SSM agent's unit and program (installed, not yet enabled).
 */
export function prepareImageRoot(dir: string): void {
  const ssh = join(dir, "etc", "ssh");
  mkdirSync(join(ssh, "sshd_config.d"), { recursive: true });
  writeFileSync(join(dir, "etc", "os-release"), 'NAME="Amazon Linux"\nID="amzn"\nVERSION_ID="2023"\n');
  writeFileSync(
    join(ssh, "sshd_config"),
    `# as Amazon Linux 2023 ships it: the drop-ins first, so that they win\nInclude ${ssh}/sshd_config.d/*.conf\n` +
      "AuthorizedKeysFile .ssh/authorized_keys\nSubsystem sftp /usr/libexec/openssh/sftp-server\n",
  );
  writeFileSync(join(ssh, "sshd_config.d", "50-redhat.conf"), "ChallengeResponseAuthentication no\nGSSAPIAuthentication yes\nUsePAM yes\nX11Forwarding yes\nPrintMotd no\n");
  writeFileSync(join(ssh, "moduli"), "# Diffie-Hellman groups, not a key\n");
  for (const file of HOST_KEY_FILES) writeFileSync(join(ssh, file), `${file} of the build instance\n`);
  mkdirSync(join(dir, "usr", "lib", "systemd", "system"), { recursive: true });
  writeFileSync(join(dir, "usr", "lib", "systemd", "system", "amazon-ssm-agent.service"), "[Install]\nWantedBy=multi-user.target\n");
  mkdirSync(join(dir, "usr", "bin"), { recursive: true });
  writeFileSync(join(dir, "usr", "bin", "amazon-ssm-agent"), "#!/bin/sh\n");
  chmodSync(join(dir, "usr", "bin", "amazon-ssm-agent"), 0o755);
  for (const home of [join(dir, "home", "ec2-user"), join(dir, "root")]) {
    mkdirSync(join(home, ".ssh"), { recursive: true });
    writeFileSync(join(home, ".ssh", "authorized_keys"), "ssh-ed25519 AAAA packer-temporary-key\n");
  }
}
