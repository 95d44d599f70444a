#!/usr/bin/env bash
# The initrd decides: KIWI-layout ISOs whose initrds are built here by GNU
# cpio (an uncompressed early archive, then the main one compressed with
# zstd, xz or gzip) show their root transports in `iso info`; `pxe config`
# picks the root from them, takes dracut's command line for a dracut
# livenet initrd, and refuses in one line a root the initrd cannot mount.
set -euo pipefail
bin=${ISOBOOT_BIN:?set ISOBOOT_BIN to the isoboot binary}
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp iso-initrd

# make_iso NAME COMPRESSOR FILE...: a KIWI-layout ISO whose initrd holds FILEs
# (each "path" or "path=contents").
make_iso() {
  local name=$1 compress=$2 spec
  shift 2
  local d=$tmp/$name
  mkdir -p "$d/early/kernel/x86/microcode" "$d/main" "$d/iso/boot/x86_64/loader" "$d/iso/LiveOS"
  echo microcode >"$d/early/kernel/x86/microcode/GenuineIntel.bin"
  for spec in "$@"; do
    mkdir -p "$d/main/$(dirname "${spec%%=*}")"
    if [[ $spec == *=* ]]; then printf '%s\n' "${spec#*=}" >"$d/main/${spec%%=*}"; else
      : >"$d/main/$spec"; fi
  done
  (cd "$d/early" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$d/iso/boot/x86_64/loader/initrd"
  (cd "$d/main" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | $compress) \
    >>"$d/iso/boot/x86_64/loader/initrd"
  head -c 100000 /dev/urandom >"$d/iso/boot/x86_64/loader/linux"
  head -c 100000 /dev/urandom >"$d/iso/LiveOS/squashfs.img"
  xorriso -as mkisofs -quiet -R -o "$tmp/$name.iso" "$d/iso" 2>/dev/null
}

make_iso kiwi "zstd -q" \
  "usr/lib/dracut/hooks/cmdline/30-parse-kiwi-live.sh=live:AOEINTERFACE=*) rootok=1 ;;" \
  usr/lib/kiwi-live-lib.sh usr/lib/modules/6.1.0-50-amd64/kernel/drivers/block/aoe/aoe.ko \
  usr/lib/dracut/dracut-059-4
make_iso livenet "xz --check=crc32" usr/lib/dracut/hooks/cmdline/29-parse-livenet.sh \
  usr/sbin/livenetroot usr/sbin/dmsquash-live-root usr/bin/curl
make_iso noaoe gzip usr/lib/kiwi-live-lib.sh=AOEINTERFACE

"$bin" iso info "$tmp/kiwi.iso" >"$tmp/info"
grep -qx 'initrd is  kiwi-live, dracut 059-4' "$tmp/info" || fail "$(cat "$tmp/info")"
grep -qx 'transports aoe (kiwi-live + aoe.ko)' "$tmp/info" || fail "$(cat "$tmp/info")"
grep -qx "no http    kiwi-live's parser has no http root, no curl" "$tmp/info" ||
  fail "$(cat "$tmp/info")"
"$bin" iso info --json "$tmp/kiwi.iso" |
  python3 -c 'import json,sys; j=json.load(sys.stdin)["initrd_contents"]; assert j["root_transports"]==["aoe"], j'

"$bin" pxe config "$tmp/kiwi.iso" | grep -q 'APPEND rd.kiwi.live.pxe root=live:AOEINTERFACE=e0.1$' ||
  fail "kiwi: default root is not AoE"
set +e
"$bin" pxe config "$tmp/kiwi.iso" --root http --http-base http://10.0.0.1:8080 >/dev/null 2>"$tmp/err"
rc=$?
set -e
[[ $rc == 1 ]] || fail "--root http on kiwi-live 9.24: exit $rc"
[[ $(wc -l <"$tmp/err") == 1 ]] || fail "not one line: $(cat "$tmp/err")"
grep -q "^isoboot: error: --root http: this image's initrd (kiwi-live, dracut 059-4) cannot mount its root over http (kiwi-live's parser has no http root, no curl); it can do: aoe$" \
  "$tmp/err" || fail "refusal: $(cat "$tmp/err")"

# KIWI layout, dracut livenet initrd: dracut's form, the squashfs alone, http by default.
"$bin" iso info "$tmp/livenet.iso" | grep -qx 'transports http (dracut livenet + dmsquash-live, curl)' ||
  fail "livenet: $("$bin" iso info "$tmp/livenet.iso")"
"$bin" pxe config "$tmp/livenet.iso" --http-base http://10.0.0.1:8080 >"$tmp/livenet.cfg"
grep -q 'APPEND root=live:http://10.0.0.1:8080/LiveOS/squashfs.img rd.live.image$' "$tmp/livenet.cfg" ||
  fail "livenet entry: $(cat "$tmp/livenet.cfg")"

# kiwi-live without aoe.ko: no default that works, and the refusal says why.
set +e
"$bin" pxe config "$tmp/noaoe.iso" 2>"$tmp/err" >/dev/null
rc=$?
set -e
[[ $rc == 1 ]] && grep -q 'cannot mount its root over aoe (no aoe kernel module); it can do: none' "$tmp/err" ||
  fail "noaoe: exit $rc: $(cat "$tmp/err")"

# A corrupt initrd: iso info says so in one line and still shows the rest.
cp "$tmp/kiwi.iso" "$tmp/corrupt.iso"
extent=$("$bin" iso ls --extents "$tmp/corrupt.iso" /boot/x86_64/loader/initrd | sed 's/.* //')
# Inside the zstd frame's last block (its checksum no longer matches).
printf 'XXXX' | dd of="$tmp/corrupt.iso" bs=1 seek=$((${extent%+*} + ${extent#*+} - 12)) \
  conv=notrunc status=none
"$bin" iso info "$tmp/corrupt.iso" >"$tmp/info" || true
grep -q '^transports unknown: the initrd cannot be read: zstd member at byte [0-9]*: ' "$tmp/info" ||
  fail "corrupt: $(cat "$tmp/info")"
"$bin" pxe config "$tmp/corrupt.iso" 2>"$tmp/err" | grep -q 'AOEINTERFACE=e0.1' ||
  fail "corrupt initrd: pxe config should fall back to the layout"
grep -q '^warning: /boot/x86_64/loader/initrd: cannot tell which roots it can mount' "$tmp/err" ||
  fail "corrupt: no warning: $(cat "$tmp/err")"
echo "initrd_info_test: ok"
