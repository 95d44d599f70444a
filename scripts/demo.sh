#!/usr/bin/env bash
# The README's demo: boots a real KIWI live ISO over the network with
# `isoboot serve` alone. Installs what it needs, builds isoboot, builds (or
# reuses, cached under /var/cache/isoboot/kiwi) a small KIWI live ISO from Debian
# packages, starts `isoboot serve live.iso` in a private network namespace
# (bridge + tap: the host's own network is not touched), PXE-boots a QEMU
# client from it and shows the client's console and the server's
# per-client milestones, ending with one verdict line. Cleans up after
# itself, also on Ctrl-C. First run: ~10 minutes (the ISO build); later: ~2.
#
# scripts/demo.sh --bmc: the second demo, on the same ISO, the BMC way: a
# powered-off QEMU host behind a fake iLO 5 (Redfish, the real iLO 5 tree)
# and a real IPMI BMC (OpenIPMI's ipmi_sim) for its console; `isoboot bmc
# boot --serve live.iso --console` boots it from the ISO as its virtual CD and
# hands over the SOL console, where a file is written and the RAM overlay is
# backed up to `isoboot serve --backup-dir`; a second `isoboot bmc boot`
# restarts the host (the file is gone) and `isoboot overlay restore` brings it
# back. It is tests/bmc/seed_flow_slow_test.sh, shown as it goes (~3 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
mode=${1:-}
[[ -z $mode || $mode == --bmc ]] || { echo "usage: scripts/demo.sh [--bmc]" >&2; exit 2; }
scripts/deps.sh build test qemu kiwi
echo "demo: building isoboot" >&2
scripts/build.sh release isoboot >/dev/null
bin=$src/build/release/src/cli/isoboot
echo "demo: building (or reusing) the demo KIWI live ISO" >&2
iso=$(tests/image/build-kiwi-live.sh "${KIWI_CACHE:-/var/cache/isoboot/kiwi}")
if [[ $mode == --bmc ]]; then
  start=$SECONDS
  if BMC_SEED_SHOW=1 BMC_SEED_CASES=ilo5:bios ISOBOOT_BIN=$bin ISOBOOT_SOURCE_DIR=$src \
    tests/bmc/seed_flow_slow_test.sh; then
    echo "demo: booted $(basename "$iso") through the BMC (iLO 5, virtual CD over HTTP from isoboot) twice in $((SECONDS - start)) s; the overlay backup came back after the reboot"
    exit 0
  fi
  echo "demo: FAILED: see above"
  exit 1
fi
# shellcheck source=tests/qemu/lib.sh
source tests/qemu/lib.sh

ns=isoboot-demo-$$
work=$(mktemp -d "${TMPDIR:-/tmp}/isoboot-demo.XXXXXX")
serve_pid= server_tail= client_tail= QEMU_PID=
cleanup() {
  set +e  # clean up everything, whatever fails
  qemu_stop_pid "$QEMU_PID"
  qemu_stop_pid "$serve_pid"
  [[ -n $server_tail ]] && kill "$server_tail" 2>/dev/null
  [[ -n $client_tail ]] && kill "$client_tail" 2>/dev/null
  qemu_netns_teardown "$ns"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted"; exit 130' INT TERM

qemu_netns_setup "$ns" br0 tap0
ip -n "$ns" addr add 10.0.42.1/24 dev br0
"$bin" iso info "$iso"
echo
echo "demo: isoboot serve $(basename "$iso") --interface br0 --dhcp full (in network namespace $ns)"
ip netns exec "$ns" "$bin" serve "$iso" --interface br0 --dhcp full \
  --dhcp-range 10.0.42.100,10.0.42.200 --append console=ttyS0 >"$work/server.log" 2>&1 &
serve_pid=$!
for _ in $(seq 100); do grep -q "ready:" "$work/server.log" && break; sleep 0.1; done
grep -q "ready:" "$work/server.log" || { cat "$work/server.log"; exit 1; }

args=()
qemu_netboot_args args tap0 52:54:00:00:42:01 bios
: >"$work/client.log"
# The log followers end by themselves with this script (--pid), or with QEMU.
tail -n +1 -F --pid=$$ "$work/server.log" 2>/dev/null | sed -u 's/^/server | /' &
server_tail=$!
start=$SECONDS
qemu_start "$ns" "$work/client.log" "${args[@]}"
tail -n +1 -F --pid="$QEMU_PID" "$work/client.log" 2>/dev/null | tr -d '\r' | sed -u 's/^/client | /' &
client_tail=$!
status=0
qemu_wait_marker "$work/client.log" "ISOBOOT-LIVE-(OK|FAIL)" 600 || status=$?
elapsed=$((SECONDS - start))
wait "$client_tail" 2>/dev/null || true  # the rest of the console, before the verdict
kill "$server_tail" 2>/dev/null || true
if ((status == 0)) && grep -qa "ISOBOOT-LIVE-OK" "$work/client.log" && grep -qa "etherd/e0.1" "$work/client.log"; then
  echo "demo: booted $(basename "$iso") over AoE in $elapsed s (QEMU with software emulation, PXE -> iPXE -> HTTP -> AoE root)"
else
  echo "demo: FAILED: the client did not reach its live root in $elapsed s"
  exit 1
fi
