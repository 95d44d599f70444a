#!/usr/bin/env bash
# A file over 4 GiB is stored in several extents (ISO 9660 level 3): isoboot
# must list it with its full size, show its extents, and read it back byte for
# byte across the extent boundaries, with `cat` and with `extract`.
# Writes a ~4.3 GiB image; labelled slow (run once per CI run).
set -euo pipefail
tmp=$(mktemp -d "${ISOBOOT_TEST_TMP:-/tmp}/iso-big.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/tree"
big=$tmp/tree/big.img
size=$((4 * 1024 * 1024 * 1024 + 300 * 1024 * 1024 + 12345))
truncate -s "$size" "$big"  # sparse: zeros except the markers below
for off in 0 $((4 * 1024 * 1024 * 1024 - 2048 - 5)) $((4 * 1024 * 1024 * 1024 - 5)) $((size - 7000)); do
  head -c 4096 /dev/urandom | dd of="$big" bs=1 seek="$off" conv=notrunc status=none count=4096 2>/dev/null || true
done
truncate -s "$size" "$big"
echo small >"$tmp/tree/small.txt"
xorriso -as mkisofs -quiet -iso-level 3 -R -o "$tmp/big.iso" "$tmp/tree" 2>/dev/null

line=$("$ISOBOOT_BIN" iso ls -l "$tmp/big.iso" /big.img)
echo "$line"
[[ $(awk '{print $4}' <<<"$line") == "$size" ]] || { echo "FAIL: size in ls -l"; exit 1; }
extents=$("$ISOBOOT_BIN" iso ls --extents "$tmp/big.iso" /big.img | awk '{print $2}' | tr ',' '\n' | wc -l)
echo "extents: $extents"
((extents >= 2)) || { echo "FAIL: expected several extents"; exit 1; }

"$ISOBOOT_BIN" iso cat "$tmp/big.iso" /big.img | cmp - "$big"
echo "cat: identical"
"$ISOBOOT_BIN" iso extract "$tmp/big.iso" /big.img -C "$tmp/out"
cmp "$tmp/out/big.img" "$big"
echo "extract: identical"
echo "1 passed, 0 failed"
