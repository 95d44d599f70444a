#!/usr/bin/env bash
# NBD server benchmark: the same page-cached file exported read-only by
# `isoboot nbd export`, `nbdkit file` and `qemu-nbd --read-only`, one at a
# time, in a private network namespace (loopback), read by nbdcopy with 1
# and 4 connections and by 8 concurrent nbdcopy processes. The server runs
# on CPU 0 and the clients on CPU 1 (taskset). Prints MiB/s and server CPU
# ms per MiB (utime+stime from /proc/PID/stat) and how busy each CPU was
# (/proc/stat), then the ratios isoboot/nbdkit and isoboot/qemu-nbd. Runs as
# root. Not part of CI.
#
# usage: bench/nbd_bench.sh [BUILD_DIR]   (default: build/release)
#   env: NBD_BENCH_MIB (file size, default 1024), NBD_BENCH_REPEAT (runs per cell, best kept,
#        default 2), NBD_BENCH_CLIENT_CPUS (the clients' taskset list, default 1; "0,1" lets
#        them use what the server leaves of CPU 0 too, so a leaner server shows as speed)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build/release}
bin=${ISOBOOT_BIN:-$build/src/cli/isoboot}
mib=${NBD_BENCH_MIB:-1024}
repeat=${NBD_BENCH_REPEAT:-2}
client_cpus=${NBD_BENCH_CLIENT_CPUS:-1}
[[ -x $bin ]] || { echo "build isoboot in $build first" >&2; exit 2; }
for t in nbdkit qemu-nbd nbdcopy taskset; do
  command -v $t >/dev/null || { echo "needs $t (scripts/deps.sh bench)" >&2; exit 2; }
done
# shellcheck source=bench/lib.sh
source "$src/bench/lib.sh"
bench_setup "isoboot-nbdbench-$$"
ns=$BENCH_NS dir=$BENCH_DIR
ip -n "$ns" link set lo up
bench_file "$dir/image" "$mib"
hz=$(getconf CLK_TCK)
url=nbd://127.0.0.1:10809/image

start_server() {  # name; `ip netns exec` and taskset exec, so $! is the server
  case $1 in
    isoboot) ip netns exec "$ns" taskset -c 0 "$bin" --log-level warn nbd export "$dir/image" & ;;
    nbdkit) ip netns exec "$ns" taskset -c 0 nbdkit -f -r -e image file "$dir/image" & ;;
    qemu-nbd) ip netns exec "$ns" taskset -c 0 qemu-nbd -r -x image -f raw -e 16 -t \
      "$dir/image" & ;;
  esac
  BENCH_PID=$!
  for _ in $(seq 100); do
    ip netns exec "$ns" nbdinfo --size "$url" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "$1 did not start" >&2
  exit 1
}
run_clients() {  # clients connections
  local i cpids=()
  for i in $(seq "$1"); do
    ip netns exec "$ns" taskset -c "$client_cpus" nbdcopy --connections="$2" "$url" null: &
    cpids+=($!)
  done
  for i in "${cpids[@]}"; do wait "$i"; done
}

results=$dir/results
echo "file ${mib} MiB page-cached; server on CPU 0, clients on CPU $client_cpus (taskset); best of $repeat"
if [[ $client_cpus == 1 ]]; then
  echo "(CPU1 near 100% busy: the clients, not the server, set the pace of that cell)"
fi
for server in isoboot nbdkit qemu-nbd; do
  start_server "$server"
  for cc in "1 1" "1 4" "8 1"; do
    read -r clients conns <<<"$cc"
    best_rate=0 best_cpu=0 best_busy0=0 best_busy1=0
    for _ in $(seq "$repeat"); do
      before=$(bench_cpu_ticks "$BENCH_PID")
      busy0=$(bench_cpu_busy_ticks 0) busy1=$(bench_cpu_busy_ticks 1)
      t0=$(date +%s.%N)
      run_clients "$clients" "$conns"
      t1=$(date +%s.%N)
      after=$(bench_cpu_ticks "$BENCH_PID")
      busy0=$(($(bench_cpu_busy_ticks 0) - busy0)) busy1=$(($(bench_cpu_busy_ticks 1) - busy1))
      total=$((mib * clients))
      rate=$(echo "$total / ($t1 - $t0)" | bc -l)
      cpu=$(echo "($after - $before) * 1000 / $hz / $total" | bc -l)
      if (($(echo "$rate > $best_rate" | bc -l))); then
        best_rate=$rate best_cpu=$cpu
        # Ticks are sampled: a saturated CPU can read a little over 100%.
        best_busy0=$(awk -v b="$busy0" -v hz="$hz" -v t="$(echo "$t1 - $t0" | bc -l)" 'BEGIN {p = 100 * b / hz / t; print (p > 100 ? 100 : p)}')
        best_busy1=$(awk -v b="$busy1" -v hz="$hz" -v t="$(echo "$t1 - $t0" | bc -l)" 'BEGIN {p = 100 * b / hz / t; print (p > 100 ? 100 : p)}')
      fi
    done
    printf "%-9s clients=%d connections=%d  %8.1f MiB/s  %6.3f CPU ms/MiB  CPU0 %3.0f%% CPU1 %3.0f%% busy\n" \
      "$server" "$clients" "$conns" "$best_rate" "$best_cpu" "$best_busy0" "$best_busy1"
    echo "$server $clients $conns $best_rate $best_cpu" >>"$results"
  done
  bench_stop_server
done
echo "ratios (throughput, CPU per MiB; target >= 1.2x and <= 0.7x nbdkit):"
for cc in "1 1" "1 4" "8 1"; do
  read -r clients conns <<<"$cc"
  read -r _ _ _ ir ic < <(grep "^isoboot $clients $conns " "$results")
  for other in nbdkit qemu-nbd; do
    read -r _ _ _ orate ocpu < <(grep "^$other $clients $conns " "$results")
    printf "  clients=%d connections=%d isoboot/%-8s throughput %.2fx  cpu/MiB %s\n" "$clients" \
      "$conns" "$other" "$(echo "$ir / $orate" | bc -l)" \
      "$(if (($(echo "$ocpu > 0" | bc -l))); then printf "%.2fx" "$(echo "$ic / $ocpu" | bc -l)"; else echo "n/a"; fi)"
  done
done
