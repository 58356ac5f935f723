#!/bin/bash
# OS base image: updates, SSM agent, host hardening. Runs as root on the build instance.
# TARGET_ROOT (default: empty) prefixes every file this script writes, so that the same logic can
# be smoke-tested against a scratch directory on a machine without dnf or systemd.
set -euo pipefail

root="${TARGET_ROOT:-}"

log() { printf 'os-base: %s\n' "$*"; }

os_id=""
os_version=""
if [ -r "${root}/etc/os-release" ]; then
  # shellcheck disable=SC1091 # os-release is provided by the image, not by this repository
  . "${root}/etc/os-release"
  os_id="${ID:-}"
  os_version="${VERSION_ID:-}"
fi

log "updating packages (${os_id:-unknown} ${os_version:-unknown})"
if [ "$os_id" = "amzn" ] && [ "$os_version" = "2023" ]; then
  # Amazon Linux 2023 locks its repositories to the AMI's release; move to the latest release so
  # the image carries the fixes published after the source AMI.
  dnf -y upgrade --refresh --releasever=latest
else
  dnf -y upgrade --refresh
fi

log "installing and enabling the SSM agent"
dnf -y install amazon-ssm-agent
systemctl enable amazon-ssm-agent

log "hardening sshd"
install -d -m 0755 "${root}/etc/ssh/sshd_config.d"
hardening="${root}/etc/ssh/sshd_config.d/01-jira-images-hardening.conf"
# sshd keeps the first value it reads; the low number makes these win over the distribution's files.
cat > "$hardening" <<'CONF'
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitEmptyPasswords no
X11Forwarding no
AllowAgentForwarding no
MaxAuthTries 3
ClientAliveInterval 300
ClientAliveCountMax 2
CONF
chmod 0600 "$hardening"

# Whether sshd runs with these values (`sshd -T`) is the base suite's check of the image tests
# (packer/common/image-tests/base.sh), run last in every stage.

log "hardening kernel parameters"
install -d -m 0755 "${root}/etc/sysctl.d"
cat > "${root}/etc/sysctl.d/60-jira-images-hardening.conf" <<'CONF'
net.ipv4.conf.all.accept_redirects = 0
net.ipv4.conf.default.accept_redirects = 0
net.ipv4.conf.all.send_redirects = 0
net.ipv4.conf.all.accept_source_route = 0
net.ipv4.conf.all.log_martians = 1
net.ipv4.tcp_syncookies = 1
kernel.dmesg_restrict = 1
kernel.kptr_restrict = 2
fs.suid_dumpable = 0
CONF
if [ -z "$root" ]; then
  sysctl --system >/dev/null
fi

log "cleaning package caches"
dnf clean all
rm -rf "${root}/var/cache/dnf"

log "done"
