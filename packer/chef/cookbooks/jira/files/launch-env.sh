#!/bin/bash
# Reads the launch settings (/etc/jira-images/launch.env, written by user data) and the settings
# Chef bakes next to them as data: one KEY=value per line, the value verbatim after the first '='.
# Never sourced or evaluated, so no value is ever run or expanded (a base URL like
# `https://x/;touch>/tmp/x` stays a string, `?a=1&b=2` stays whole). Lines that are not KEY=value
# and keys nobody asks for are ignored. This file is our code: the start-up helpers next to it
# source it for the function below.
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
