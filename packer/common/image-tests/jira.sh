#!/bin/bash
# Suite "jira": what the Jira base image promises, and so every custom image built on it: Jira at
# the stage's version with the role's heap, its service enabled and able to start (unit, start-up
# helpers, Java, connector), owned by the jira user, and nothing of the build left on disk (Chef
# workspace, client, caches, installer, secrets). Sourced by run.sh, which defines check, pass,
# problem, requires and ROOT.
# Inputs: JIRA_VERSION, JVM_MINIMUM_MEMORY, JVM_MAXIMUM_MEMORY (the heap of the node's role).
set -euo pipefail

requires JIRA_VERSION JVM_MINIMUM_MEMORY JVM_MAXIMUM_MEMORY

# Where the jira cookbook puts things (attributes/default.rb).
JIRA_INSTALL_ROOT=/opt/atlassian/jira
JIRA_CONFIG_DIR=/etc/jira-images
JIRA_HELPER_DIR=/opt/jira-images/bin
JIRA_UNIT=/etc/systemd/system/jira.service
# The files of this version (not through the current link, which is absolute and so would leave
# the root folder; jira_version proves it points here).
JIRA_DIR="${ROOT}${JIRA_INSTALL_ROOT}/${JIRA_VERSION}"

# The value of KEY in a KEY=value file (start.env, the unit; systemd allows spaces around '='), one
# line per occurrence.
values() { sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$2" 2>/dev/null || true; }

JIRA_START_ENV="${ROOT}${JIRA_CONFIG_DIR}/start.env"
JIRA_PORT="$(values JIRA_HTTP_PORT "$JIRA_START_ENV" | tail -n 1)"
JIRA_HOME_DIR="$(values JIRA_HOME "$JIRA_START_ENV" | tail -n 1)"
JIRA_USER_NAME="$(values JIRA_USER "$JIRA_START_ENV" | tail -n 1)"

start_settings() {
  if [[ -z "$JIRA_PORT" || -z "$JIRA_HOME_DIR" || -z "$JIRA_USER_NAME" ]]; then
    problem "${JIRA_CONFIG_DIR}/start.env lacks JIRA_HTTP_PORT, JIRA_HOME or JIRA_USER (found: port '${JIRA_PORT}', home '${JIRA_HOME_DIR}', user '${JIRA_USER_NAME}')"
  else
    pass "start.env: port ${JIRA_PORT}, home ${JIRA_HOME_DIR}, user ${JIRA_USER_NAME}"
  fi
}

# The cookbook unpacks Jira into <install_root>/<version> (start-jira.sh is its installed marker)
# and points <install_root>/current there.
jira_version() {
  local current
  current="$(readlink "${ROOT}${JIRA_INSTALL_ROOT}/current" 2>/dev/null || true)"
  if [[ ! -x "${JIRA_DIR}/bin/start-jira.sh" ]]; then
    problem "${JIRA_INSTALL_ROOT}/${JIRA_VERSION}/bin/start-jira.sh missing; installed: $(find "${ROOT}${JIRA_INSTALL_ROOT}" -mindepth 1 -maxdepth 1 -printf '%f ' 2>/dev/null || true)"
  elif [[ "${current%/}" != "${JIRA_INSTALL_ROOT}/${JIRA_VERSION}" ]]; then
    problem "${JIRA_INSTALL_ROOT}/current points to '${current}', not ${JIRA_INSTALL_ROOT}/${JIRA_VERSION}"
  else
    pass "Jira ${JIRA_VERSION} installed at ${JIRA_INSTALL_ROOT}/${JIRA_VERSION}, current points to it"
  fi
}

# setenv.sh assigns the heap unconditionally: the cookbook rewrites both lines to the role's values.
jvm_heap() {
  local setenv="${JIRA_DIR}/bin/setenv.sh" ok=1 variable size lines
  for variable in JVM_MINIMUM_MEMORY JVM_MAXIMUM_MEMORY; do
    size="${!variable}"
    lines="$(grep -E "^${variable}=" "$setenv" 2>/dev/null || true)"
    if [[ "$lines" != "${variable}=\"\${${variable}:-${size}}\"" ]]; then
      problem "bin/setenv.sh should set ${variable}=\"\${${variable}:-${size}}\", found: ${lines:-no ${variable} line}"
      ok=0
    fi
  done
  if [[ "$ok" == 1 ]]; then pass "bin/setenv.sh starts Jira with the role's heap ${JVM_MINIMUM_MEMORY}/${JVM_MAXIMUM_MEMORY}"; fi
}

# Enabled: systemctl enable linked it into multi-user.target.wants.
jira_service_enabled() {
  if [[ ! -L "${ROOT}/etc/systemd/system/multi-user.target.wants/jira.service" ]]; then
    problem "no /etc/systemd/system/multi-user.target.wants/jira.service link: Jira would not start at boot"
  else
    pass "jira.service enabled"
  fi
}

# Started after cloud-init wrote the launch settings.
jira_unit_order() {
  local file="${ROOT}${JIRA_UNIT}" key ok=1
  if [[ ! -f "$file" ]]; then
    problem "${JIRA_UNIT} missing"
    return
  fi
  for key in Wants After; do
    if ! values "$key" "$file" | grep -qw 'cloud-final\.service'; then
      problem "${key}= lacks cloud-final.service, found: $(values "$key" "$file" | tr '\n' ' ')"
      ok=0
    fi
  done
  if [[ "$ok" == 1 ]]; then pass "jira.service starts after cloud-final.service"; fi
}

# A failed start (database or secret not reachable yet) is retried, with a delay.
jira_unit_restart() {
  local file="${ROOT}${JIRA_UNIT}" restart restart_sec ok=1
  restart="$(values Restart "$file" | tail -n 1)"
  restart_sec="$(values RestartSec "$file" | tail -n 1)"
  if [[ "$restart" != on-failure ]]; then
    problem "Restart= should be on-failure, found: '${restart}'"
    ok=0
  fi
  if [[ ! "$restart_sec" =~ ^[1-9][0-9]*(s|min)?$ ]]; then
    problem "RestartSec= should be a delay, found: '${restart_sec}'"
    ok=0
  fi
  if [[ "$ok" == 1 ]]; then pass "Restart=on-failure RestartSec=${restart_sec}"; fi
}

# The helpers the unit runs before each start are executable; the files they source or import exist.
start_up_helpers() {
  local ok=1 helper helpers
  helpers="$(values ExecStartPre "${ROOT}${JIRA_UNIT}" | sed 's/^[-+!@:]*//; s/[[:space:]].*//')"
  if [[ -z "$helpers" ]]; then
    problem "${JIRA_UNIT} runs no ExecStartPre helper"
    ok=0
  fi
  for helper in $helpers; do
    if [[ ! -f "${ROOT}${helper}" || ! -x "${ROOT}${helper}" ]]; then
      problem "${helper} (ExecStartPre of jira.service) is missing or not executable"
      ok=0
    fi
  done
  for helper in launch-env.sh jira_server_xml.py; do
    if [[ ! -s "${ROOT}${JIRA_HELPER_DIR}/${helper}" ]]; then
      problem "${JIRA_HELPER_DIR}/${helper} is missing or empty"
      ok=0
    fi
  done
  if [[ "$ok" == 1 ]]; then pass "$(echo "$helpers" | tr '\n' ' ')launch-env.sh jira_server_xml.py"; fi
}

# Atlassian's PostgreSQL connection properties, in the template jira-db-secret renders at start.
dbconfig_connection_properties() {
  local template="${ROOT}${JIRA_CONFIG_DIR}/dbconfig.xml.tmpl" properties
  properties="$(sed -n 's:.*<connection-properties>\(.*\)</connection-properties>.*:\1:p' "$template" 2>/dev/null || true)"
  if [[ ";${properties};" =~ \;tcpKeepAlive=true\; && ";${properties};" =~ \;socketTimeout=[1-9][0-9]*\; ]]; then
    pass "dbconfig.xml template sets ${properties}"
  else
    problem "${JIRA_CONFIG_DIR}/dbconfig.xml.tmpl should set tcpKeepAlive=true and socketTimeout, found: '${properties:-no <connection-properties>}'"
  fi
}

# jira-proxy edits exactly one live connector on the HTTP port at each start: the same parser says
# whether it will find it.
server_xml_connector() {
  local found
  if ! found="$(python3 - "${ROOT}${JIRA_HELPER_DIR}" "${JIRA_DIR}/conf/server.xml" "${JIRA_PORT:-8080}" 2>&1 <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import jira_server_xml
with open(sys.argv[2], encoding="utf-8") as f:
    jira_server_xml.with_proxy(f.read(), sys.argv[3], {})
PY
  )"; then
    problem "conf/server.xml: $(printf '%s' "$found" | tail -n 1)"
  else
    pass "conf/server.xml has one live connector on port ${JIRA_PORT:-8080}"
  fi
}

