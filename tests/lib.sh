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
#   veth_pair SRV CLI  makes network namespaces SRV and CLI (the test picks
#                   unique names, e.g. with $$) joined by a veth pair: veth-s
#                   in SRV, veth-c in CLI, both up, and lo up in each. The
#                   EXIT trap deletes them (after the test's cleanup, so its
#                   processes are gone first).
#   wait_ready LOG  waits up to 10 s for `isoboot serve`'s "ready:" line in
#                   LOG; fails (showing fail_logs) when it does not come.
#                   Remove LOG before starting a second server on it.
# A test that needs more on failure (all logs, a capture) does it in cleanup
# when $1 is not 0.

fail_logs=()
fail_lines=30
_netns_made=()

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
  local ns
  for ns in "${_netns_made[@]}"; do ip netns del "$ns" 2>/dev/null; done
  if [[ ${ISOBOOT_TEST_KEEP:-0} == 1 ]]; then
    echo "kept $tmp" >&2
  else
    rm -rf "$tmp"
  fi
  exit "$rc"
}

veth_pair() {
  local srv=$1 cli=$2
  ip netns add "$srv"
  _netns_made+=("$srv")
  ip netns add "$cli"
  _netns_made+=("$cli")
  ip link add veth-s netns "$srv" type veth peer name veth-c netns "$cli"
  ip -n "$srv" link set veth-s up
  ip -n "$srv" link set lo up
  ip -n "$cli" link set veth-c up
  ip -n "$cli" link set lo up
}

wait_ready() {
  local _
  for _ in $(seq 50); do
    grep -q "ready:" "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  fail "server did not start (no \"ready:\" in $1)"
}

# dhcp_lease NS IFACE [UDHCPC-ARG...]: one DHCP exchange by busybox udhcpc
# from NS (e.g. "${pxe_bios[@]}" to ask as a BIOS PXE ROM); prints
# "ip=IP boot_file=FILE siaddr=ADDR", or nothing when no lease came (20 s).
pxe_bios=(-V PXEClient:Arch:00000:UNDI:002001)
dhcp_lease() {
  local ns=$1 iface=$2 script=$tmp/udhcpc-lease.sh
  shift 2
  if [[ ! -x $script ]]; then
    printf '%s\n' '#!/bin/sh' \
      '[ "$1" = bound ] && echo "ip=$ip boot_file=$boot_file siaddr=$siaddr"' 'exit 0' >"$script"
    chmod +x "$script"
  fi
  ip netns exec "$ns" timeout 20 busybox udhcpc -i "$iface" -n -q -f -s "$script" "$@" 2>/dev/null |
    grep '^ip=' || true
}
