#!/bin/bash
# The step before the image tests in every stage: takes off the image what every instance launched
# from it would otherwise share. Runs as root on the build instance; each stage folder links it in as
# scripts/image-cleanup.sh (so it counts in the stage's template hash).
# TARGET_ROOT (default: empty) prefixes every path, so that it can be tested in a scratch folder.
set -euo pipefail

root="${TARGET_ROOT:-}"

log() { printf 'image-cleanup: %s\n' "$*"; }

# Packer's temporary key pair is deleted from AWS after the build; its public half must not stay
# authorised on instances launched from the image (cloud-init adds the launch key, it does not
# replace the file).
log "removing authorized_keys of every user"
rm -f "${root}"/home/*/.ssh/authorized_keys "${root}/root/.ssh/authorized_keys"

# Host keys baked into an image would be one key pair for every instance: whoever reads one image
# can impersonate them all. Each instance makes its own at first boot (cloud-init's ssh module
# deletes and generates them once per instance, and sshd-keygen@.service creates missing ones
# before sshd starts). sshd keeps the keys it has loaded, so this build's session is unaffected.
log "removing SSH host keys (each instance generates its own at first boot)"
rm -f "${root}"/etc/ssh/ssh_host_*_key "${root}"/etc/ssh/ssh_host_*_key.pub "${root}"/etc/ssh/ssh_host_*_key-cert.pub
log "done"
