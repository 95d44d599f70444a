#!/usr/bin/env bash
# Seconds from `isoboot bmc boot` to the live system's marker, per vendor and
# firmware, against the same ISO booted from a local `-cdrom` file (the
# physical limit: no BMC, no HTTP), in one run; and what the virtual CD pulled
# (MiB and HTTP Range requests, from isoboot's log) against the ISO's size.
#
# The BMC is tests/bmc/fake_bmc.py --vm-dir (the real iLO 5 and AMI trees)
# driving a QEMU VM whose CD is isoboot's URL read by QEMU's HTTP (curl)
# block driver; isoboot serves with `serve --http-only`. QEMU runs under TCG
# (software emulation), so the seconds are this machine's, not a server's.
# Everything runs in a network namespace holding only loopback.
# BMC_BENCH_CASES (default "ilo5:bios ilo5:uefi ami:bios ami:uefi"),
# BMC_BENCH_ROUNDS (default 1). Needs the release build (ISOBOOT_BIN).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/.." && pwd)
# shellcheck source=tests/qemu/lib.sh
source "$src/tests/qemu/lib.sh"
# shellcheck source=tests/bmc/vm_lib.sh
source "$src/tests/bmc/vm_lib.sh"
bin=${ISOBOOT_BIN:-$src/build/release/src/cli/isoboot}
read -r -a cases <<<"${BMC_BENCH_CASES:-ilo5:bios ilo5:uefi ami:bios ami:uefi}"
rounds=${BMC_BENCH_ROUNDS:-1}
fail() { echo "bmc_boot_bench: $*" >&2; exit 1; }

qemu_need_http_driver
iso=$("$src/tests/image/build-kiwi-live.sh" "${KIWI_CACHE:-/var/cache/isoboot/kiwi}")
iso_size=$(stat -c %s "$iso")
tmp=$(mktemp -d /tmp/bmcbench.XXXXXX)
ns=isbbench$$
trap 'qemu_test_cleanup "$ns" "$tmp"' EXIT
export BMC_PW="Pw-$$-bench"
bmc_vm_cert
ip netns add "$ns"
ip -n "$ns" link set lo up
qemu_bg_start "$ns" "$tmp/serve.log" "$bin" serve "$iso" --http-only --http-address 127.0.0.1 --http-port 0
qemu_wait_log "$tmp/serve.log" "ready:" || fail "serve did not start"
url=$(grep -o 'the image is at [^ ]*' "$tmp/serve.log" | head -n1 | cut -d' ' -f5)

# Waits up to 600 s for ISOBOOT-LIVE-END in LOG; prints the seconds since START.
wait_end() {  # LOG START
  local deadline=$((SECONDS + 600))
  while ((SECONDS < deadline)); do
    grep -qa '^ISOBOOT-LIVE-END' "$1" 2>/dev/null && { echo $((SECONDS - $2)); return 0; }
    sleep 0.2
  done
  return 1
}
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }

declare -A bmc_secs local_secs
printf '%-6s %-5s %9s %9s %7s %9s %9s\n' vendor fw "bmc s" "local s" ratio "MiB" ranges
for ((round = 1; round <= rounds; round++)); do
  for case in "${cases[@]}"; do
    vendor=${case%%:*} fw=${case#*:}
    dir=$tmp/$round-$vendor-$fw
    bmc_vm_start_fake "$dir" "$vendor" "$fw" || fail "$vendor $fw: see above"
    from=$(($(wc -l <"$tmp/serve.log") + 1))
    start=$SECONDS
    ip netns exec "$ns" "$bin" bmc boot --bmc "$bmc" --user admin \
      --password-env BMC_PW --ca "$tmp/cert.pem" --iso "$url" --poll-interval 0.5 >"$dir/boot.out" 2>&1 ||
      fail "$vendor $fw: bmc boot failed: $(tail -n 3 "$dir/boot.out")"
    secs=$(wait_end "$dir/vm/console.log" "$start") || fail "$vendor $fw: no marker"
    qemu_stop_pid "$fake_pid"
    requests=$(tail -n +"$from" "$tmp/serve.log" | sed -nE 's|.* GET /live\.iso ([0-9]+): ([0-9]+) of [0-9]+ bytes.*|\1 \2|p')
    bytes=$(awk '{s += $2} END {print s + 0}' <<<"$requests")
    ranges=$(grep -c '^206 ' <<<"$requests" || true)
    # The same ISO as a local CD, same machine and firmware.
    args=(-m 512 -smp 1 -accel tcg -nodefaults -serial stdio -boot d
      -drive "file=$iso,format=raw,media=cdrom,readonly=on,if=ide,index=2")
    if [[ $fw == uefi ]]; then
      cp /usr/share/OVMF/OVMF_VARS_4M.fd "$dir/vars.fd"
      args+=(-machine q35 -drive "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd"
        -drive "if=pflash,format=raw,unit=1,file=$dir/vars.fd")
    else
      args+=(-machine pc)
    fi
    start=$SECONDS
    qemu_start "$ns" "$dir/local.log" "${args[@]}"
    lsecs=$(wait_end "$dir/local.log" "$start") || fail "$vendor $fw: no marker from the local CD"
    qemu_stop_pid "$QEMU_PID"
    printf '%-6s %-5s %9s %9s %7s %9s %9s\n' "$vendor" "$fw" "$secs" "$lsecs" \
      "$(awk -v a="$secs" -v b="$lsecs" 'BEGIN {printf "%.2f", a / b}')" \
      "$(mib "$bytes")/$(mib "$iso_size")" "$ranges"
  done
done
echo "bmc s: isoboot bmc boot (Off host) to ISOBOOT-LIVE-END; local s: QEMU -cdrom file to the same line; MiB: pulled by the virtual CD / the ISO"
