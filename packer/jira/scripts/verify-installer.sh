#!/bin/bash
# Checks the uploaded Jira installer against its pinned SHA-256 before anything unpacks it, so a
# replaced or corrupted archive fails the build instead of being installed. Runs as root on the
# build instance, before Chef.
# Environment: INSTALLER (path of the uploaded archive), INSTALLER_SHA256 (its pin, 64 hex digits).
set -euo pipefail

fail() { printf 'verify-installer: error: %s\n' "$*" >&2; exit 1; }

installer="${INSTALLER:?INSTALLER is required}"
sha256="${INSTALLER_SHA256:-}"
name="$(basename "$installer")"

[[ "$sha256" =~ ^[0-9a-f]{64}$ ]] || fail "no pinned SHA-256 for ${name}: add \"<sha256>  ${name}\" to packer/files/SHA256SUMS"
[ -f "$installer" ] || fail "${installer} was not uploaded"

if ! printf '%s  %s\n' "$sha256" "$installer" | sha256sum --check --strict --quiet -; then
  actual="$(sha256sum "$installer" | cut -d' ' -f1)"
  fail "${name} has SHA-256 ${actual}, but packer/files/SHA256SUMS pins ${sha256}: the installer was replaced or damaged; nothing was unpacked"
fi
printf 'verify-installer: %s matches its pinned SHA-256 %s\n' "$name" "$sha256"
