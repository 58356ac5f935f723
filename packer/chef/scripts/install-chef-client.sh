#!/bin/bash
# Installs the pinned Cinc Client RPM (the free build of Chef Infra Client) for the image's Chef
# run. Runs as root on the build instance; cleanup.sh removes the client again at the end.
# Environment: CHEF_CLIENT_VERSION, CHEF_CLIENT_RPM_URL, CHEF_CLIENT_RPM_SHA256 (all required).
set -euo pipefail

log() { printf 'install-chef-client: %s\n' "$*"; }
fail() { printf 'install-chef-client: error: %s\n' "$*" >&2; exit 1; }

version="${CHEF_CLIENT_VERSION:?CHEF_CLIENT_VERSION is required}"
url="${CHEF_CLIENT_RPM_URL:?CHEF_CLIENT_RPM_URL is required}"
sha256="${CHEF_CLIENT_RPM_SHA256:?CHEF_CLIENT_RPM_SHA256 is required}"

if installed="$(rpm -q --queryformat '%{VERSION}' cinc 2>/dev/null)"; then
  if [ "$installed" = "$version" ]; then
    log "Cinc Client ${version} already installed"
    exit 0
  fi
  fail "found Cinc Client ${installed} but the template pins ${version}; the parent image should not carry a client"
fi

download_dir="$(mktemp -d)"
trap 'rm -rf "$download_dir"' EXIT
rpm_file="${download_dir}/cinc-${version}.rpm"

log "downloading ${url}"
curl --fail --silent --show-error --location --retry 3 --output "$rpm_file" "$url"

actual="$(sha256sum "$rpm_file" | cut -d' ' -f1)"
if [ "$actual" != "$sha256" ]; then
  fail "checksum mismatch for ${url}: expected ${sha256}, got ${actual} (update chef_client_rpm_sha256 together with chef_client_version)"
fi

log "installing Cinc Client ${version}"
dnf -y install "$rpm_file"
