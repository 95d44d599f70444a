#!/usr/bin/env bash
# `isoboot bmc boot --via pxe`: a host whose BMC has no virtual media (the
# stock OpenBMC tree, BMC_PXE_PROFILE) network-boots the same ISO from
# `isoboot serve`. The fake BMC (tests/bmc/fake_bmc.py --vm-dir --vm-tap)
# drives a powered-off QEMU VM whose NIC is on a bridge where `isoboot serve
# live.iso --interface br0 --dhcp full` runs; the VM boots from that NIC only
# after a one-time Pxe override, else it tries its blank disk. `isoboot bmc
# boot --via pxe` must exit 0, and the VM's console must show the live
# system with its root over AoE (/dev/etherd), booted from the network.
#
# Everything runs in a network namespace (bridge + tap) made and removed
# here. Prints seconds from `isoboot bmc boot` to the marker. E2E_TIMEOUT
# bounds the boot (default 420 s).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
# shellcheck source=tests/qemu/lib.sh
source "$src/tests/qemu/lib.sh"
# shellcheck source=tests/bmc/vm_lib.sh
source "$src/tests/bmc/vm_lib.sh"
bin=${ISOBOOT_BIN:?ISOBOOT_BIN must name the isoboot binary}
timeout=${E2E_TIMEOUT:-420}
profile=${BMC_PXE_PROFILE:-openbmc}
fail() { echo "FAIL: $*"; exit 1; }

iso=$("$src/tests/image/build-kiwi-live.sh" "${KIWI_CACHE:-/var/cache/isoboot/kiwi}")
tmp=$(mktemp -d "${ISOBOOT_TEST_TMP:-/tmp}/bmcpxe.XXXXXX")
ns=isbpxe$$
trap 'qemu_test_cleanup "$ns" "$tmp"' EXIT
export BMC_PW="Pw-$$-not-in-argv"

bmc_vm_cert
qemu_netns_setup "$ns" br0 tap0
ip -n "$ns" addr add 10.0.43.1/24 dev br0
qemu_bg_start "$ns" "$tmp/serve.log" "$bin" serve "$iso" --interface br0 --dhcp full \
  --dhcp-range 10.0.43.100,10.0.43.200 --append console=ttyS0
qemu_wait_log "$tmp/serve.log" "ready:" || fail "serve did not start"

mac=52:54:00:43:00:01
bmc_vm_start_fake "$tmp" "$profile" bios --vm-tap tap0 --vm-mac "$mac" || fail "see above"

start=$SECONDS
rc=0
ip netns exec "$ns" "$bin" bmc boot --via pxe --bmc "$bmc" --user admin \
  --password-env BMC_PW --ca "$tmp/cert.pem" --poll-interval 0.5 --power-timeout 60 \
  >"$tmp/boot.out" 2>&1 || rc=$?
console=$tmp/vm/console.log
problems=()
((rc == 0)) || problems+=("isoboot bmc boot --via pxe exited $rc: $(tail -n 3 "$tmp/boot.out")")
deadline=$((SECONDS + timeout))
while ((rc == 0 && SECONDS < deadline)); do
  grep -qa '^ISOBOOT-LIVE-END' "$console" 2>/dev/null && break
  grep '^qemu-system-x86_64: ' "$tmp/vm/qemu.out" 2>/dev/null | grep -qv 'warning:' && break
  sleep 0.5
done
secs=$((SECONDS - start))
grep -qa '^ISOBOOT-LIVE-OK' "$console" 2>/dev/null || problems+=("no ISOBOOT-LIVE-OK within ${timeout} s")
grep -qa '^ISOBOOT-LIVE-ETHERD: .*/dev/etherd/' "$console" 2>/dev/null ||
  problems+=("the root is not the AoE export")
grep -qa '"from_net": true' "$tmp/vm/vm.log" 2>/dev/null || problems+=("the VM was not started from its NIC")
grep -qa 'VirtualMedia' "$tmp/requests" && problems+=("isoboot touched virtual media")
grep -qi "${mac}" "$tmp/serve.log" || problems+=("serve never saw the VM's MAC")
if ((${#problems[@]} == 0)); then
  echo "$profile bios: isoboot bmc boot --via pxe to ISOBOOT-LIVE-OK over AoE in ${secs} s"
  echo "pxe_boot: passed"
  exit 0
fi
echo "FAIL $profile: ${problems[*]}"
echo "--- bmc boot"; cat "$tmp/boot.out"
echo "--- console (last 30 lines)"; tail -n 30 "$console" 2>/dev/null || true
echo "--- vm"; cat "$tmp/vm/qemu.out" 2>/dev/null || true
echo "--- serve (last 20 lines)"; tail -n 20 "$tmp/serve.log"
echo "pxe_boot: failed"
exit 1
