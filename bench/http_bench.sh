#!/usr/bin/env bash
# isoboot's HTTP server vs nginx serving the same ISO on loopback, measured
# with wrk: 1 and 64 clients, whole-file GETs and random 1 MiB Range GETs.
# Both use sendfile from a warm page cache and the same number of worker
# threads (THREADS, default 2); prints MiB/s and requests/s of each and the
# ratio isoboot/nginx.
# Usage: bench/http_bench.sh [BUILD_DIR]   env: ISO_MB (256), SECONDS_EACH (10), THREADS (2)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
iso_mb=${ISO_MB:-256}
secs=${SECONDS_EACH:-10}
threads=${THREADS:-2}
scripts/deps.sh test bench
if [[ ! -x $build/bench/http_bench_server ]]; then
  scripts/deps.sh build
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" --target http_bench_server >/dev/null
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/http-bench.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

chmod 755 "$tmp"  # nginx workers run as an unprivileged user
mkdir -p "$tmp/tree/LiveOS" "$tmp/www" "$tmp/nginx"
head -c $((iso_mb * 1024 * 1024)) /dev/urandom >"$tmp/tree/LiveOS/squashfs.img"
xorriso -as mkisofs -quiet -R -o "$tmp/www/live.iso" "$tmp/tree" 2>/dev/null
rm -rf "$tmp/tree"
cat "$tmp/www/live.iso" >/dev/null  # warm the page cache
size=$(stat -c %s "$tmp/www/live.iso")

port_nginx=$((20000 + $$ % 10000))
port_isoboot=$((port_nginx + 1))
cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes $threads;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path $tmp/nginx; proxy_temp_path $tmp/nginx; fastcgi_temp_path $tmp/nginx;
  uwsgi_temp_path $tmp/nginx; scgi_temp_path $tmp/nginx;
  types { application/x-iso9660-image iso; }
  server { listen 127.0.0.1:$port_nginx; root $tmp/www; }
}
EOF
nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)
"$build/bench/http_bench_server" "$tmp/www/live.iso" "$port_isoboot" "$threads" &
pids+=($!)
for port in $port_nginx $port_isoboot; do  # wait (bounded) until both answer
  for _ in $(seq 100); do
    curl -sf -o /dev/null -r 0-0 "http://127.0.0.1:$port/live.iso" && break
    sleep 0.1
  done
done
# Same bytes from both.
cmp <(curl -s -r 1000000-3000000 "http://127.0.0.1:$port_nginx/live.iso") \
  <(curl -s -r 1000000-3000000 "http://127.0.0.1:$port_isoboot/live.iso")

cat >"$tmp/ranges.lua" <<EOF
math.randomseed(42)
local mib = 1048576
local chunks = math.floor($size / mib)
request = function()
  local off = math.random(0, chunks - 1) * mib
  return wrk.format("GET", "/live.iso", {["Range"] = "bytes=" .. off .. "-" .. (off + mib - 1)})
end
EOF

# wrk ... -> "MiB/s req/s"
measure() {
  local port=$1 clients=$2 script=$3
  local wthreads=$((clients < 2 ? 1 : 2)) out
  out=$(wrk -t "$wthreads" -c "$clients" -d "${secs}s" --timeout 60s ${script:+-s "$script"} \
    "http://127.0.0.1:$port/live.iso")
  local rps bytes
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  bytes=$(awk '/^Transfer\/sec:/ {v=$2; u=substr(v, length(v)-1); n=v+0;
    if (u=="GB") n*=1024; else if (u=="KB") n/=1024; else if (u!="MB") n/=1048576; print n}' <<<"$out")
  if grep -q 'Non-2xx\|Socket errors' <<<"$out"; then echo "wrk reported errors: $out" >&2; fi
  echo "$bytes $rps"
}

printf 'ISO %d MiB on loopback, %d worker threads each, %ss per run\n' "$((size >> 20))" "$threads" "$secs"
printf '%-24s %14s %14s %10s %10s %8s\n' case "nginx MiB/s" "isoboot MiB/s" "nginx r/s" "isoboot r/s" ratio
for clients in 1 64; do
  for kind in full range; do
    script=""
    [[ $kind == range ]] && script=$tmp/ranges.lua
    read -r n_mib n_rps < <(measure "$port_nginx" "$clients" "$script")
    read -r i_mib i_rps < <(measure "$port_isoboot" "$clients" "$script")
    label=$([[ $kind == full ]] && echo "whole ISO" || echo "1 MiB ranges")
    printf '%-24s %14.0f %14.0f %10.1f %10.1f %8.2f\n' "$label, $clients client(s)" "$n_mib" \
      "$i_mib" "$n_rps" "$i_rps" "$(echo "$i_mib / $n_mib" | bc -l)"
  done
done
