#!/usr/bin/env bash
# isoboot iso cat vs xorriso -osirrox on -extract: one 1 GiB file inside an
# ISO, copied out to a file on the same filesystem, page cache warm, best of
# 3 runs each; prints both times, the ratio and isoboot's peak RSS.
# Usage: bench/iso_cat_bench.sh [ISOBOOT_BIN]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/release/src/cli/isoboot}
[[ -x $bin ]] || { scripts/deps.sh build test bench && scripts/build.sh release isoboot >/dev/null; }
scripts/deps.sh test bench
tmp=$(mktemp -d "${TMPDIR:-/tmp}/iso-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/tree/LiveOS"
head -c $((1024 * 1024 * 1024)) /dev/urandom >"$tmp/tree/LiveOS/squashfs.img"
xorriso -as mkisofs -quiet -R -o "$tmp/live.iso" "$tmp/tree" 2>/dev/null
rm -rf "$tmp/tree"
cat "$tmp/live.iso" >/dev/null  # warm the page cache

best() {  # command... -> best wall seconds of 3
  local b=999999 t
  for _ in 1 2 3; do
    rm -f "$tmp/out"
    local s e
    s=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    e=$(date +%s.%N)
    t=$(echo "$e - $s" | bc -l)
    (($(echo "$t < $b" | bc -l))) && b=$t
  done
  echo "$b"
}
t_iso=$(best sh -c "'$bin' iso cat '$tmp/live.iso' /LiveOS/squashfs.img > '$tmp/out'")
t_xor=$(best xorriso -osirrox on -indev "$tmp/live.iso" -extract /LiveOS/squashfs.img "$tmp/out")
rss=$(/usr/bin/time -f %M sh -c "'$bin' iso cat '$tmp/live.iso' /LiveOS/squashfs.img > '$tmp/out'" 2>&1 >/dev/null | tail -1)
rss_x=$(/usr/bin/time -f %M xorriso -osirrox on -indev "$tmp/live.iso" -extract /LiveOS/squashfs.img "$tmp/out2" 2>&1 >/dev/null | tail -1)
cmp "$tmp/out" "$tmp/out2"
printf '%-34s %8s s  peak RSS %6d KiB\n' "isoboot iso cat (1 GiB file)" "$(printf %.3f "$t_iso")" "$rss"
printf '%-34s %8s s  peak RSS %6d KiB\n' "xorriso -osirrox on -extract" "$(printf %.3f "$t_xor")" "$rss_x"
printf 'ratio isoboot/xorriso time: %.2f  (xorriso is %.1fx slower)\n' \
  "$(echo "$t_iso / $t_xor" | bc -l)" "$(echo "$t_xor / $t_iso" | bc -l)"
