#!/usr/bin/env bash
# `isoboot bmc boot` takes a powered-off host to its live system through
# virtual media: the fake BMC (tests/bmc/fake_bmc.py --vm-dir, with a real
# vendor tree) drives a QEMU VM whose CD is the inserted URL, read by QEMU's
# HTTP block driver with Range requests from `isoboot serve --http-only`, and
# which boots that CD only after a CD boot override. Per vendor and firmware
# (BMC_VM_CASES, default "ilo5:uefi ami:bios"; seed_flow_slow_test.sh boots
# ilo5:bios and ami:uefi): `isoboot bmc boot --iso URL` against the Off host
# must exit 0 and the VM's console must show the KIWI test image's
# ISOBOOT-LIVE-OK with its root from /dev/sr0. Then, once
# (BIOS), the same steps without the override (InsertMedia and Reset On sent
# to the fake directly) must not boot the CD: SeaBIOS tries only its blank
# disk and says "No bootable device", and no marker appears.
#
# Everything runs in a network namespace holding only loopback, made and
# removed here. Prints seconds from `isoboot bmc boot` to the marker.
# E2E_TIMEOUT bounds each boot (default 420 s).
# Not covered: the other vendor trees (iDRAC's ImportSystemConfiguration
# boot-once among them) on a VM.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
# shellcheck source=tests/qemu/lib.sh
source "$src/tests/qemu/lib.sh"
# shellcheck source=tests/bmc/vm_lib.sh
source "$src/tests/bmc/vm_lib.sh"
bin=${ISOBOOT_BIN:?ISOBOOT_BIN must name the isoboot binary}
timeout=${E2E_TIMEOUT:-420}
read -r -a cases <<<"${BMC_VM_CASES:-ilo5:uefi ami:bios}"
fail() { echo "FAIL: $*"; exit 1; }

qemu_need_http_driver
iso=$("$src/tests/image/build-kiwi-live.sh" "${KIWI_CACHE:-/var/cache/isoboot/kiwi}")
tmp=$(mktemp -d "${ISOBOOT_TEST_TMP:-/tmp}/bmcvm.XXXXXX")
ns=isbbmc$$
trap 'qemu_test_cleanup "$ns" "$tmp"' EXIT
export BMC_PW="Pw-$$-not-in-argv"

bmc_vm_cert
ip netns add "$ns"
ip -n "$ns" link set lo up
qemu_bg_start "$ns" "$tmp/serve.log" "$bin" serve "$iso" --http-only --http-address 127.0.0.1 --http-port 0
qemu_wait_log "$tmp/serve.log" "ready:" || fail "serve did not start"
url=$(grep -o 'the image is at [^ ]*' "$tmp/serve.log" | head -n1 | cut -d' ' -f5)
[[ $url == http://127.0.0.1:*/live.iso ]] || fail "no image URL in serve's log"

start_fake() {  # DIR VENDOR FIRMWARE
  bmc_vm_start_fake "$@" || fail "see above"
}

# Waits up to TIMEOUT s for a line matching REGEX in LOG; gives up at once
# when QEMU_OUT shows that QEMU refused to start.
wait_console() {  # LOG REGEX TIMEOUT QEMU_OUT
  local deadline=$((SECONDS + $3))
  while ((SECONDS < deadline)); do
    grep -qaE "$2" "$1" 2>/dev/null && return 0
    grep '^qemu-system-x86_64: ' "$4" 2>/dev/null | grep -qv 'warning:' && return 1
    sleep 0.5
  done
  return 1
}

status=0
for case in "${cases[@]}"; do
  vendor=${case%%:*} fw=${case#*:}
  dir=$tmp/$vendor-$fw
  start_fake "$dir" "$vendor" "$fw"
  start=$SECONDS
  rc=0
  ip netns exec "$ns" "$bin" bmc boot --bmc "$bmc" --user admin --password-env BMC_PW \
    --ca "$tmp/cert.pem" --iso "$url" --poll-interval 0.5 --power-timeout 60 >"$dir/boot.out" 2>&1 || rc=$?
  console=$dir/vm/console.log
  problems=()
  ((rc == 0)) || problems+=("isoboot bmc boot exited $rc: $(tail -n 3 "$dir/boot.out")")
  if ((rc == 0)) && ! wait_console "$console" '^ISOBOOT-LIVE-END' "$timeout" "$dir/vm/qemu.out"; then
    problems+=("no ISOBOOT-LIVE-END within ${timeout} s, or QEMU did not start")
  fi
  secs=$((SECONDS - start))
  grep -qa '^ISOBOOT-LIVE-OK' "$console" 2>/dev/null || problems+=("no ISOBOOT-LIVE-OK")
  grep -qa '^ISOBOOT-LIVE-MEDIA: .* - iso9660 /dev/sr0 ' "$console" 2>/dev/null ||
    problems+=("the live medium is not the CD /dev/sr0")
  grep -qa '"from_cd": true' "$dir/vm/vm.log" 2>/dev/null || problems+=("the VM was not started from its CD")
  n206=$(grep -c 'GET /live.iso 206' "$tmp/serve.log" || true)
  ((n206 > 2)) || problems+=("isoboot served only $n206 Range responses")
  if ((${#problems[@]} == 0)); then
    echo "$vendor $fw: isoboot bmc boot to ISOBOOT-LIVE-OK in ${secs} s"
  else
    status=1
    echo "FAIL $vendor $fw: ${problems[*]}"
    echo "--- bmc boot"; cat "$dir/boot.out"
    echo "--- console (last 30 lines)"; tail -n 30 "$console" 2>/dev/null || true
    echo "--- vm"; cat "$dir/vm/qemu.out" 2>/dev/null || true
  fi
  qemu_stop_pid "${QEMU_BG_PIDS[-1]}"  # the fake: it stops its VM on SIGTERM
  unset 'QEMU_BG_PIDS[-1]'
done

# Without the override the CD is attached but never booted.
dir=$tmp/no-override
start_fake "$dir" ilo5 bios
curl_bmc() {  # PATH JSON
  ip netns exec "$ns" curl -sS --fail --max-time 20 --cacert "$tmp/cert.pem" -u "admin:$BMC_PW" \
    -H 'Content-Type: application/json' -d "$2" "https://$bmc/redfish/v1$1" >/dev/null
}
curl_bmc /Managers/1/VirtualMedia/2/Actions/VirtualMedia.InsertMedia "{\"Image\": \"$url\"}"
curl_bmc /Systems/1/Actions/ComputerSystem.Reset '{"ResetType": "On"}'
console=$dir/vm/console.log
if ! wait_console "$console" 'No bootable device' 120 "$dir/vm/qemu.out"; then
  status=1
  echo "FAIL no-override: no 'No bootable device' within 120 s; console:"
  tail -n 20 "$console" 2>/dev/null || true
elif grep -qa 'ISOBOOT-LIVE-OK' "$console"; then
  status=1
  echo "FAIL no-override: the VM booted the CD without a boot override"
elif ! grep -qa '"from_cd": false' "$dir/vm/vm.log" || ! grep -qa 'file.driver=http' "$dir/vm/vm.log"; then
  status=1
  echo "FAIL no-override: the VM did not have the CD attached: $(cat "$dir/vm/vm.log")"
else
  echo "no-override: the CD stayed attached and unbooted (No bootable device)"
fi
((status == 0)) && echo "vm_boot: passed" || echo "vm_boot: failed"
exit $status
