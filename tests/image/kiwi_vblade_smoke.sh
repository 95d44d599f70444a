#!/usr/bin/env bash
# Smoke test of the KIWI live test image (tests/image/build-kiwi-live.sh)
# against the reference AoE target, not isoboot: Debian's vblade exports the
# whole ISO as e0.1 on a bridge in a private network namespace, a DHCP-only
# dnsmasq gives the guest its address, and QEMU (software emulation) boots the
# ISO's own kernel and KIWI initrd directly (-kernel/-initrd). Passes when the
# live root's init prints ISOBOOT-LIVE-OK with proof that it runs from
# /dev/etherd/e0.1. Prints seconds from QEMU start to the marker.
# Usage (root): tests/image/kiwi_vblade_smoke.sh [CACHE_DIR]
# Environment: KIWI_SMOKE_TIMEOUT (default 360 s), QEMU_MEM (default 512),
# KIWI_SMOKE_CONSOLE (a file to keep the guest's console log in),
# KIWI_SMOKE_IP=static (no DHCP server: a static ip= on the kernel command
# line, which kiwi-live keeps instead of adding ip=dhcp).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
# shellcheck source=tests/qemu/lib.sh
source "$src/tests/qemu/lib.sh"

[[ $(id -u) == 0 ]] || { echo "kiwi_vblade_smoke: needs root (netns, tap)" >&2; exit 1; }
for tool in vblade dnsmasq qemu-system-x86_64 xorriso ip; do
  command -v "$tool" >/dev/null || { echo "kiwi_vblade_smoke: $tool missing: scripts/deps.sh kiwi" >&2; exit 1; }
done
cache=${1:-${KIWI_CACHE:-/var/cache/isoboot/kiwi}}
timeout=${KIWI_SMOKE_TIMEOUT:-360}
export QEMU_MEM=${QEMU_MEM:-512}

iso=$("$here/build-kiwi-live.sh" "$cache")
key=$(basename "$(dirname "$iso")")

tmp=$(mktemp -d "${ISOBOOT_TEST_TMP:-/tmp}/kiwi-smoke.XXXXXX")
ns=kiwismoke$$
br=kbr$$
tap=ktap$$
vblade_pid=""
dnsmasq_pid=""
QEMU_PID=""
cleanup() {
  qemu_stop_pid "$QEMU_PID"
  qemu_stop_pid "$vblade_pid"
  qemu_stop_pid "$dnsmasq_pid"
  qemu_netns_teardown "$ns"
  if [[ -n ${KIWI_SMOKE_CONSOLE:-} ]]; then cp "$tmp/console.log" "$KIWI_SMOKE_CONSOLE" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

xorriso -osirrox on -indev "$iso" \
  -extract /boot/x86_64/loader/linux "$tmp/linux" \
  -extract /boot/x86_64/loader/initrd "$tmp/initrd" >/dev/null 2>&1

qemu_netns_setup "$ns" "$br" "$tap"
ip -n "$ns" addr add 10.77.0.1/24 dev "$br"

append="rd.kiwi.live.pxe root=live:AOEINTERFACE=e0.1 console=ttyS0 rd.shell=0 rd.emergency=poweroff"
if [[ ${KIWI_SMOKE_IP:-dhcp} == static ]]; then
  # ens2: systemd's name for the virtio NIC in PCI slot 2 (-nodefaults).
  append+=" ip=10.77.0.10::10.77.0.1:255.255.255.0::ens2:none"
else
  # DHCP only (--port=0: no DNS), for dhclient in the initrd (ip=dhcp, set by
  # kiwi-live's parse hook when rd.kiwi.live.pxe is given).
  ip netns exec "$ns" dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 \
    --interface="$br" --bind-interfaces --dhcp-range=10.77.0.50,10.77.0.99,255.255.255.0,1h \
    --dhcp-leasefile="$tmp/leases" --pid-file="$tmp/dnsmasq.pid" --log-dhcp --log-facility=- \
    >"$tmp/dnsmasq.log" 2>&1 &
  dnsmasq_pid=$!
fi
# The whole ISO is the AoE device (not an isohybrid partition).
ip netns exec "$ns" vblade 0 1 "$br" "$iso" >"$tmp/vblade.log" 2>&1 &
vblade_pid=$!

args=()
qemu_direct_boot_args args "$tmp/linux" "$tmp/initrd" "$append" "$tap" 52:54:00:4b:49:57
start=$(date +%s.%N)
qemu_start "$ns" "$tmp/console.log" "${args[@]}"
# Own poll (0.2 s) for the timing; qemu_wait_marker then handles power-off,
# exit and timeout.
end=""
for ((i = 0; i < timeout * 5; i++)); do
  if grep -qa '^ISOBOOT-LIVE-OK' "$tmp/console.log"; then
    end=$(date +%s.%N)
    break
  fi
  kill -0 "$QEMU_PID" 2>/dev/null || break
  sleep 0.2
done
rc=0
qemu_wait_marker "$tmp/console.log" '^ISOBOOT-LIVE-OK' 5 || rc=$?
[[ -n $end ]] || end=$(date +%s.%N)
log=$(tr -d '\r' <"$tmp/console.log")

fail() {
  echo "kiwi_vblade_smoke: FAIL: $*" >&2
  echo "--- console (last 60 lines)" >&2
  tail -n 60 <<<"$log" >&2
  echo "--- dnsmasq" >&2
  tail -n 20 "$tmp/dnsmasq.log" >&2 2>/dev/null || true
  exit 1
}
((rc == 0)) || fail "no ISOBOOT-LIVE-OK (qemu_wait_marker returned $rc)"
# Wait for the facts after the marker (the guest prints them right away).
for ((i = 0; i < 20; i++)); do
  grep -q '^ISOBOOT-LIVE-END' <<<"$log" && break
  sleep 0.5
  log=$(tr -d '\r' <"$tmp/console.log")
done
grep -qx "ISOBOOT-LIVE-PROOF: kiwi-root-image $key" <<<"$log" || fail "the root image's proof file was not read"
grep -q '^ISOBOOT-LIVE-CMDLINE: .*root=live:AOEINTERFACE=e0.1' <<<"$log" || fail "unexpected kernel command line"
grep -q '^ISOBOOT-LIVE-ETHERD: .* /dev/etherd/e0.1 ' <<<"$log" || fail "/dev/etherd/e0.1 is not mounted in the live system"
grep '^ISOBOOT-LIVE-' <<<"$log"
printf 'kiwi_vblade_smoke: PASS: ISOBOOT-LIVE-OK %.1f s after QEMU start (vblade, ip %s, TCG, %s MiB)\n' \
  "$(echo "$end - $start" | bc)" "${KIWI_SMOKE_IP:-dhcp}" "$QEMU_MEM"
