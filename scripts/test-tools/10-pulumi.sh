#!/usr/bin/env bash
# The Pulumi CLI at the version of @pulumi/pulumi in package.json, built with Go from the module
# in pulumi-cli/ (go.mod and go.sum pin every dependency) into $TOOLS_DIR/bin/pulumi.
# Kept when $TOOLS_DIR/versions/pulumi records the same version and go.sum; not built at all when
# an official CLI of that version is on PATH.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
: "${TOOLS_DIR:?TOOLS_DIR is set by scripts/install-test-tools.sh}"
bin="$TOOLS_DIR/bin"
mkdir -p "$bin" "$TOOLS_DIR/versions"

sdk_version=$(node -p 'require(process.argv[1]).dependencies["@pulumi/pulumi"]' "$root/package.json")
# `require github.com/pulumi/pulumi/pkg/v3 vX.Y.Z` (go mod tidy writes it on one line or in a block).
cli_version=$(awk '{ for (i = 1; i < NF; i++) if ($i == "github.com/pulumi/pulumi/pkg/v3") { v = $(i + 1); sub(/^v/, "", v); print v; exit } }' \
  "$here/pulumi-cli/go.mod")
if [ "$cli_version" != "$sdk_version" ]; then
  echo "10-pulumi: scripts/test-tools/pulumi-cli/go.mod builds CLI $cli_version but package.json has @pulumi/pulumi $sdk_version;" \
    "set pkg/v3 and sdk/v3 to v$sdk_version there and run \`go mod tidy\` in that folder" >&2
  exit 1
fi

stamp="$TOOLS_DIR/versions/pulumi"
want="$cli_version $(sha256sum "$here/pulumi-cli/go.sum" | cut -d' ' -f1)"
if [ -x "$bin/pulumi" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "10-pulumi: pulumi $cli_version present" >&2
  exit 0
fi
on_path=$(command -v pulumi || true)
if [ ! -e "$bin/pulumi" ] && [ -n "$on_path" ] && [ "$("$on_path" version 2>/dev/null)" = "v$cli_version" ]; then
  echo "10-pulumi: using $on_path (pulumi $cli_version)" >&2
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "10-pulumi: Go (>= 1.25) is needed to build the Pulumi CLI $cli_version for the tests;" \
    "install Go, or put the official pulumi $cli_version on PATH" >&2
  exit 1
fi
echo "10-pulumi: building the Pulumi CLI $cli_version (github.com/pulumi/pulumi/pkg/v3) with $(go version | cut -d' ' -f3);" \
  "the first build takes about 15 minutes on 2 cores, later ones reuse Go's build cache" >&2
started=$(date +%s)
(
  cd "$here/pulumi-cli"
  nice -n 10 go build \
    -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$cli_version" \
    -o "$bin/pulumi.partial" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
)
mv "$bin/pulumi.partial" "$bin/pulumi"
echo "$want" >"$stamp"
echo "10-pulumi: built pulumi $cli_version in $(($(date +%s) - started)) s" >&2
