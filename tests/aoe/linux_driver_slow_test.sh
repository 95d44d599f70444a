#!/usr/bin/env bash
# Interop with the real Linux aoe driver: a QEMU guest (Debian's kernel, a
# busybox initramfs, tests/qemu/aoe_init.sh as /init) on a tap in a private
# bridge loads aoe.ko, waits for /dev/etherd/e0.1 served by the AoE target
# under test on that bridge, reads it end to end and checks its sha256 (given
# on the kernel command line) and size. The guest prints the verdict on its
# serial console and powers off. Three boots: MTU 1500 (two sectors per
# frame); MTU 9000 (jumbo frames: the driver uses as many sectors per frame as
# the target's Query Config response allows); and (isoboot only) a guest that
# loads aoe.ko while its NIC is still down, so the driver's Query Config at
# load is lost, and never asks for another: only the target's periodic
# unsolicited announcements can make the disk appear before the driver's own
# rediscovery 60 s later (the guest waits 40 s on its clock). vblade
# announces only once, at start, and fails that boot; it is skipped for it.
#   AOE_TEST_TARGET=isoboot (default: `$ISOBOOT_BIN aoe export 0 1 BR FILE`)
#   AOE_TEST_TARGET=vblade  (Debian's vblade, the reference the guest side was built against)
#   AOE_TEST_KEEP=1         keep the temporary directory (console.log, target.log)
# Needs root (netns, tap), qemu-system-x86, linux-image-amd64, busybox-static
# (scripts/deps.sh qemu test). Bounded: each boot gets 90 s under TCG (they
# take 10-20 s on a loaded 2-core machine).
set -euo pipefail
src=${ISOBOOT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=../qemu/lib.sh
source "$src/tests/qemu/lib.sh"

target=${AOE_TEST_TARGET:-isoboot}
size_mib=16
boot_timeout=90

mkdir -p "${ISOBOOT_TEST_TMP:-/tmp}"
tmp=$(mktemp -d "${ISOBOOT_TEST_TMP:-/tmp}/aoe-linux-driver.XXXXXX")
ns=isoboot-aoeqemu-$$
br=br0
tap=tap0
target_pid=""
QEMU_PID=""
console=$tmp/console.log
cleanup() {
  local rc=$?
  qemu_stop_pid "$QEMU_PID"
  qemu_stop_pid "$target_pid"
  qemu_netns_teardown "$ns"
  if ((rc != 0)); then
    echo "--- guest console (last 60 lines)"
    tail -n 60 "$console" 2>/dev/null || true
    echo "--- target log (last 30 lines)"
    tail -n 30 "$tmp/target.log" 2>/dev/null || true
  fi
  if [[ ${AOE_TEST_KEEP:-0} == 1 ]]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

kver=$(qemu_kernel_version)
kernel=$(qemu_kernel_image "$kver")
initrd=$(qemu_build_initramfs "$kver" "$src/tests/qemu/aoe_init.sh" virtio_pci virtio_net aoe)

head -c $((size_mib << 20)) /dev/urandom >"$tmp/disk.img"
sha=$(sha256sum "$tmp/disk.img" | cut -d' ' -f1)
size=$(stat -c %s "$tmp/disk.img")

case $target in
  isoboot) target_cmd=("${ISOBOOT_BIN:?ISOBOOT_BIN must name the isoboot binary}" aoe export 0 1 "$br" "$tmp/disk.img") ;;
  vblade) target_cmd=(vblade 0 1 "$br" "$tmp/disk.img") ;;
  *) echo "unknown AOE_TEST_TARGET=$target (isoboot or vblade)" >&2; exit 2 ;;
esac

start_target() {
  ip netns exec "$ns" "${target_cmd[@]}" >"$tmp/target.log" 2>&1 &
  target_pid=$!
  sleep 0.5
  kill -0 "$target_pid" 2>/dev/null || { echo "FAIL: target ${target_cmd[*]} exited at start" >&2; exit 1; }
}

# One guest boot on a fresh namespace with MTU; exits the test on failure.
# With NIC_LATE=nic-late the guest loads aoe.ko before its NIC is up and
# never pokes /dev/etherd/discover.
boot_and_read() {  # MTU [NIC_LATE]
  local mtu=$1 late=${2:-}
  console=$tmp/console-$mtu$late.log
  qemu_netns_setup "$ns" "$br" "$tap" "$mtu"
  start_target

  local append="console=ttyS0 panic=-1 loglevel=6 mitigations=off"
  append+=" aoe_test.dev=e0.1 aoe_test.sha256=$sha aoe_test.size=$size aoe_test.mtu=$mtu"
  if [[ -n $late ]]; then append+=" aoe_test.nic_late=1 aoe_test.poke=0 aoe_test.wait=40"; else append+=" aoe_test.wait=60"; fi
  local args=()
  qemu_direct_boot_args args "$kernel" "$initrd" "$append" "$tap" 52:54:00:a0:e0:01
  echo "== MTU $mtu${late:+, NIC up after aoe.ko}: booting $kernel under ${QEMU_ACCEL:-tcg} against $target, ${size_mib} MiB export"
  local start=$SECONDS status=0
  qemu_start "$ns" "$console" "${args[@]}"
  qemu_wait_marker "$console" 'AOE-TEST: (PASS|FAIL)' "$boot_timeout" || status=$?
  QEMU_PID=""
  if ((status != 0)); then
    echo "FAIL: no verdict from the guest (status $status) after $((SECONDS - start))s" >&2
    exit 1
  fi
  local verdict
  verdict=$(grep -aoE 'AOE-TEST: .*' "$console" | head -n1 | tr -d '\r')
  grep -aE 'aoe-init:' "$console" | tr -d '\r' || true
  echo "guest: $verdict (QEMU ran $((SECONDS - start))s)"
  [[ $verdict == "AOE-TEST: PASS "* ]] || exit 1
  kill -0 "$target_pid" 2>/dev/null || { echo "FAIL: target exited during the test" >&2; exit 1; }
  # The driver logs the data frame size it chose from the MTU and the
  # target's advertised sectors per command: jumbo frames must be used.
  local frame
  frame=$(grep -aoE 'aoe: e0\.1: setting [0-9]+ byte data frames' "$console" | grep -oE '[0-9]+ byte' | cut -d' ' -f1 | tail -n1)
  echo "driver data frame: ${frame:-?} bytes"
  if ((mtu > 1500)) && ((${frame:-0} <= 1024)); then
    echo "FAIL: MTU $mtu but the driver uses ${frame:-?}-byte data frames" >&2
    exit 1
  fi
  qemu_stop_pid "$target_pid"
  target_pid=""
  qemu_netns_teardown "$ns"
}

boot_and_read 1500
boot_and_read 9000
if [[ $target == vblade ]]; then
  echo "PASS: Linux aoe driver read ${size_mib} MiB from vblade with the right sha256 at MTU 1500 and 9000"
  exit 0
fi
boot_and_read 1500 nic-late
echo "PASS: Linux aoe driver read ${size_mib} MiB from $target with the right sha256 at MTU 1500 and 9000, and found it without asking after a late link-up"
