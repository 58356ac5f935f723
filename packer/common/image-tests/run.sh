#!/bin/bash
# The image tests: each stage's last provisioner runs them as root on the build instance, after
# image-cleanup.sh and before Packer makes the AMI, so a failed check fails the build and no AMI is
# made. They read only files under the root folder they are given (and ask the image's sshd), so
# they also run locally against a prepared folder.
#
# Usage: run.sh [--root DIR] --stage NAME --expect N SUITE...
#   SUITE     a suite file <SUITE>.sh next to this script (base, jira, custom), run in that order
#   --root    the image's root folder (default /); every path a check reads is under it
#   --stage   the stage whose image this is, named in the result line
#   --expect  how many checks the suites hold (the program counts them; the AMI's
#             jira-images:tests-count tag): a run of any other number fails
# Inputs of the suites come from the environment (see each suite's `requires` line).
#
# Output: `image-tests: ok: <check>: ...` on stdout, `image-tests: FAILED <check>: ...` on stderr,
# and last on stdout the result line the stage runner reads:
#   image-tests: stage=<stage> passed=<n> failed=<n>
# Exit status: 0 when exactly N checks ran and all passed, 1 when not, 2 on bad usage.
# shellcheck disable=SC2317 # requires, pass, problem and check are called by the sourced suites
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() {
  printf 'image-tests: error: %s\n' "$1" >&2
  printf 'usage: run.sh [--root DIR] --stage NAME --expect N SUITE...\n' >&2
  exit 2
}

root_dir=/
stage=""
expect=""
suites=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    --root) root_dir="${2:-}"; shift 2 || usage "--root needs a folder" ;;
    --stage) stage="${2:-}"; shift 2 || usage "--stage needs a name" ;;
    --expect) expect="${2:-}"; shift 2 || usage "--expect needs a number" ;;
    -*) usage "unknown option $1" ;;
    *) suites+=("$1"); shift ;;
  esac
done
[ -n "$stage" ] || usage "--stage is required"
[[ "$expect" =~ ^[1-9][0-9]*$ ]] || usage "--expect must be the number of checks the suites hold, not '${expect}'"
[ "${#suites[@]}" -gt 0 ] || usage "name at least one suite (base, jira, custom)"
[ -d "$root_dir" ] || usage "root folder ${root_dir} does not exist"
for suite in "${suites[@]}"; do
  [[ "$suite" =~ ^[a-z][a-z0-9-]*$ && -f "${here}/${suite}.sh" ]] || usage "no suite '${suite}' (${here}/${suite}.sh)"
done

# The image's root as a prefix of absolute paths: empty for /, so that checks read /etc/... there.
ROOT="${root_dir%/}"
export ROOT

# requires VAR...: the suite's inputs; a missing one is a usage error before any check runs.
requires() {
  local name
  for name in "$@"; do
    [ -n "${!name:-}" ] || usage "suite needs ${name} in the environment"
  done
}

# Within a check: pass DETAIL says why it passed; problem DETAIL records one failure (a check may
# record several, it counts once).
CHECK=""
problems=0
said=0
pass() {
  printf 'image-tests: ok: %s: %s\n' "$CHECK" "$*"
  said=1
}
problem() {
  printf 'image-tests: FAILED %s: %s\n' "$CHECK" "$*" >&2
  problems=$((problems + 1))
}

ran=0
passed=0
failed_names=()

# check NAME FUNCTION: runs one check in a subshell (one check's error cannot stop the others or
# change their state). The program counts these lines in the suite files, so each stays on one line.
check() {
  local name="$1" function="$2" status=0
  ran=$((ran + 1))
  (
    CHECK="$name"
    "$function"
    if [ "$problems" -gt 0 ]; then exit 3; fi
    if [ "$said" -eq 0 ]; then pass "passed"; fi
  ) || status=$?
  case "$status" in
    0) passed=$((passed + 1)) ;;
    3) failed_names+=("$name") ;;
    *)
      printf 'image-tests: FAILED %s: the check itself stopped with status %s\n' "$name" "$status" >&2
      failed_names+=("$name")
      ;;
  esac
}

for suite in "${suites[@]}"; do
  # shellcheck source=/dev/null # the suites are sourced by name; shellcheck checks each on its own
  . "${here}/${suite}.sh"
done

failed="${#failed_names[@]}"
status=0
if [ "$failed" -gt 0 ]; then
  printf 'image-tests: error: %d of %d checks failed (%s); the image is not made\n' "$failed" "$ran" "$(IFS=','; printf '%s' "${failed_names[*]}")" >&2
  status=1
fi
if [ "$ran" -ne "$expect" ]; then
  printf 'image-tests: error: %d checks ran, but the stage expects %s (image_tests_count, counted by the program from the suites %s); the image is not made\n' "$ran" "$expect" "${suites[*]}" >&2
  status=1
fi
printf 'image-tests: stage=%s passed=%d failed=%d\n' "$stage" "$passed" "$failed"
exit "$status"