# The Java of the unit's JAVA_HOME.
java_present() {
  local java_home
  java_home="$(values Environment "${ROOT}${JIRA_UNIT}" | tr ' ' '\n' | sed -n 's/^"\{0,1\}JAVA_HOME=\([^"]*\)"\{0,1\}$/\1/p' | tail -n 1)"
  if [[ -z "$java_home" ]]; then
    problem "jira.service sets no JAVA_HOME"
  elif [[ ! -x "${ROOT}${java_home}/bin/java" ]]; then
    problem "${java_home}/bin/java (JAVA_HOME of jira.service) is missing or not executable"
  else
    pass "java at ${java_home}/bin/java"
  fi
}

# What Jira writes belongs to the jira user, by the image's own passwd: its home and the install's
# logs, temp and work folders.
file_ownership() {
  local uid path owner wrong=()
  uid="$(awk -F: -v u="$JIRA_USER_NAME" '$1 == u { print $3 }' "${ROOT}/etc/passwd" 2>/dev/null || true)"
  if [[ -z "$JIRA_USER_NAME" || -z "$uid" ]]; then
    problem "no user '${JIRA_USER_NAME}' (JIRA_USER of start.env) in /etc/passwd"
    return
  fi
  for path in "$JIRA_HOME_DIR" "${JIRA_INSTALL_ROOT}/${JIRA_VERSION}/logs" "${JIRA_INSTALL_ROOT}/${JIRA_VERSION}/temp" "${JIRA_INSTALL_ROOT}/${JIRA_VERSION}/work"; do
    owner="$(stat -c %u "${ROOT}${path}" 2>/dev/null || true)"
    if [[ "$owner" != "$uid" ]]; then wrong+=("${path} (uid '${owner:-missing}')"); fi
  done
  if [[ "${#wrong[@]}" -gt 0 ]]; then
    problem "not owned by ${JIRA_USER_NAME} (uid ${uid}): ${wrong[*]}"
  else
    pass "Jira home, logs, temp and work owned by ${JIRA_USER_NAME}"
  fi
}

# Chef's cleanup ran: no workspace, client, client state or installer goes into the image.
no_chef_workspace() {
  local left=() path
  for path in /var/tmp/jira-images /opt/cinc /etc/cinc /var/cinc /etc/chef /var/chef /root/.cinc /root/.chef; do
    if [[ -e "${ROOT}${path}" ]]; then left+=("$path"); fi
  done
  while IFS= read -r -d '' path; do
    left+=("${path#"${ROOT}"}")
  done < <(find "${ROOT}/var/tmp" "${ROOT}/tmp" "${ROOT}/root" "${ROOT}/home" "${ROOT}/opt" -name 'atlassian-jira-software-*.tar.gz' -print0 2>/dev/null)
  if [[ "${#left[@]}" -gt 0 ]]; then
    problem "still on the image: ${left[*]}"
  else
    pass "no Chef workspace, client, client state or installer"
  fi
}

# The package caches are rebuilt on demand; in the image they are only size and stale metadata.
no_package_caches() {
  local left
  left="$(find "${ROOT}/var/cache/dnf" "${ROOT}/var/cache/yum" -mindepth 1 -maxdepth 1 -printf '%P ' 2>/dev/null || true)"
  if [[ -n "$left" ]]; then
    problem "package caches left in /var/cache/dnf or /var/cache/yum: ${left}(dnf clean all)"
  else
    pass "no package caches"
  fi
}

# The database password is fetched at each start and written only to the Jira home's dbconfig.xml
# (jira-db-secret); the image holds its name, never a value, and no cloud credentials.
no_secrets_on_disk() {
  local left=() path password
  for path in "${JIRA_HOME_DIR}/dbconfig.xml" /root/.aws/credentials /root/.aws/config; do
    if [[ -n "$path" && -e "${ROOT}${path}" ]]; then left+=("$path"); fi
  done
  while IFS= read -r -d '' path; do
    left+=("${path#"${ROOT}"}")
  done < <(find "${ROOT}/home" -mindepth 3 -maxdepth 3 -path '*/.aws/*' -print0 2>/dev/null)
  password="$(sed -n 's:.*<password>\([^<]*\)</password>.*:\1:p' "${ROOT}${JIRA_CONFIG_DIR}/dbconfig.xml.tmpl" 2>/dev/null || true)"
  if [[ -n "$password" && "$password" != "@@JIRA_DB_PASSWORD@@" ]]; then
    left+=("a password in ${JIRA_CONFIG_DIR}/dbconfig.xml.tmpl (only the @@JIRA_DB_PASSWORD@@ placeholder belongs there)")
  fi
  if [[ "${#left[@]}" -gt 0 ]]; then
    problem "secrets on the image: ${left[*]}"
  else
    pass "no database password or cloud credentials on disk"
  fi
}

check "start settings" start_settings
check "jira version" jira_version
check "jvm heap" jvm_heap
check "jira service enabled" jira_service_enabled
check "jira unit order" jira_unit_order
check "jira unit restart" jira_unit_restart
check "start-up helpers" start_up_helpers
check "dbconfig connection properties" dbconfig_connection_properties
check "server.xml connector" server_xml_connector
check "java" java_present
check "file ownership" file_ownership
check "no chef workspace" no_chef_workspace
check "no package caches" no_package_caches
check "no secrets on disk" no_secrets_on_disk
