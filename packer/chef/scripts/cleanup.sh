#!/bin/bash
# Takes the provisioning workspace, the Chef client and its caches off the image, and the build's
# SSH key with them. Runs as root on the build instance, as the last step of a stage.
# TARGET_ROOT (default: empty) prefixes the system paths below (not WORKSPACE, which is used as
# given), so the logic can be smoke-tested in a scratch directory.
set -euo pipefail

log() { printf 'cleanup: %s\n' "$*"; }

root="${TARGET_ROOT:-}"
workspace="${WORKSPACE:?WORKSPACE is required}"

log "removing the workspace ${workspace}"
rm -rf "${workspace}"

if rpm -q cinc >/dev/null 2>&1; then
  log "removing the Cinc Client package"
  dnf -y remove cinc
fi

log "removing client state and caches"
for dir in /opt/cinc /etc/cinc /var/cinc /etc/chef /var/chef /root/.cinc /root/.chef; do
  rm -rf "${root}${dir}"
done
dnf clean all
rm -rf "${root}/var/cache/dnf"

# Packer's temporary key pair is deleted from AWS after the build; its public half must not stay
# authorised on every instance launched from the image (cloud-init installs the launch key).
log "removing authorized_keys of the build user"
rm -f "${root}"/home/*/.ssh/authorized_keys "${root}/root/.ssh/authorized_keys"
log "done"
