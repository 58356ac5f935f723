#!/bin/bash
# The image check of the jira and custom stages: runs as root on the build instance after Chef and
# its cleanup and before image-cleanup.sh, and proves on the built file system what only a built
# image can show. Any failed check fails the build, so no AMI is made. Each stage folder links it
# in as scripts/verify-jira-image.sh (so it counts in the stage's template hash).
# Expected values come from the stage: JIRA_VERSION, JVM_MINIMUM_MEMORY, JVM_MAXIMUM_MEMORY (the
# heap of the node's role). TARGET_ROOT (default: empty) prefixes every path, so that it can be
# tested against a prepared folder.
set -euo pipefail

root="${TARGET_ROOT:-}"
version="${JIRA_VERSION:?JIRA_VERSION is required}"
heap_min="${JVM_MINIMUM_MEMORY:?JVM_MINIMUM_MEMORY is required}"
heap_max="${JVM_MAXIMUM_MEMORY:?JVM_MAXIMUM_MEMORY is required}"

# Where the jira cookbook puts things (attributes/default.rb).
install_root=/opt/atlassian/jira
config_dir=/etc/jira-images
helper_dir=/opt/jira-images/bin
unit=/etc/systemd/system/jira.service
# The files of this version (not through the current link, which is absolute and so would leave
# TARGET_ROOT; check_install proves it points here).
jira_dir="${root}${install_root}/${version}"

failures=0
pass() { printf 'verify-jira-image: ok: %s\n' "$1"; }
fail() {
  printf 'verify-jira-image: FAILED %s: %s\n' "$1" "$2" >&2
  failures=$((failures + 1))
}

# The value of KEY in a KEY=value file (start.env, the unit; systemd allows spaces around '='), one
# line per occurrence.
values() { sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$2" 2>/dev/null || true; }

start_env="${root}${config_dir}/start.env"
port="$(values JIRA_HTTP_PORT "${start_env}" | tail -n 1)"
home="$(values JIRA_HOME "${start_env}" | tail -n 1)"
user="$(values JIRA_USER "${start_env}" | tail -n 1)"
if [[ -z "${port}" || -z "${home}" || -z "${user}" ]]; then
  fail "start settings" "${config_dir}/start.env lacks JIRA_HTTP_PORT, JIRA_HOME or JIRA_USER (found: port '${port}', home '${home}', user '${user}')"
fi

# Jira at the stage's version: the cookbook unpacks it into <install_root>/<version> (start-jira.sh
# is its installed marker) and points <install_root>/current there.
check_install() {
  local current
  current="$(readlink "${root}${install_root}/current" 2>/dev/null || true)"
  if [[ ! -x "${jira_dir}/bin/start-jira.sh" ]]; then
    fail "jira version" "${install_root}/${version}/bin/start-jira.sh missing; installed: $(find "${root}${install_root}" -mindepth 1 -maxdepth 1 -printf '%f ' 2>/dev/null || true)"
  elif [[ "${current%/}" != "${install_root}/${version}" ]]; then
    fail "jira version" "${install_root}/current points to '${current}', not ${install_root}/${version}"
  else
    pass "Jira ${version} installed at ${install_root}/${version}, current points to it"
  fi
}

# setenv.sh assigns the heap unconditionally: the cookbook rewrites both lines to the role's values.
check_heap() {
  local setenv="${jira_dir}/bin/setenv.sh" ok=1 variable size lines
  for variable in JVM_MINIMUM_MEMORY JVM_MAXIMUM_MEMORY; do
    size="${heap_min}"
    if [[ "${variable}" == JVM_MAXIMUM_MEMORY ]]; then size="${heap_max}"; fi
    lines="$(grep -E "^${variable}=" "${setenv}" 2>/dev/null || true)"
    if [[ "${lines}" != "${variable}=\"\${${variable}:-${size}}\"" ]]; then
      fail "jvm heap" "bin/setenv.sh should set ${variable}=\"\${${variable}:-${size}}\", found: ${lines:-no ${variable} line}"
      ok=0
    fi
  done
  if [[ "${ok}" == 1 ]]; then pass "bin/setenv.sh starts Jira with the role's heap ${heap_min}/${heap_max}"; fi
}

# Enabled, started after cloud-init wrote the launch settings, a failed start retried with a delay.
check_unit() {
  local file="${root}${unit}" ok=1 restart_sec
  if [[ ! -f "${file}" ]]; then
    fail "jira unit" "${unit} missing"
    return
  fi
  if [[ ! -L "${root}/etc/systemd/system/multi-user.target.wants/jira.service" ]]; then
    fail "jira unit enabled" "no /etc/systemd/system/multi-user.target.wants/jira.service link"
    ok=0
  fi
  for key in Wants After; do
    if ! values "${key}" "${file}" | grep -qw 'cloud-final\.service'; then
      fail "jira unit ${key}" "${key}= lacks cloud-final.service, found: $(values "${key}" "${file}" | tr '\n' ' ')"
      ok=0
    fi
  done
  if [[ "$(values Restart "${file}" | tail -n 1)" != on-failure ]]; then
    fail "jira unit Restart" "Restart= should be on-failure, found: '$(values Restart "${file}" | tail -n 1)'"
    ok=0
  fi
  restart_sec="$(values RestartSec "${file}" | tail -n 1)"
  if [[ ! "${restart_sec}" =~ ^[1-9][0-9]*(s|min)?$ ]]; then
    fail "jira unit RestartSec" "RestartSec= should be a delay, found: '${restart_sec}'"
    ok=0
  fi
  if [[ "${ok}" == 1 ]]; then pass "jira.service enabled, after cloud-final.service, Restart=on-failure RestartSec=${restart_sec}"; fi
}

# The helpers the unit runs before each start are executable; the files they source or import exist.
check_helpers() {
  local ok=1 helper helpers
  helpers="$(values ExecStartPre "${root}${unit}" | sed 's/^[-+!@:]*//; s/[[:space:]].*//')"
  if [[ -z "${helpers}" ]]; then
    fail "start-up helpers" "${unit} runs no ExecStartPre helper"
    ok=0
  fi
  for helper in ${helpers}; do
    if [[ ! -f "${root}${helper}" || ! -x "${root}${helper}" ]]; then
      fail "start-up helpers" "${helper} (ExecStartPre of jira.service) is missing or not executable"
      ok=0
    fi
  done
  for helper in launch-env.sh jira_server_xml.py; do
    if [[ ! -s "${root}${helper_dir}/${helper}" ]]; then
      fail "start-up helpers" "${helper_dir}/${helper} is missing or empty"
      ok=0
    fi
  done
  if [[ "${ok}" == 1 ]]; then pass "start-up helpers present: $(echo "${helpers}" | tr '\n' ' ')launch-env.sh jira_server_xml.py"; fi
}

# Atlassian's PostgreSQL connection properties, in the template jira-db-secret renders at start.
check_dbconfig() {
  local template="${root}${config_dir}/dbconfig.xml.tmpl" properties
  properties="$(sed -n 's:.*<connection-properties>\(.*\)</connection-properties>.*:\1:p' "${template}" 2>/dev/null || true)"
  if [[ ";${properties};" =~ \;tcpKeepAlive=true\; && ";${properties};" =~ \;socketTimeout=[1-9][0-9]*\; ]]; then
    pass "dbconfig.xml template sets ${properties}"
  else
    fail "dbconfig connection properties" "${config_dir}/dbconfig.xml.tmpl should set tcpKeepAlive=true and socketTimeout, found: '${properties:-no <connection-properties>}'"
  fi
}

# jira-proxy edits exactly one live connector on the HTTP port at each start: the same parser says
# whether it will find it.
check_connector() {
  local server_xml="${jira_dir}/conf/server.xml" found
  if ! found="$(python3 - "${root}${helper_dir}" "${server_xml}" "${port:-8080}" 2>&1 <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import jira_server_xml
with open(sys.argv[2], encoding="utf-8") as f:
    jira_server_xml.with_proxy(f.read(), sys.argv[3], {})
PY
  )"; then
    fail "server.xml connector" "conf/server.xml: $(printf '%s' "${found}" | tail -n 1)"
  else
    pass "conf/server.xml has one live connector on port ${port:-8080}"
  fi
}

