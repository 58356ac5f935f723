#!/bin/bash
# Takes the provisioning workspace, the Chef client and its caches off the image. Runs as root on
# the build instance after Chef; the stage's scripts/image-cleanup.sh follows it.
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

log "done"
