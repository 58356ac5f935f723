#!/bin/bash
# Makes this instance a Jira Data Center cluster node when its launch settings say so, at each
# start (systemd ExecStartPre, as root), before Jira: with JIRA_CLUSTER=true in
# /etc/jira-images/launch.env it mounts the shared home from EFS (JIRA_SHARED_HOME_EFS: the file
# system's DNS name or id) encrypted in transit (the amazon-efs-utils mount helper, -o tls), and
# writes cluster.properties into the local home: this instance's id as jira.node.id (IMDSv2), the
# shared home, and the cache replication listener on this instance's private address and fixed
# ports (so that security groups can open them between nodes). Without JIRA_CLUSTER=true it
# removes a cluster.properties, so that the node runs standalone.
# launch.env and the baked start.env are read as data, never sourced. Test hooks:
# JIRA_IMAGES_CONFIG_DIR (settings directory), IMDS_ENDPOINT (see imds_get in launch-env.sh).
set -euo pipefail

fail() { printf 'jira-cluster: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'jira-cluster: %s\n' "$*"; }

here="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
# shellcheck source-path=SCRIPTDIR source=launch-env.sh
. "${here}/launch-env.sh"

config_dir="${JIRA_IMAGES_CONFIG_DIR:-/etc/jira-images}"
launch="${config_dir}/launch.env"
baked_file="${config_dir}/start.env"
[ -f "$baked_file" ] || fail "${baked_file} is missing"
baked() { launch_env_get "$baked_file" "$1" || fail "$1 is not set in ${baked_file}"; }

home="$(baked JIRA_HOME)"
shared="$(baked JIRA_SHARED_HOME)"
user="$(baked JIRA_USER)"
group="$(baked JIRA_GROUP)"
listener_port="$(baked JIRA_EHCACHE_LISTENER_PORT)"
object_port="$(baked JIRA_EHCACHE_OBJECT_PORT)"
properties="${home}/cluster.properties"

cluster="$(launch_env_get "$launch" JIRA_CLUSTER || true)"
case "$cluster" in
  true) ;;
  "" | false)
    if [ -e "$properties" ]; then
      log "JIRA_CLUSTER is not true: removing ${properties} (standalone node)"
      rm -f "$properties"
    fi
    exit 0
    ;;
  *) fail "JIRA_CLUSTER in ${launch} must be true or false, not '${cluster}'" ;;
esac

efs="$(launch_env_get "$launch" JIRA_SHARED_HOME_EFS || true)"
[ -n "$efs" ] || fail "JIRA_CLUSTER=true needs JIRA_SHARED_HOME_EFS (the EFS file system's DNS name) in ${launch}"
[[ "$efs" =~ ^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$ ]] ||
  fail "JIRA_SHARED_HOME_EFS in ${launch} must be an EFS DNS name like fs-0123456789abcdef0.efs.eu-west-1.amazonaws.com, not '${efs}'"

node_id="$(imds_get instance-id)" || fail "cannot read the instance id from the instance metadata service (IMDSv2)"
address="$(imds_get local-ipv4)" || fail "cannot read the private address from the instance metadata service (IMDSv2)"
[[ "$node_id" =~ ^i-[0-9a-f]{8,17}$ ]] || fail "unexpected instance id '${node_id}' from the instance metadata service"
[[ "$address" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || fail "unexpected private address '${address}' from the instance metadata service"

if mountpoint -q "$shared"; then
  log "shared home ${shared} is mounted"
else
  log "mounting ${efs}:/ on ${shared} (EFS, TLS)"
  mkdir -p "$shared"
  mount -t efs -o tls "${efs}:/" "$shared" ||
    fail "cannot mount ${efs}:/ on ${shared}: is the mount target in this subnet's availability zone, and NFS (2049) open from this instance?"
fi
chown "${user}:${group}" "$shared"

umask 027
tmp="$(mktemp "${home}/.cluster.properties.XXXXXX")"
cat > "$tmp" <<PROPERTIES
# Written by jira-images (jira-cluster) at each start from the launch settings; edits are lost.
jira.node.id = ${node_id}
jira.shared.home = ${shared}
ehcache.peer.discovery = default
ehcache.listener.hostName = ${address}
ehcache.listener.port = ${listener_port}
ehcache.object.port = ${object_port}
PROPERTIES
chmod 0640 "$tmp"
chown "${user}:${group}" "$tmp"
mv -f "$tmp" "$properties"
log "cluster node ${node_id} (${address}), shared home ${shared}"
