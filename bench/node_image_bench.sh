#!/usr/bin/env bash
# A node's image (the live ISO with its kernel arguments in the boot menus and
# a directory of its files at /pitdata) for a 1 GiB and a 4 GiB live ISO, in one
# run, three ways:
#   repack   what HPE's repack-iso-with-pitdata does: the menus extracted and
#            rewritten, `xorriso -indev live.iso -outdev node.iso -map DIR
#            /pitdata -map ... -boot_image any replay`, then node.iso served by
#            nginx (already running on the output directory); time to first
#            byte = from the start of the repack until curl has node.iso's
#            first byte.
#   serve    `isoboot serve live.iso --http-only --node MAC=ARGS --node-files
#            MAC=DIR`, already running (its start time is reported apart):
#            from the request for /nodes/<mac>.iso to its first byte, the
#            making of the node image included; then a second request (kept).
#   grow     `isoboot iso grow live.iso -o node.iso --append ARGS --files DIR`
#            (to a file, not served).
# Bytes written to disk: write_bytes of /proc/PID/io (counted when a page is
# dirtied, so no sync or cache drop is needed): of the repack's and grow's
# process trees (their children are counted once reaped), and of the serve
# process from before its first request to after its second. Servers and
# xorriso/grow run on CPU 0, curl on CPU 1 (taskset); CPU is utime+stime.
# Each measurement runs NODE_BENCH_REPEAT times (3) and the median is shown;
# each serve run is a fresh process. The downloaded node image is checked:
# `xorriso -find /pitdata` lists DIR's files and it is compared (cmp) with
# the grow output.
#
# The base ISOs are the KIWI test ISO (tests/image/build-kiwi-live.sh) with
# one file of incompressible bytes (AES-CTR of zeros) added as /filler.bin,
# made once and kept in BENCH_DIR (default /var/tmp/isoboot-node-bench),
# which is removed at the end unless BENCH_KEEP=1. Needs ~13 GiB free there
# at the peak (both bases, grow's output and the downloaded image).
# Usage: bench/node_image_bench.sh   env: NODE_BENCH_SIZES ("1 4", GiB),
#   NODE_BENCH_REPEAT (3), NODE_BENCH_FILES_MIB (4, DIR's size), BENCH_DIR,
#   BENCH_KEEP, ISOBOOT_BIN (build/release/src/cli/isoboot),
#   NODE_BENCH_SERVER_CPU (0), NODE_BENCH_CLIENT_CPU (1)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/.." && pwd)
bin=${ISOBOOT_BIN:-$src/build/release/src/cli/isoboot}
read -r -a sizes <<<"${NODE_BENCH_SIZES:-1 4}"
repeat=${NODE_BENCH_REPEAT:-3}
files_mib=${NODE_BENCH_FILES_MIB:-4}
dir=${BENCH_DIR:-/var/tmp/isoboot-node-bench}
scpu=${NODE_BENCH_SERVER_CPU:-0}
ccpu=${NODE_BENCH_CLIENT_CPU:-1}
mac=52:54:00:12:34:56
node_args="hostname=node1 isoboot.bench=node1"
fail() { echo "node_image_bench: $*" >&2; exit 1; }
[[ -x $bin ]] || fail "no $bin (cmake --build build/release --target isoboot)"
for tool in xorriso nginx curl openssl taskset; do
  command -v "$tool" >/dev/null || fail "needs $tool (scripts/deps.sh test bench)"
done

kiwi=$("$src/tests/image/build-kiwi-live.sh" "${KIWI_CACHE:-/var/cache/isoboot/kiwi}")
mkdir -p "$dir"
# Logs, configs and DIR live in memory (tmpfs), so that only the measured
# commands write to disk.
tmp=$(mktemp -d /dev/shm/node-bench.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$tmp"
  rm -rf "$dir/www" "$dir/grow.iso" "$dir/got.iso" "$dir/filler.bin" "$dir"/live-*g.iso.tmp
  if [[ ${BENCH_KEEP:-0} != 1 ]]; then
    rm -f "$dir"/live-*g.iso
    rmdir "$dir" 2>/dev/null || true
  fi
}
trap cleanup EXIT
stop_pid() {  # PID: one the script started
  [[ -n $1 ]] || return 0
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local p rest=()
  for p in "${pids[@]}"; do [[ $p == "$1" ]] || rest+=("$p"); done
  pids=("${rest[@]}")
}

