#!/usr/bin/env bash
# Builds the real tools that test/real/ runs against (the Pulumi CLI; a current Packer and its
# amazon plugin; moto's EC2 emulator) into .tools/ (git-ignored). Idempotent: a tool already built at the wanted version is kept. Users with the
# official Pulumi CLI and Packer need none of this.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export TOOLS_DIR="${JIRA_IMAGES_TOOLS_DIR:-$root/.tools}"
mkdir -p "$TOOLS_DIR/bin"
export PATH="$TOOLS_DIR/bin:$PATH"

started=$(date +%s)
for part in "$root"/scripts/test-tools/*.sh; do
  [ -e "$part" ] || continue
  part_started=$(date +%s)
  bash "$part"
  echo "install-test-tools: $(basename "$part" .sh) ready in $(( $(date +%s) - part_started )) s" >&2
done
echo "install-test-tools: all tools ready in $(( $(date +%s) - started )) s; put them on PATH with: export PATH=\"$TOOLS_DIR/bin:\$PATH\"" >&2
