#!/bin/bash
# Renders Jira's dbconfig.xml at service start (systemd ExecStartPre, as root) from the template
# baked into the image and the database password read by name from SSM Parameter Store or
# Secrets Manager with the instance role. The password exists only in the rendered file (mode
# 0600, owner jira), never in the image, the user data or the logs.
# Settings: /etc/jira-images/db-secret.env (baked by Chef), overridable by
# /etc/jira-images/launch.env (written by user data). AWS_CLI overrides the aws executable and
# JIRA_IMAGES_CONFIG_DIR the settings directory (for tests).
set -euo pipefail

fail() { printf 'jira-db-secret: error: %s\n' "$*" >&2; exit 1; }

config_dir="${JIRA_IMAGES_CONFIG_DIR:-/etc/jira-images}"
aws_cli="${AWS_CLI:-aws}"

# Exported, so that launch.env can also set AWS_REGION or AWS_PROFILE for the aws CLI.
set -a
# shellcheck source=/dev/null # written by Chef at build time
. "${config_dir}/db-secret.env"
if [ -f "${config_dir}/launch.env" ]; then
  # shellcheck source=/dev/null # written by user data at launch
  . "${config_dir}/launch.env"
fi
set +a

store="${JIRA_DB_PASSWORD_STORE:?JIRA_DB_PASSWORD_STORE is not set in ${config_dir}/db-secret.env}"
name="${JIRA_DB_PASSWORD_NAME:?JIRA_DB_PASSWORD_NAME is not set in ${config_dir}/db-secret.env}"
home="${JIRA_HOME:?JIRA_HOME is not set}"
template="${config_dir}/dbconfig.xml.tmpl"
[ -f "$template" ] || fail "${template} is missing"

case "$store" in
  ssm)
    password="$("$aws_cli" ssm get-parameter --name "$name" --with-decryption \
      --query Parameter.Value --output text)" || fail "cannot read SSM parameter ${name}"
    ;;
  secretsmanager)
    password="$("$aws_cli" secretsmanager get-secret-value --secret-id "$name" \
      --query SecretString --output text)" || fail "cannot read secret ${name}"
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
chown "${JIRA_USER:-jira}:${JIRA_GROUP:-jira}" "$tmp"
mv -f "$tmp" "$target"
