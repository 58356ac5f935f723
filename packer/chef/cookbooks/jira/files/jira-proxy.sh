#!/bin/bash
# Applies the URL users reach Jira at (JIRA_BASE_URL in /etc/jira-images/launch.env, written by
# user data) to Tomcat's HTTP connector at each start (systemd ExecStartPre, as root), so that Jira
# builds its links for the load balancer or proxy in front of it. Without a base URL the proxy
# attributes are removed. launch.env and the baked start.env are read as data, never sourced.
# JIRA_IMAGES_CONFIG_DIR overrides the settings directory (for tests).
set -euo pipefail

fail() { printf 'jira-proxy: error: %s\n' "$*" >&2; exit 1; }

here="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
# shellcheck source-path=SCRIPTDIR source=launch-env.sh
. "${here}/launch-env.sh"

config_dir="${JIRA_IMAGES_CONFIG_DIR:-/etc/jira-images}"
baked_file="${config_dir}/start.env"
[ -f "$baked_file" ] || fail "${baked_file} is missing"
baked() { launch_env_get "$baked_file" "$1" || fail "$1 is not set in ${baked_file}"; }

install_dir="$(baked JIRA_INSTALL)"
port="$(baked JIRA_HTTP_PORT)"
base_url="$(launch_env_get "${config_dir}/launch.env" JIRA_BASE_URL || true)"

exec python3 "${here}/jira_server_xml.py" "${install_dir}/conf/server.xml" "$port" "$base_url"