# The node's files: a few small configs and one blob of files_mib MiB.
files=$tmp/pitdata
mkdir -p "$files/configs" "$files/data"
for i in $(seq 1 8); do
  printf 'node: node1\nitem: %d\n' "$i" >"$files/configs/site-$i.yaml"
done
head -c $((files_mib * 1024 * 1024)) /dev/urandom >"$files/data/blob.bin"

# base ISO of GIB GiB of filler (cached in BENCH_DIR).
make_base() {  # GIB -> path
  local gib=$1 out=$dir/live-${1}g.iso
  if [[ ! -s $out ]]; then
    local want=$((gib << 30))
    if [[ $(stat -c %s "$dir/filler.bin" 2>/dev/null || echo 0) -lt $want ]]; then
      openssl enc -aes-128-ctr -nosalt -pass pass:isoboot-bench -pbkdf2 </dev/zero 2>/dev/null |
        head -c "$want" >"$dir/filler.bin"
    fi
    # A file of 4 GiB or more needs ISO level 3 (several extents).
    xorriso -indev "$kiwi" -outdev "$out.tmp" -compliance iso_9660_level=3 \
      -cut_out "$dir/filler.bin" 0 "$want" /filler.bin -boot_image any replay \
      >"$tmp/base-$gib.log" 2>&1 || fail "making the ${gib} GiB ISO: $(tail -n 5 "$tmp/base-$gib.log")"
    mv "$out.tmp" "$out"
    rm -f "$dir/filler.bin"
  fi
  echo "$out"
}

