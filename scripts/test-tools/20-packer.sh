#!/usr/bin/env bash
# A current Packer and its amazon plugin, built with Go from their modules at the versions pinned in
# scripts/test-tools/packer*/go.mod (both modules carry a replace directive, so `go install
# <module>@<version>` refuses them; our small modules repeat it).
#   $TOOLS_DIR/bin/packer-current   Packer itself. Not named `packer`: with .tools/bin on PATH it
#                                    would shadow the Packer the rest of the tests run (Debian's 1.6.6).
#   $TOOLS_DIR/packer/plugins       PACKER_PLUGIN_PATH with the amazon plugin installed by
#                                    `packer plugins install --path`, so `packer init` fetches nothing.
set -euo pipefail
: "${TOOLS_DIR:?run through scripts/install-test-tools.sh}"
here=$(cd "$(dirname "$0")" && pwd)
out="$TOOLS_DIR/packer"
plugin_dir="$out/plugins"
mkdir -p "$out" "$plugin_dir" "$TOOLS_DIR/bin"

command -v go >/dev/null || { echo "20-packer: Go is not installed (needs Go >= 1.26: https://go.dev/dl/)" >&2; exit 1; }

# The version a helper module pins, read from its go.mod.
pinned() { awk -v m="$2" '$1 == m { print $2 } $1 == "require" && $2 == m { print $3 }' "$here/$1/go.mod" | head -n 1; }
# Changes whenever the module's pins do, so an edited go.mod/go.sum rebuilds.
pins_hash() { cat "$here/$1/go.mod" "$here/$1/go.sum" | sha256sum | cut -c1-12; }

# build <module dir> <package> <output>: skips an output that already exists.
build() {
  if [ -x "$3" ]; then
    echo "20-packer: $(basename "$3") present" >&2
    return
  fi
  local started
  started=$(date +%s)
  echo "20-packer: building $2 ($(pinned "$1" "$2")) with $(go env GOVERSION) into $3" >&2
  (cd "$here/$1" && GOFLAGS=-mod=readonly CGO_ENABLED=0 nice -n 10 go build -trimpath -buildvcs=false -ldflags='-s -w' -o "$3.tmp" "$2")
  mv "$3.tmp" "$3"
  echo "20-packer: built $(basename "$3") in $(( $(date +%s) - started )) s" >&2
}

packer_version=$(pinned packer github.com/hashicorp/packer)
plugin_version=$(pinned packer-plugin-amazon github.com/hashicorp/packer-plugin-amazon)
packer_bin="$out/packer-${packer_version}-$(pins_hash packer)"
plugin_bin="$out/packer-plugin-amazon-${plugin_version}-$(pins_hash packer-plugin-amazon)"

build packer github.com/hashicorp/packer "$packer_bin"
build packer-plugin-amazon github.com/hashicorp/packer-plugin-amazon "$plugin_bin"
ln -sfn "$packer_bin" "$TOOLS_DIR/bin/packer-current"

export PACKER_PLUGIN_PATH="$plugin_dir" CHECKPOINT_DISABLE=1
# Installed under the plugin's own version (from its `describe`), e.g. ..._v1.8.2_x5.0_linux_amd64.
installed="$plugin_dir/github.com/hashicorp/amazon/packer-plugin-amazon_v${plugin_version#v}_x5.0_$(go env GOOS)_$(go env GOARCH)"
if [ -x "$installed" ] && cmp -s "$installed" "$plugin_bin"; then
  echo "20-packer: amazon plugin ${plugin_version} installed" >&2
else
  "$packer_bin" plugins install --path "$plugin_bin" github.com/hashicorp/amazon >&2
  [ -x "$installed" ] || { echo "20-packer: packer plugins install did not produce $installed" >&2; exit 1; }
fi
echo "20-packer: $("$packer_bin" version | head -n 1), amazon plugin ${plugin_version}; PACKER_PLUGIN_PATH=$plugin_dir" >&2
