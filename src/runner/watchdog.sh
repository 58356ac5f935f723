#!/bin/sh
# The stage runner's watchdog: a small process of its own (own process group, not an ancestor of
# Packer, no pipe to anyone) that outlives the runner. When the runner disappears without having
# stopped Packer - the Pulumi command provider SIGKILLs its direct child on cancel or timeout - it
# sends Packer's process group the interrupt the runner would have sent, waits for Packer's
# cleanup (temporary instance, key pair, security group), has the log redacted as the runner
# would have, and exits with Packer. While the runner is alive it only watches. It is a shell
# script so that it costs a few milliseconds to start next to every build.
#
#   watchdog.sh <runner pid> <packer pid> <log file> <node> <tsx loader> <redact-log.ts>
set -u
runner=$1
packer=$2
log=$3
node=$4
tsx=$5
redact=$6

# Running, and not a zombie: an exited process whose parent is gone or slow to reap it is dead.
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  [ -r "/proc/$1/stat" ] || return 0
  read -r stat <"/proc/$1/stat" 2>/dev/null || return 1
  state=${stat##*) }
  state=${state%% *}
  [ "$state" != Z ] && [ "$state" != X ]
}

note() {
  printf 'stage-runner watchdog: %s\n' "$1" >>"$log"
}

interrupted=no
while alive "$packer"; do
  if [ "$interrupted" = no ] && ! alive "$runner"; then
    interrupted=yes
    note "runner (pid $runner) is gone; interrupting Packer (process group $packer) and waiting for its cleanup"
    kill -INT "-$packer" 2>/dev/null
  fi
  sleep 0.2
done
[ "$interrupted" = yes ] || exit 0
# Whatever Packer started and left behind in its group must not keep running either.
kill -TERM "-$packer" 2>/dev/null
note "Packer has exited"
"$node" --import "$tsx" "$redact" "$log" || note "redacting the log failed (exit $?)"
# The runner's live-run marker (run-marker.ts): the build is over, so sweep may now treat what it left as dead.
rm -f "${log%.log}.run.json"
