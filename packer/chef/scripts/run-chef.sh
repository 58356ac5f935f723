#!/bin/bash
# Runs Chef in local mode (chef-zero) against the uploaded workspace. Runs as root on the build
# instance.
# Environment:
#   WORKSPACE        upload directory holding chef/ (client.rb, cookbooks/, roles/, nodes/)
#   CHEF_NODE        node name: uses chef/nodes/<name>.json with its run list (custom stages), or
#   CHEF_RUN_LIST    run list for a node without a node file (jira base stage) + CHEF_NODE_NAME
#   CHEF_CLIENT_BIN  client executable (default cinc-client; chef-client works the same way)
#   JIRA_VERSION, JIRA_INSTALLER_DIR  read by the jira cookbook's attributes
set -euo pipefail

fail() { printf 'run-chef: error: %s\n' "$*" >&2; exit 1; }

workspace="${WORKSPACE:?WORKSPACE is required}"
chef_dir="${workspace}/chef"
client="${CHEF_CLIENT_BIN:-cinc-client}"
node="${CHEF_NODE:-}"
run_list="${CHEF_RUN_LIST:-}"

[ -f "${chef_dir}/client.rb" ] || fail "${chef_dir}/client.rb is missing: was the workspace uploaded?"

args=(--local-mode --config "${chef_dir}/client.rb" --no-color --log_level info)
if [ -n "$node" ]; then
  [ -z "$run_list" ] || fail "set CHEF_NODE or CHEF_RUN_LIST, not both"
  node_file="${chef_dir}/nodes/${node}.json"
  if [ ! -f "$node_file" ]; then
    known=""
    for f in "${chef_dir}"/nodes/*.json; do
      if [ -e "$f" ]; then known="${known} $(basename "$f" .json)"; fi
    done
    fail "no Chef node '${node}': ${node_file} does not exist (known nodes:${known:- none})"
  fi
  args+=(--node-name "$node")
elif [ -n "$run_list" ]; then
  args+=(--node-name "${CHEF_NODE_NAME:?CHEF_NODE_NAME is required with CHEF_RUN_LIST}" --override-runlist "$run_list")
else
  fail "set CHEF_NODE (a node file under chef/nodes) or CHEF_RUN_LIST"
fi

export CHEF_LICENSE="accept-no-persist"
printf 'run-chef: %s %s\n' "$client" "${args[*]}"
"$client" "${args[@]}"
