#!/usr/bin/env bash
# moto's server, an emulated EC2 API (also STS, IAM, SSM), in a virtualenv under $TOOLS_DIR/moto,
# with $TOOLS_DIR/bin/moto_server as its entry point. The tests start it on a loopback port.
set -euo pipefail
: "${TOOLS_DIR:?run through scripts/install-test-tools.sh}"
moto_version=5.2.5
# Its dependencies too: every machine gets the emulator the tests were written against.
constraints="$(cd "$(dirname "$0")" && pwd)/moto-constraints.txt"
venv="$TOOLS_DIR/moto"
stamp="$venv/.installed-moto-$moto_version-$(sha256sum "$constraints" | cut -c1-12)"

if [ ! -e "$stamp" ]; then
  started=$(date +%s)
  echo "30-moto: installing moto[server]==$moto_version from PyPI into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -c "$constraints" "moto[server]==$moto_version"
  touch "$stamp"
  echo "30-moto: moto $moto_version installed in $(( $(date +%s) - started )) s" >&2
else
  echo "30-moto: moto $moto_version present" >&2
fi

# A wrapper rather than a symlink: the venv's script finds its interpreter by absolute path, and
# the wrapper keeps working when the tests put $TOOLS_DIR/bin first on PATH.
cat >"$TOOLS_DIR/bin/moto_server.tmp" <<WRAPPER
#!/bin/sh
exec "$venv/bin/moto_server" "\$@"
WRAPPER
chmod +x "$TOOLS_DIR/bin/moto_server.tmp"
mv "$TOOLS_DIR/bin/moto_server.tmp" "$TOOLS_DIR/bin/moto_server"
