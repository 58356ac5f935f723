#!/bin/bash
# Reads the launch settings (/etc/jira-images/launch.env, written by user data) and the settings
# Chef bakes next to them as data: one KEY=value per line, the value verbatim after the first '='.
# Never sourced or evaluated, so no value is ever run or expanded (a base URL like
# `https://x/;touch>/tmp/x` stays a string, `?a=1&b=2` stays whole). Lines that are not KEY=value
# and keys nobody asks for are ignored. Also the instance metadata (imds_get). This file is our
# code: the start-up helpers next to it source it for the functions below.
set -euo pipefail

# launch_env_get FILE KEY: prints the value of KEY (the last line for KEY wins, as it would in a
# shell); exit status 1 when FILE does not exist or has no line for KEY.
launch_env_get() {
  local file="$1" key="$2" line value="" found=1
  [ -f "$file" ] || return 1
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
      "${key}="*)
        value="${line#*=}"
        found=0
        ;;
    esac
  done < "$file"
  [ "$found" -eq 0 ] || return 1
  printf '%s\n' "$value"
}

# imds_get PATH: prints the instance metadata at PATH (latest/meta-data/PATH) with IMDSv2: a session
# token first, as instances that require IMDSv2 refuse token-less requests. IMDS_ENDPOINT overrides
# the service's address (for tests). Exit status non-zero when the service does not answer.
imds_get() {
  local endpoint="${IMDS_ENDPOINT:-http://169.254.169.254}" token
  token="$(curl --fail --silent --show-error --max-time 5 --retry 3 --request PUT \
    --header 'X-aws-ec2-metadata-token-ttl-seconds: 300' "${endpoint}/latest/api/token")" || return 1
  curl --fail --silent --show-error --max-time 5 --retry 3 \
    --header "X-aws-ec2-metadata-token: ${token}" "${endpoint}/latest/meta-data/$1"
}
