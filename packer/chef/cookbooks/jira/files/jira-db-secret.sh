#!/bin/bash
# Renders Jira's dbconfig.xml at service start (systemd ExecStartPre, as root) from the template
# baked into the image and the database password read by name from SSM Parameter Store or
# Secrets Manager with the instance role. The password exists only in the rendered file (mode
# 0600, owner jira), never in the image, the user data or the logs.
# Settings are read as data, never sourced (launch-env.sh): /etc/jira-images/db-secret.env (baked
# by Chef) names the store and the secret; /etc/jira-images/launch.env (written by user data) may
# name another store or secret (JIRA_DB_PASSWORD_STORE, JIRA_DB_PASSWORD_NAME). AWS_CLI overrides
# the aws executable, JIRA_IMAGES_CONFIG_DIR the settings directory and IMDS_ENDPOINT the instance
# metadata service (for tests).
set -euo pipefail

fail() { printf 'jira-db-secret: error: %s\n' "$*" >&2; exit 1; }

# shellcheck source-path=SCRIPTDIR source=launch-env.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/launch-env.sh"

config_dir="${JIRA_IMAGES_CONFIG_DIR:-/etc/jira-images}"
aws_cli="${AWS_CLI:-aws}"
baked_file="${config_dir}/db-secret.env"
launch="${config_dir}/launch.env"
[ -f "$baked_file" ] || fail "${baked_file} is missing"

# baked KEY: a setting only the image decides. setting KEY: launch.env first, then the image.
baked() { launch_env_get "$baked_file" "$1" || fail "$1 is not set in ${baked_file}"; }
setting() { launch_env_get "$launch" "$1" || baked "$1"; }

store="$(setting JIRA_DB_PASSWORD_STORE)"
name="$(setting JIRA_DB_PASSWORD_NAME)"
home="$(baked JIRA_HOME)"
user="$(baked JIRA_USER)"
group="$(baked JIRA_GROUP)"
[ -n "$name" ] || fail "JIRA_DB_PASSWORD_NAME is empty"
template="${config_dir}/dbconfig.xml.tmpl"
[ -f "$template" ] || fail "${template} is missing"

# A Secrets Manager secret holds either the password itself or JSON, as key/value and RDS-managed
# secrets do ({"username": ..., "password": ...}): then its "password" field. Read from stdin so
# that the password never appears in a process list.
password_field() {
  python3 -c '
import json, sys
text = sys.stdin.read()
try:
    value = json.loads(text)
except ValueError:
    value = None
if not isinstance(value, dict):
    sys.stdout.write(text)
elif isinstance(value.get("password"), str):
    sys.stdout.write(value["password"])
else:
    sys.exit("the secret is JSON without a string \"password\" field")
'
}

# The aws CLI needs a region: on an instance, the instance's own.
if [ -z "${AWS_REGION:-}${AWS_DEFAULT_REGION:-}" ]; then
  AWS_REGION="$(imds_get placement/region)" ||
    fail "no AWS_REGION, and cannot read this instance's region from the instance metadata service (IMDSv2)"
  export AWS_REGION
fi

case "$store" in
  ssm)
    password="$("$aws_cli" ssm get-parameter --name "$name" --with-decryption \
      --query Parameter.Value --output text)" || fail "cannot read SSM parameter ${name}"
    ;;
  secretsmanager)
    secret="$("$aws_cli" secretsmanager get-secret-value --secret-id "$name" \
      --query SecretString --output text)" || fail "cannot read secret ${name}"
    password="$(printf '%s' "$secret" | password_field)" || fail "secret ${name}: no password in it"
    ;;
  *)
    fail "JIRA_DB_PASSWORD_STORE must be ssm or secretsmanager, not '${store}'"
    ;;
esac
[ -n "$password" ] || fail "${store}:${name} is empty"

# XML-escape; '&' first so that the entities added after it are not escaped twice. Replacements
# are quoted: bash 5.2 (patsub_replacement) would otherwise expand '&' in them to the match.
escaped="${password//&/"&amp;"}"
escaped="${escaped//</"&lt;"}"
escaped="${escaped//>/"&gt;"}"
escaped="${escaped//\"/"&quot;"}"
escaped="${escaped//\'/"&apos;"}"

content="$(cat "$template")"
content="${content//@@JIRA_DB_PASSWORD@@/"$escaped"}"

umask 077
target="${home}/dbconfig.xml"
tmp="$(mktemp "${home}/.dbconfig.xml.XXXXXX")"
printf '%s\n' "$content" > "$tmp"
chown "${user}:${group}" "$tmp"
mv -f "$tmp" "$target"
