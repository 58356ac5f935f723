#!/bin/sh
# npm test: type-check the whole project and run the mocha specs side by side; on two cores this
# saves most of the time tsc takes on its own. Fails if either fails.
#   sh scripts/test.sh        every spec, test/real/ included (builds the test tools first: scripts/install-test-tools.sh)
#   sh scripts/test.sh unit   every spec but test/real/: no real Pulumi CLI or current Packer needed
set -u
# The fast tier runs its spec files in parallel (most of its time is spent waiting on child
# processes); the full run stays serial, so that the real tools' tests never compete with each other.
case "${1:-all}" in
  all) ignore="" parallel="" ;;
  unit) ignore="test/real/**" parallel="--parallel --jobs 3" ;;
  *) echo "usage: sh scripts/test.sh [unit]" >&2; exit 2 ;;
esac
# The full run builds the real tools it needs first (idempotent: under a second once they exist).
if [ -z "$ignore" ]; then
  bash "$(dirname "$0")/install-test-tools.sh" || { echo "npm test: building the test tools failed (scripts/install-test-tools.sh)" >&2; exit 1; }
fi
# A hung runner or validation must fail the run, not hang it: the whole run has a wall-clock limit.
limit="${TEST_WALL_CLOCK_LIMIT_SECONDS:-900}"
tsc_log=$(mktemp)
timeout --kill-after=10 "$limit" tsc --noEmit >"$tsc_log" 2>&1 &
tsc_pid=$!
# shellcheck disable=SC2086 # $parallel is a list of options
timeout --kill-after=10 "$limit" mocha $parallel ${ignore:+--ignore "$ignore"} 'test/**/*.test.ts'
mocha_status=$?
[ "$mocha_status" -eq 124 ] && echo "npm test: mocha ran longer than ${limit}s and was stopped (TEST_WALL_CLOCK_LIMIT_SECONDS)" >&2
wait "$tsc_pid"
tsc_status=$?
if [ "$tsc_status" -ne 0 ]; then
  cat "$tsc_log" >&2
  echo "npm test: tsc --noEmit failed (exit $tsc_status)" >&2
fi
rm -f "$tsc_log"
[ "$mocha_status" -eq 0 ] || exit "$mocha_status"
exit "$tsc_status"
