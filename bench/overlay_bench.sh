#!/usr/bin/env bash
# isoboot overlay backup/restore against the documented procedure
# (`tar czf ARCHIVE -C UPPER .` and `tar xf ARCHIVE -C UPPER`) on an upper
# dir of many small files: copies of /usr/share, /usr/include and /usr/lib
# files (text, binaries, already-compressed data, as on a real live system)
# until SIZE_MIB is reached. Each command runs once on a warm page cache;
# prints wall time, archive size and the ratios.
#   bench/overlay_bench.sh [SIZE_MIB (default 2048)]
#   ISOBOOT_BIN (default build/release/src/cli/isoboot), BENCH_TMP (default /tmp)
set -euo pipefail
size_mib=${1:-2048}
bin=${ISOBOOT_BIN:-build/release/src/cli/isoboot}
tmp=$(mktemp -d "${BENCH_TMP:-/tmp}/overlay-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "== building a ${size_mib} MiB upper dir of small files in $tmp"
mkdir -p "$tmp/upper"
python3 - "$tmp/upper" "$size_mib" <<'PY'
import os, shutil, sys
dst, limit = sys.argv[1], int(sys.argv[2]) << 20
total = files = 0
for rnd in range(100):
    for src in ("/usr/share", "/usr/include", "/usr/lib"):
        for dirpath, dirs, names in os.walk(src):
            dirs.sort()
            for n in sorted(names):
                p = os.path.join(dirpath, n)
                if os.path.islink(p) or not os.path.isfile(p):
                    continue
                size = os.path.getsize(p)
                if size > 1 << 20:
                    continue  # small files only
                out = os.path.join(dst, str(rnd), os.path.relpath(dirpath, "/"))
                os.makedirs(out, exist_ok=True)
                shutil.copy2(p, os.path.join(out, n))
                total += size
                files += 1
                if total >= limit:
                    print(f"{files} files, {total >> 20} MiB")
                    sys.exit(0)
print(f"{files} files, {total >> 20} MiB (all there was)")
PY
tar cf - -C "$tmp/upper" . >/dev/null  # warm the page cache for both

now() { date +%s.%N; }
run() {  # label, command...
  local label=$1 t0 t1
  shift
  t0=$(now)
  "$@"
  t1=$(now)
  printf '%s' "$(echo "$t1 - $t0" | bc)" >"$tmp/time.$label"
}
run tar_czf tar czf "$tmp/doc.tar.gz" -C "$tmp/upper" .
run isoboot_zstd "$bin" overlay backup --upper "$tmp/upper" -o "$tmp/b.tar.zst" >/dev/null
run isoboot_gzip "$bin" overlay backup --upper "$tmp/upper" --gzip -o "$tmp/b.tar.gz" >/dev/null
mkdir "$tmp/r1" "$tmp/r2"
run tar_xf tar xf "$tmp/doc.tar.gz" -C "$tmp/r1"
run isoboot_restore "$bin" overlay restore --upper "$tmp/r2" "$tmp/b.tar.zst" >/dev/null

t() { cat "$tmp/time.$1"; }
sz() { stat -c %s "$1"; }
content=$(du -sb "$tmp/upper" | cut -f1)
echo "== results (content $((content >> 20)) MiB, $(nproc) CPUs; each run once)"
printf '%-34s %9s %12s %8s\n' command seconds "size MiB" "MiB/s"
row() { printf '%-34s %9.2f %12.1f %8.0f\n' "$1" "$2" "$(echo "$3 / 1048576" | bc -l)" "$(echo "$content / 1048576 / $2" | bc -l)"; }
row "tar czf (documented)" "$(t tar_czf)" "$(sz "$tmp/doc.tar.gz")"
row "isoboot overlay backup (zstd)" "$(t isoboot_zstd)" "$(sz "$tmp/b.tar.zst")"
row "isoboot overlay backup --gzip" "$(t isoboot_gzip)" "$(sz "$tmp/b.tar.gz")"
row "tar xf (documented)" "$(t tar_xf)" "$(sz "$tmp/doc.tar.gz")"
row "isoboot overlay restore (zstd)" "$(t isoboot_restore)" "$(sz "$tmp/b.tar.zst")"
echo "== ratios (tar / isoboot; above 1 means isoboot is faster or smaller)"
printf 'backup time  tar czf / isoboot zstd : %.2f\n' "$(echo "$(t tar_czf) / $(t isoboot_zstd)" | bc -l)"
printf 'backup time  tar czf / isoboot gzip : %.2f\n' "$(echo "$(t tar_czf) / $(t isoboot_gzip)" | bc -l)"
printf 'archive size tar.gz  / isoboot zstd : %.2f\n' "$(echo "$(sz "$tmp/doc.tar.gz") / $(sz "$tmp/b.tar.zst")" | bc -l)"
printf 'restore time tar xf  / isoboot      : %.2f (isoboot verifies the whole archive first)\n' \
  "$(echo "$(t tar_xf) / $(t isoboot_restore)" | bc -l)"