# The Java of the unit's JAVA_HOME.
check_java() {
  local java_home
  java_home="$(values Environment "${root}${unit}" | tr ' ' '\n' | sed -n 's/^"\{0,1\}JAVA_HOME=\([^"]*\)"\{0,1\}$/\1/p' | tail -n 1)"
  if [[ -z "${java_home}" ]]; then
    fail "java" "jira.service sets no JAVA_HOME"
  elif [[ ! -x "${root}${java_home}/bin/java" ]]; then
    fail "java" "${java_home}/bin/java (JAVA_HOME of jira.service) is missing or not executable"
  else
    pass "java at ${java_home}/bin/java"
  fi
}

# The Jira home belongs to the jira user, by the image's own passwd.
check_home_owner() {
  local uid owner
  [[ -n "${home}" && -n "${user}" ]] || return 0
  uid="$(awk -F: -v u="${user}" '$1 == u { print $3 }' "${root}/etc/passwd" 2>/dev/null || true)"
  owner="$(stat -c %u "${root}${home}" 2>/dev/null || true)"
  if [[ -z "${uid}" ]]; then
    fail "jira home owner" "no user ${user} in /etc/passwd"
  elif [[ "${owner}" != "${uid}" ]]; then
    fail "jira home owner" "${home} is owned by uid '${owner:-missing}', not ${user} (uid ${uid})"
  else
    pass "${home} owned by ${user}"
  fi
}

# Chef's cleanup ran: no workspace, client state or installer tarball goes into the image.
check_no_leftovers() {
  local left=() dir
  for dir in /var/tmp/jira-images /opt/cinc /etc/cinc /var/cinc /etc/chef /var/chef /root/.cinc /root/.chef; do
    if [[ -e "${root}${dir}" ]]; then left+=("${dir}"); fi
  done
  while IFS= read -r -d '' dir; do
    left+=("${dir#"${root}"}")
  done < <(find "${root}/var/tmp" "${root}/tmp" "${root}/root" "${root}/home" "${root}/opt" -name 'atlassian-jira-software-*.tar.gz' -print0 2>/dev/null)
  if [[ "${#left[@]}" -gt 0 ]]; then
    fail "build leftovers" "still on the image: ${left[*]}"
  else
    pass "no Chef workspace, client state or installer left"
  fi
}

check_install
check_heap
check_unit
check_helpers
check_dbconfig
check_connector
check_java
check_home_owner
check_no_leftovers

if [[ "${failures}" -gt 0 ]]; then
  printf 'verify-jira-image: error: %d check(s) failed; the image is not made\n' "${failures}" >&2
  exit 1
fi
printf 'verify-jira-image: every check passed\n'