now() { echo "$EPOCHREALTIME"; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.6f", a - b}'; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
io_written() { awk '$1 == "write_bytes:" {print $2}' "/proc/$1/io"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tick=$(getconf CLK_TCK)
secs() { awk -v t="$1" -v h="$tick" 'BEGIN {printf "%.2f", t / h}'; }
# curl on the client CPU: "time_starttransfer time_total size_download"
fetch() {  # URL OUT
  taskset -c "$ccpu" curl -sf -o "$2" -w '%{time_starttransfer} %{time_total} %{size_download}\n' "$1"
}
human() {  # bytes -> "1234 B" / "5.3 MiB" / "4.03 GiB"
  awk -v b="$1" 'BEGIN {
    if (b < 1048576) printf "%d B", b; else if (b < 1073741824) printf "%.1f MiB", b / 1048576;
    else printf "%.2f GiB", b / 1073741824 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0) print "∞ (" a " / 0)"; else printf "%.1f×", a / b}'; }

# nginx serving the repacked images, on the server CPU, started once.
www=$dir/www
mkdir -p "$www" "$tmp/nginx"
chmod 755 "$dir" "$www"  # nginx's worker runs as an unprivileged user
port_nginx=$((20000 + $$ % 10000))
cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path $tmp/nginx; proxy_temp_path $tmp/nginx; fastcgi_temp_path $tmp/nginx;
  uwsgi_temp_path $tmp/nginx; scgi_temp_path $tmp/nginx;
  types { application/x-iso9660-image iso; }
  server { listen 127.0.0.1:$port_nginx; root $www; }
}
EOF
taskset -c "$scpu" nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)
for ((i = 0; i < 100; i++)); do  # until it answers (404 is an answer), 10 s at most
  [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port_nginx/") != 000 ]] && break
  sleep 0.1
done

# Run at the end of a `bash -c` script: prints what the shell and the children
# it has waited for wrote to disk and their CPU ticks (cutime + cstime).
# shellcheck disable=SC2016
tree_acct='read -r -a st </proc/$$/stat
  while read -r k v; do [[ $k == write_bytes: ]] && w=$v; done </proc/$$/io
  echo "$w" $((st[15] + st[16]))'

# One repack of BASE into $www/node.iso; sets R=(seconds ttfb total bytes_written cpu_ticks).
repack_once() {  # BASE
  local base=$1 t0 t1 out
  rm -f "$www/node.iso"
  sync
  t0=$(now)
  # One process tree, so that its children's I/O and CPU are counted in its
  # own /proc entries once they have been waited for.
  # shellcheck disable=SC2016
  out=$(taskset -c "$scpu" bash -c '
    set -e
    base=$1 www=$2 files=$3 args=$4 m=$5
    xorriso -osirrox on -indev "$base" -extract /isolinux/isolinux.cfg "$m/isolinux.orig" \
      -extract /boot/grub2/grub.cfg "$m/grub.orig" >/dev/null 2>&1
    sed "/^[[:space:]]*append /s/\$/ $args/" "$m/isolinux.orig" >"$m/isolinux.cfg"
    sed "/^[[:space:]]*linux /s/\$/ $args/" "$m/grub.orig" >"$m/grub.cfg"
    xorriso -indev "$base" -outdev "$www/node.iso" -map "$files" /pitdata \
      -map "$m/isolinux.cfg" /isolinux/isolinux.cfg -map "$m/grub.cfg" /boot/grub2/grub.cfg \
      -boot_image any replay >"$m/repack.log" 2>&1
    '"$tree_acct" \
    _ "$base" "$www" "$files" "$node_args" "$tmp") || fail "repack: $(tail -n 5 "$tmp/repack.log")"
  t1=$(now)
  read -r ttfb total _ < <(fetch "http://127.0.0.1:$port_nginx/node.iso" /dev/null) ||
    fail "nginx did not serve node.iso"
  local repack_s
  repack_s=$(sub "$t1" "$t0")
  # shellcheck disable=SC2206
  R=("$repack_s" "$(awk -v a="$repack_s" -v b="$ttfb" 'BEGIN {printf "%.6f", a + b}')"
    "$(awk -v a="$repack_s" -v b="$total" 'BEGIN {printf "%.6f", a + b}')" $out)
}

# One grow of BASE into $dir/grow.iso; sets G=(seconds bytes_written cpu_ticks).
grow_once() {  # BASE
  local base=$1 t0 t1 out
  rm -f "$dir/grow.iso"
  sync
  t0=$(now)
  # shellcheck disable=SC2016
  out=$(taskset -c "$scpu" bash -c '
    set -e
    "$1" iso grow "$2" -o "$3" --append "$4" --files "$5" >"$6" 2>&1
    '"$tree_acct" \
    _ "$bin" "$base" "$dir/grow.iso" "$node_args" "$files" "$tmp/grow.log") ||
    fail "iso grow: $(tail -n 5 "$tmp/grow.log")"
  t1=$(now)
  # shellcheck disable=SC2206
  G=("$(sub "$t1" "$t0")" $out)
}

# One serve: started, asked twice; sets S=(start_s ttfb1 total1 ttfb2 total2
# bytes_written cpu1_ticks cpu2_ticks own_bytes size made_s), made_s being
# serve's own time for making the image (its log, in 10 ms). Leaves it running as
# SERVE_PID (with SERVE_URL) for the check.
serve_once() {  # BASE
  local base=$1 log=$tmp/serve.log t0 t1 w0 c0 c1 c2 w2 ttfb1 total1 ttfb2 total2 size own made
  stop_pid "${SERVE_PID:-}"
  rm -f "$log"  # not to find the last run's "ready:"
  sync
  t0=$(now)
  taskset -c "$scpu" "$bin" serve "$base" --http-only --http-address 127.0.0.1 --http-port 0 \
    --node "$mac=$node_args" --node-files "$mac=$files" >"$log" 2>&1 &
  SERVE_PID=$!
  pids+=("$SERVE_PID")
  local i
  for ((i = 0; i < 3000; i++)); do
    grep -q 'ready:' "$log" 2>/dev/null && break
    kill -0 "$SERVE_PID" 2>/dev/null || fail "serve ended: $(tail -n 5 "$log")"
    sleep 0.01
  done
  grep -q 'ready:' "$log" || fail "serve not ready in 30 s"
  t1=$(now)
  SERVE_URL=$(grep -o 'the image is at [^ ]*' "$log" | head -n1 | cut -d' ' -f5)
  SERVE_URL=${SERVE_URL%/*}/nodes/${mac//:/-}.iso
  w0=$(io_written "$SERVE_PID")
  c0=$(cpu_ticks "$SERVE_PID")
  read -r ttfb1 total1 _ < <(fetch "$SERVE_URL" /dev/null) || fail "no $SERVE_URL: $(tail -n 5 "$log")"
  c1=$(cpu_ticks "$SERVE_PID")
  read -r ttfb2 total2 _ < <(fetch "$SERVE_URL" /dev/null) || fail "second $SERVE_URL failed"
  c2=$(cpu_ticks "$SERVE_PID")
  w2=$(io_written "$SERVE_PID")
  # "node 52-54-00-12-34-56: image made in 0.05 s, N bytes (M of them its own over ...)"
  read -r made size own < <(sed -nE 's/.*image made in ([0-9.]+) s, ([0-9]+) bytes \(([0-9]+) of them its own.*/\1 \2 \3/p' "$log" | tail -n1)
  [[ -n ${own:-} ]] || fail "no 'image made' line in serve's log: $(tail -n 5 "$log")"
  S=("$(sub "$t1" "$t0")" "$ttfb1" "$total1" "$ttfb2" "$total2" "$((w2 - w0))"
    "$((c1 - c0))" "$((c2 - c1))" "$own" "$size" "$made")
}

echo "# isoboot node image bench, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# server/xorriso/grow on CPU $scpu, curl on CPU $ccpu; median of $repeat; DIR = $(du -sb "$files" | cut -f1) bytes in $(find "$files" -type f | wc -l) files"
rows=()
for gib in "${sizes[@]}"; do
  base=$(make_base "$gib")
  base_size=$(stat -c %s "$base")
  cat "$base" >/dev/null  # every method reads the base from the page cache
  declare -a r_s=() r_ttfb=() r_total=() r_w=() r_cpu=() g_s=() g_w=() g_cpu=()
  declare -a s_made=() s_start=() s_ttfb1=() s_total1=() s_ttfb2=() s_total2=() s_w=() s_cpu1=() s_cpu2=() s_own=()
  for ((k = 0; k < repeat; k++)); do
    repack_once "$base"
    r_s+=("${R[0]}") r_ttfb+=("${R[1]}") r_total+=("${R[2]}") r_w+=("${R[3]}") r_cpu+=("${R[4]}")
    repacked_size=$(stat -c %s "$www/node.iso")
    rm -f "$www/node.iso"
    grow_once "$base"
    g_s+=("${G[0]}") g_w+=("${G[1]}") g_cpu+=("${G[2]}")
    serve_once "$base"
    s_start+=("${S[0]}") s_ttfb1+=("${S[1]}") s_total1+=("${S[2]}") s_ttfb2+=("${S[3]}")
    s_total2+=("${S[4]}") s_w+=("${S[5]}") s_cpu1+=("${S[6]}") s_cpu2+=("${S[7]}") s_own+=("${S[8]}")
    size=${S[9]} s_made+=("${S[10]}")
    echo "# ${gib} GiB run $((k + 1)): repack ${r_ttfb[k]} s, serve first byte ${s_ttfb1[k]} s (made in ${s_made[k]} s), grow ${g_s[k]} s" >&2
  done
  # The check: the node image as served reads right and is grow's.
  read -r _ _ got_size < <(fetch "$SERVE_URL" "$dir/got.iso") || fail "downloading $SERVE_URL for the check failed"
  listed=$(xorriso -indev "$dir/got.iso" -find /pitdata -type f 2>"$tmp/find.err" | sort | tr '\n' ' ')
  # Warnings xorriso gives while reading it (shown, not judged).
  xwarn=$(grep -E 'WARNING|SORRY|FAILURE' "$tmp/find.err" | tr '\n' ' ' || true)
  want=$(cd "$files" && find . -type f | sed "s|^\.|'/pitdata|; s|\$|'|" | sort | tr '\n' ' ')
  [[ $listed == "$want" ]] || fail "${gib} GiB: /pitdata in the served image: $listed, want $want"
  if cmp -s "$dir/got.iso" "$dir/grow.iso"; then
    same="identical to iso grow's ($got_size bytes)"
  else
    # Say how: how many bytes, and whether xorriso sees the same tree (names,
    # modes, sizes, times, xattrs) with each file's data at the same blocks.
    nbytes=$({ cmp -l "$dir/got.iso" "$dir/grow.iso" 2>/dev/null || true; } | wc -l)
    view() { xorriso -indev "$1" -find / -exec lsdl -- -find / -exec get_any_xattr -- \
      -find / -type f -exec report_lba -- 2>/dev/null | grep -v '^xorriso\|^Drive\|^Media\|^Boot\|^Volume'; }
    if diff -q <(view "$dir/got.iso") <(view "$dir/grow.iso") >/dev/null; then
      how="the same tree, attributes and file data blocks to xorriso"
    else
      how="xorriso sees different trees: $({ diff <(view "$dir/got.iso") <(view "$dir/grow.iso") || true; } | head -n 4 | tr '\n' ' ')"
    fi
    same="DIFFERS from iso grow's in $nbytes bytes (first: $({ cmp "$dir/got.iso" "$dir/grow.iso" 2>&1 || true; } | head -n1 | sed 's/.*differ: //')), sizes $got_size and $(stat -c %s "$dir/grow.iso"); $how"
  fi
  rm -f "$dir/got.iso" "$dir/grow.iso"
  stop_pid "$SERVE_PID"
  SERVE_PID=
  echo "# ${gib} GiB: base $base_size bytes; repacked node.iso $repacked_size bytes; served node image $size bytes, $same; /pitdata lists DIR's files${xwarn:+ (xorriso: $xwarn)}"

  mr_ttfb=$(median "${r_ttfb[@]}") mr_w=$(median "${r_w[@]}")
  ms_ttfb=$(median "${s_ttfb1[@]}") ms_w=$(median "${s_w[@]}")
  mg_s=$(median "${g_s[@]}") mg_w=$(median "${g_w[@]}")
  label="$(human "$base_size")"
  rows+=("| $label | repack: xorriso, then nginx | $(printf %.3f "$mr_ttfb") (repack $(printf %.3f "$(median "${r_s[@]}")")) | $(printf %.2f "$(median "${r_total[@]}")") | $(human "$mr_w") | $(secs "$(median "${r_cpu[@]}")") (xorriso) | – |")
  rows+=("| $label | isoboot serve, first request | $(printf %.3f "$ms_ttfb") (made in $(median "${s_made[@]}")) | $(printf %.2f "$(median "${s_total1[@]}")") | $(human "$ms_w") | $(secs "$(median "${s_cpu1[@]}")") (make + send) | $(human "$(median "${s_own[@]}")") |")
  rows+=("| $label | isoboot serve, second request (kept) | $(printf %.3f "$(median "${s_ttfb2[@]}")") | $(printf %.2f "$(median "${s_total2[@]}")") | (in the above) | $(secs "$(median "${s_cpu2[@]}")") (send) | same |")
  rows+=("| $label | isoboot iso grow (a file, not served) | $(printf %.3f "$mg_s") (written) | – | $(human "$mg_w") | $(secs "$(median "${g_cpu[@]}")") | – |")
  rows+=("| $label | **repack ÷ serve** | **$(ratio "$mr_ttfb" "$ms_ttfb")** | | **$(ratio "$mr_w" "$ms_w")** | | |")
  rows+=("| $label | repack ÷ iso grow | $(ratio "$mr_ttfb" "$mg_s") | | $(ratio "$mr_w" "$mg_w") | | |")
  echo "# ${gib} GiB: isoboot serve start (launch to ready): median $(printf %.3f "$(median "${s_start[@]}")") s ($(printf '%s ' "${s_start[@]}")); serve wrote $(printf '%s ' "${s_w[@]}")bytes"
  unset s_made r_s r_ttfb r_total r_w r_cpu g_s g_w g_cpu s_start s_ttfb1 s_total1 s_ttfb2 s_total2 s_w s_cpu1 s_cpu2 s_own
done
echo
echo "| ISO | method | time to first byte s | whole download s | bytes written to disk | CPU s | node image's own bytes in memory |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
printf '%s\n' "${rows[@]}"
echo
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
