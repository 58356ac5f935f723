#!/bin/bash
# Suite "custom": what a per-environment image adds to the Jira base image: the settings of the
# environment's Chef node (database, password store), the folder user data writes the launch
# settings to, and the helper that fetches the database password at each start. Run after the
# jira suite, whose heap check already uses the node's role. Sourced by run.sh, which defines
# check, pass, problem, requires and ROOT.
# Inputs: the node's database settings NODE_DB_HOST, NODE_DB_NAME, NODE_DB_USERNAME,
# NODE_DB_PASSWORD_STORE, NODE_DB_PASSWORD_NAME.
set -euo pipefail

requires NODE_DB_HOST NODE_DB_NAME NODE_DB_USERNAME NODE_DB_PASSWORD_STORE NODE_DB_PASSWORD_NAME

CUSTOM_CONFIG_DIR=/etc/jira-images
CUSTOM_HELPER_DIR=/opt/jira-images/bin

# KEY's last value in a KEY=value file, read as data as the helpers read it.
setting() { sed -n "s/^$1=//p" "$2" 2>/dev/null | tail -n 1 || true; }

# The node's database and secret: what Chef's config recipe rendered for this environment.
node_settings() {
  local template="${ROOT}${CUSTOM_CONFIG_DIR}/dbconfig.xml.tmpl" secret="${ROOT}${CUSTOM_CONFIG_DIR}/db-secret.env"
  local url username store name ok=1
  url="$(sed -n 's:.*<url>\(.*\)</url>.*:\1:p' "$template" 2>/dev/null || true)"
  username="$(sed -n 's:.*<username>\(.*\)</username>.*:\1:p' "$template" 2>/dev/null || true)"
  if [[ ! "$url" =~ ^jdbc:postgresql://${NODE_DB_HOST//./\\.}:[0-9]+/${NODE_DB_NAME}$ ]]; then
    problem "dbconfig.xml.tmpl should connect to database ${NODE_DB_NAME} on ${NODE_DB_HOST}, found url '${url}'"
    ok=0
  fi
  if [[ "$username" != "$NODE_DB_USERNAME" ]]; then
    problem "dbconfig.xml.tmpl should log in as ${NODE_DB_USERNAME}, found '${username}'"
    ok=0
  fi
  store="$(setting JIRA_DB_PASSWORD_STORE "$secret")"
  name="$(setting JIRA_DB_PASSWORD_NAME "$secret")"
  if [[ "$store" != "$NODE_DB_PASSWORD_STORE" || "$name" != "$NODE_DB_PASSWORD_NAME" ]]; then
    problem "db-secret.env should name ${NODE_DB_PASSWORD_STORE}:${NODE_DB_PASSWORD_NAME}, found '${store}:${name}'"
    ok=0
  fi
  if [[ "$ok" == 1 ]]; then pass "${NODE_DB_USERNAME}@${NODE_DB_HOST}/${NODE_DB_NAME}, password from ${NODE_DB_PASSWORD_STORE}:${NODE_DB_PASSWORD_NAME}"; fi
}

# User data writes /etc/jira-images/launch.env at first boot; the image has the folder (not open
# to other users) and the reader, and no launch.env of its own that would pass for launch settings.
launch_environment_path() {
  local dir="${ROOT}${CUSTOM_CONFIG_DIR}" mode ok=1
  if [[ ! -d "$dir" ]]; then
    problem "${CUSTOM_CONFIG_DIR} is missing: user data has nowhere to write launch.env"
    return
  fi
  mode="$(stat -c %a "$dir")"
  if (( (8#${mode} & 8#002) != 0 )); then
    problem "${CUSTOM_CONFIG_DIR} is writable by every user (mode ${mode})"
    ok=0
  fi
  if [[ -e "${dir}/launch.env" ]]; then
    problem "${CUSTOM_CONFIG_DIR}/launch.env is baked into the image; only user data writes it"
    ok=0
  fi
  if [[ ! -s "${ROOT}${CUSTOM_HELPER_DIR}/launch-env.sh" ]]; then
    problem "${CUSTOM_HELPER_DIR}/launch-env.sh (the launch settings' reader) is missing or empty"
    ok=0
  fi
  if [[ "$ok" == 1 ]]; then pass "${CUSTOM_CONFIG_DIR} (mode ${mode}) awaits launch.env; launch-env.sh reads it"; fi
}

# jira-db-secret renders dbconfig.xml with the password at each start: executable, run by the unit,
# with the store and secret it reads.
database_password_helper() {
  local helper="${CUSTOM_HELPER_DIR}/jira-db-secret" ok=1
  if [[ ! -f "${ROOT}${helper}" || ! -x "${ROOT}${helper}" ]]; then
    problem "${helper} is missing or not executable"
    ok=0
  fi
  if ! grep -qE "^ExecStartPre=[-+!@:]*${helper}([[:space:]]|$)" "${ROOT}/etc/systemd/system/jira.service" 2>/dev/null; then
    problem "jira.service does not run ${helper} before each start (ExecStartPre)"
    ok=0
  fi
  if [[ ! -s "${ROOT}${CUSTOM_CONFIG_DIR}/db-secret.env" ]]; then
    problem "${CUSTOM_CONFIG_DIR}/db-secret.env (which secret to read) is missing or empty"
    ok=0
  fi
  if [[ "$ok" == 1 ]]; then pass "${helper} runs before each start"; fi
}

check "node settings" node_settings
check "launch environment path" launch_environment_path
check "database password helper" database_password_helper
