#!/usr/bin/env bash
# End to end, the BMC virtual-media path without a BMC: the KIWI test image
# (tests/image/build-kiwi-live.sh, bootable as a CD like a real KIWI live
# ISO) boots in QEMU as a CD that QEMU reads over HTTP from
# `isoboot serve live.iso --http-only`, through its curl block driver
# (Debian's qemu-block-extra), which, like a BMC's virtual CD, reads the
# image in HTTP Range requests. Firmware (CDBOOT_FIRMWARE, default both):
#   bios  SeaBIOS, El Torito BIOS entry: isolinux
#   uefi  OVMF (q35), El Torito UEFI entry: GRUB from the ESP image
# Each must reach the live system's ISOBOOT-LIVE-OK with its root from the CD
# (kiwi-live's root=live:CDLABEL=ISOBOOT_KIWI, the medium /dev/sr0) and no
# network at all (the guest has no NIC); isoboot's HTTP log must show the
# image served in 206 (Range) responses only. Before that, `isoboot iso
# info` must list both boot entries.
#
# Everything runs in a network namespace holding only loopback, made and
# removed here. Prints per firmware the seconds from QEMU start to the
# marker, the requests and MiB the CD pulled against the ISO's size.
# E2E_TIMEOUT bounds each boot (default 420 s: TCG on a loaded 2-core box).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
# shellcheck source=tests/qemu/lib.sh
source "$src/tests/qemu/lib.sh"
bin=${ISOBOOT_BIN:?ISOBOOT_BIN must name the isoboot binary}
timeout=${E2E_TIMEOUT:-420}
read -r -a firmwares <<<"${CDBOOT_FIRMWARE:-bios uefi}"
fail() { echo "FAIL: $*"; exit 1; }

qemu_need_http_driver
iso=$("$src/tests/image/build-kiwi-live.sh" "${KIWI_CACHE:-/var/cache/isoboot/kiwi}")
iso_size=$(stat -c %s "$iso")
tmp=$(mktemp -d "${ISOBOOT_TEST_TMP:-/tmp}/cdboot.XXXXXX")
ns=isbcd$$
trap 'qemu_test_cleanup "$ns" "$tmp"' EXIT

"$bin" iso info "$iso" >"$tmp/info"
grep -qE '^boot +BIOS no emulation, /isolinux/isolinux.bin at block [0-9]+, 4 sectors$' "$tmp/info" ||
  fail "iso info shows no BIOS entry: $(cat "$tmp/info")"
grep -qE '^ +UEFI no emulation, /boot/x86_64/efi at block [0-9]+, [0-9]+ sectors$' "$tmp/info" ||
  fail "iso info shows no UEFI entry: $(cat "$tmp/info")"
echo "iso info: BIOS and UEFI entries"

ip netns add "$ns"
ip -n "$ns" link set lo up
qemu_bg_start "$ns" "$tmp/serve.log" "$bin" serve "$iso" --http-only --http-address 127.0.0.1 --http-port 0
qemu_wait_log "$tmp/serve.log" "ready:" || fail "serve did not start"
url=$(grep -o 'the image is at [^ ]*' "$tmp/serve.log" | head -n1 | cut -d' ' -f5)
[[ $url == http://127.0.0.1:*/live.iso ]] || fail "no image URL in serve's log: $(cat "$tmp/serve.log")"
echo "serving $url"

# The serve log's lines for the image from line FROM on: "STATUS BYTES" each.
image_requests() {  # FROM
  tail -n +"$1" "$tmp/serve.log" | sed -nE 's|.* GET /live\.iso ([0-9]+): ([0-9]+) of [0-9]+ bytes.*|\1 \2|p'
}

status=0
for fw in "${firmwares[@]}"; do
  args=(-m "${QEMU_MEM:-512}" -smp 1 -accel "${QEMU_ACCEL:-tcg}" -nodefaults -serial stdio
    -drive "file.driver=http,file.url=$url,format=raw,media=cdrom,readonly=on,if=ide,index=2")
  case $fw in
    bios) args+=(-machine pc -boot d) ;;
    uefi)
      code=/usr/share/OVMF/OVMF_CODE_4M.fd vars=/usr/share/OVMF/OVMF_VARS_4M.fd
      [[ -r $code && -r $vars ]] || fail "OVMF missing: scripts/deps.sh qemu"
      cp "$vars" "$tmp/OVMF_VARS.fd"
      args+=(-machine q35 -drive "if=pflash,format=raw,unit=0,readonly=on,file=$code"
        -drive "if=pflash,format=raw,unit=1,file=$tmp/OVMF_VARS.fd")
      ;;
    *) fail "unknown firmware $fw (bios or uefi)" ;;
  esac
  log=$tmp/console-$fw.log
  from=$(($(wc -l <"$tmp/serve.log") + 1))
  start=$SECONDS
  qemu_start "$ns" "$log" "${args[@]}"
  rc=0
  qemu_wait_marker "$log" '^ISOBOOT-LIVE-END' "$timeout" || rc=$?
  secs=$((SECONDS - start))
  console=$(tr -d '\r' <"$log")
  problems=()
  grep -qa '^ISOBOOT-LIVE-OK' <<<"$console" || problems+=("no ISOBOOT-LIVE-OK (wait status $rc)")
  grep -qa '^ISOBOOT-LIVE-CMDLINE: .*root=live:CDLABEL=ISOBOOT_KIWI .*console=ttyS0' <<<"$console" ||
    problems+=("not booted with root=live:CDLABEL=ISOBOOT_KIWI console=ttyS0")
  grep -qa '^ISOBOOT-LIVE-MEDIA: .* - iso9660 /dev/sr0 ' <<<"$console" ||
    problems+=("the live medium is not the CD /dev/sr0")
  grep -qa '^ISOBOOT-LIVE-LOOP: .* /run/overlay/live/LiveOS/squashfs.img ' <<<"$console" ||
    problems+=("the root is not the CD's LiveOS/squashfs.img")
  grep -qaE '^ISOBOOT-LIVE-IP: *$' <<<"$console" || problems+=("the guest had a network address")
  requests=$(image_requests "$from")
  n206=$(grep -c '^206 ' <<<"$requests" || true)
  others=$(grep -vc '^206 ' <<<"$requests" || true)
  bytes=$(awk '{s += $2} END {print s + 0}' <<<"$requests")
  ((n206 > 0)) || problems+=("isoboot served no Range (206) response")
  ((others == 0)) || problems+=("$others responses for the image were not 206: $(grep -v '^206 ' <<<"$requests" | sort | uniq -c | tr '\n' ' ')")
  mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
  if ((${#problems[@]} == 0)); then
    echo "$fw: ISOBOOT-LIVE-OK in ${secs} s; the CD pulled $(mib "$bytes") MiB (the ISO is $(mib "$iso_size") MiB) in $n206 Range requests"
  else
    status=1
    echo "FAIL $fw after ${secs} s: ${problems[*]}"
    echo "--- console (last 40 lines)"
    tail -n 40 <<<"$console"
    echo "--- serve (last 10 lines)"
    tail -n 10 "$tmp/serve.log"
  fi
done
((status == 0)) && echo "cdboot: ${#firmwares[@]} passed" || echo "cdboot: failed"
exit $status
