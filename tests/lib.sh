# shellcheck shell=bash
# Helpers for the shell tests (tests/<layer>/*_test.sh; bash with
# set -euo pipefail, run by ctest as root). Source it first:
#   source "$(dirname "$0")/../lib.sh"
#
#   test_tmp NAME   makes $tmp, a fresh directory $ISOBOOT_TEST_TMP/NAME.XXXXXX
#                   (or under /tmp), and sets the EXIT trap: it calls the
#                   test's `cleanup` function, if there is one by then, with
#                   the exit status as $1; removes $tmp (kept, and named, when
#                   ISOBOOT_TEST_KEEP=1); and exits with the test's status.
#                   SIGINT/SIGTERM exit 130 through the same trap.
#   fail MSG...     prints "FAIL: MSG" to stderr, then the last
#                   $fail_lines (30) lines of every file named in the array
#                   fail_logs that exists, and exits 1.
# A test that needs more on failure (all logs, a capture) does it in cleanup
# when $1 is not 0.

fail_logs=()
fail_lines=30

fail() {
  echo "FAIL: $*" >&2
  local f
  for f in "${fail_logs[@]}"; do
    [[ -f $f ]] || continue
    echo "--- last $fail_lines lines of $f" >&2
    tail -n "$fail_lines" "$f" >&2
  done
  exit 1
}

test_tmp() {
  local base=${ISOBOOT_TEST_TMP:-/tmp}
  mkdir -p "$base"
  tmp=$(mktemp -d "${base%/}/$1.XXXXXX")
  trap _test_exit EXIT
  trap 'exit 130' INT TERM
}

_test_exit() {
  local rc=$?
  set +eu
  trap - EXIT
  if declare -F cleanup >/dev/null; then cleanup "$rc"; fi
  if [[ ${ISOBOOT_TEST_KEEP:-0} == 1 ]]; then
    echo "kept $tmp" >&2
  else
    rm -rf "$tmp"
  fi
  exit "$rc"
}
