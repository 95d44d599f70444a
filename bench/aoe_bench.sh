#!/usr/bin/env bash
# AoE target benchmark: the same page-cached file exported by Debian's vblade
# and by `isoboot aoe export`, one at a time, on one veth pair in a private
# network namespace, read by the same initiator: by default aoe-load, an
# initiator written from the AoE spec that shares no code with isoboot
# (single-threaded, batched, all initiator MACs on one socket, so every
# request arrives on one CPU, as from a NIC whose RSS cannot hash AoE
# frames); `isoboot aoe bench` only if aoe-load is not there (it flatters
# isoboot). Each server runs confined to AOE_BENCH_SERVER_CPUS (taskset,
# default CPU 0); the initiator runs on AOE_BENCH_CLIENT_CPUS (default: left
# free). MTU 1500 and 9000; 1 initiator with window 1 and 8, 8 initiators
# with window 8. Also a ceiling run: bench/aoe_ceiling, a responder that
# answers from memory with the least possible work. Prints MiB/s,
# requests/s, retransmits and server CPU time per request (utime+stime from
# /proc/PID/stat, the receive path run in its system calls included), the
# median of AOE_BENCH_REPEAT runs, then the ratios isoboot/vblade. Runs as
# root, ~3 minutes. Not part of CI.
#
# usage: bench/aoe_bench.sh [BUILD_DIR]   (default: build/release)
#   env: AOE_BENCH_MIB (file size, default 512), AOE_BENCH_SECONDS (per run, default 3),
#        AOE_BENCH_REPEAT (runs per cell, median kept, default 3),
#        AOE_LOAD (an aoe-load binary) or AOE_LOAD_SRC (its source, default
#        /work/shared/tools/aoe-load/aoe-load.c), AOE_BENCH_SERVER_CPUS,
#        AOE_BENCH_CLIENT_CPUS
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build/release}
bin=${ISOBOOT_BIN:-$build/src/cli/isoboot}
ceiling=${AOE_CEILING:-$build/bench/aoe_ceiling}
mib=${AOE_BENCH_MIB:-512}
secs=${AOE_BENCH_SECONDS:-3}
repeat=${AOE_BENCH_REPEAT:-3}
server_cpus=${AOE_BENCH_SERVER_CPUS:-0}
client_cpus=${AOE_BENCH_CLIENT_CPUS:-}
[[ -x $bin && -x $ceiling ]] || { echo "build isoboot and aoe_ceiling in $build first" >&2; exit 2; }
command -v vblade >/dev/null || { echo "needs vblade (scripts/deps.sh test)" >&2; exit 2; }

# shellcheck source=bench/lib.sh
source "$src/bench/lib.sh"
bench_setup "isoboot-aoebench-$$"
ns=$BENCH_NS dir=$BENCH_DIR
ip -n "$ns" link add name aoet type veth peer name aoei
ip -n "$ns" link set aoet up
ip -n "$ns" link set aoei up
bench_file "$dir/image" "$mib"
aoe_load=${AOE_LOAD:-}
aoe_load_src=${AOE_LOAD_SRC:-/work/shared/tools/aoe-load/aoe-load.c}
if [[ -z $aoe_load && -f $aoe_load_src ]] && cc -O2 -o "$dir/aoe-load" "$aoe_load_src"; then
  aoe_load=$dir/aoe-load
fi
if [[ -n $aoe_load ]]; then
  initiator="aoe-load (independent)"
else
  initiator="isoboot aoe bench (isoboot's own initiator: flatters isoboot)"
  echo "no aoe-load: measuring with $initiator" >&2
fi
client_prefix=()
[[ -n $client_cpus ]] && client_prefix=(taskset -c "$client_cpus")
sectors=$((mib * 2048))
hz=$(getconf CLK_TCK)

start_server() {  # name
  case $1 in
    vblade) ip netns exec "$ns" taskset -c "$server_cpus" vblade -r 0 1 aoet "$dir/image" \
      >/dev/null 2>&1 & ;;
    isoboot) ip netns exec "$ns" taskset -c "$server_cpus" "$bin" --log-level warn aoe export \
      0 1 aoet "$dir/image" --announce 0 & ;;
    ceiling) ip netns exec "$ns" taskset -c "$server_cpus" "$ceiling" aoet "$sectors" & ;;
  esac
  BENCH_PID=$!
  for _ in $(seq 50); do
    ip netns exec "$ns" "$bin" aoe discover -i aoei --wait 200 2>/dev/null | grep -q '^e0.1' &&
      return 0
  done
  echo "$1 did not answer" >&2
  exit 1
}

# field NAME: the value of NAME= in aoe-load's RESULT line ($out).
field() { tr ' ' '\n' <<<"$out" | sed -n "s/^$1=//p"; }
results="$dir/results"
for mtu in 1500 9000; do
  ip -n "$ns" link set aoet mtu "$mtu"
  ip -n "$ns" link set aoei mtu "$mtu"
  for server in vblade isoboot ceiling; do
    start_server "$server"
    for cw in "1 1" "1 8" "8 8"; do
      read -r clients window <<<"$cw"
      runs=()
      for _ in $(seq "$repeat"); do
        before=$(bench_cpu_ticks "$BENCH_PID")
        if [[ -n $aoe_load ]]; then
          # Each initiator reads the whole file; -T ends a run that takes
          # longer (exit 3, "incomplete", with the figures so far).
          out=$(ip netns exec "$ns" "${client_prefix[@]}" "$aoe_load" -i aoei -c "$clients" \
            -w "$window" -T "$secs" -q) || [[ $? == 3 ]]
          after=$(bench_cpu_ticks "$BENCH_PID")
          mib_s=$(field MiBps) frames_s=$(field reqps) retransmits=$(field retrans)
          requests=$(awk -v r="$frames_s" -v s="$(field secs)" 'BEGIN { printf "%d", r * s }')
        else
          out=$(ip netns exec "$ns" "${client_prefix[@]}" "$bin" aoe bench e0.1 -i aoei \
            --clients "$clients" --window "$window" --seconds "$secs")
          after=$(bench_cpu_ticks "$BENCH_PID")
          eval "$(tr ' ' '\n' <<<"$out" | grep -E '^(mib_s|frames_s|retransmits|requests)=')"
        fi
        cpu_us=$(awk -v t=$((after - before)) -v hz="$hz" -v r="$requests" \
          'BEGIN { printf "%.2f", r ? t / hz * 1e6 / r : 0 }')
        runs+=("$mtu $clients $window $server $mib_s $frames_s $retransmits $cpu_us")
      done
      # The median run by throughput.
      best=$(printf '%s\n' "${runs[@]}" | sort -n -k5,5 | sed -n "$(((repeat + 1) / 2))p")
      echo "$best" >>"$results"
    done
    bench_stop_server
  done
done

echo "AoE bench: ${mib} MiB page-cached file, median of $repeat runs of ${secs} s, $(nproc) CPUs, veth in a netns"
echo "initiator: $initiator on CPUs ${client_cpus:-any}; servers on CPUs $server_cpus"
printf '%-5s %-7s %-6s %-8s %9s %11s %8s %10s\n' MTU clients window server MiB/s requests/s retrans "CPU us/req"
while read -r mtu c w server mibs fps rt cpu; do
  printf '%-5s %-7s %-6s %-8s %9s %11s %8s %10s\n' "$mtu" "$c" "$w" "$server" "$mibs" "$fps" "$rt" "$cpu"
done <"$results"
echo
echo "ratios isoboot/vblade (throughput: higher is better; CPU per request: lower is better)"
printf '%-5s %-7s %-6s %10s %10s %16s\n' MTU clients window MiB/s CPU/req "ceiling/vblade"
awk '
  { key = $1 " " $2 " " $3; mib[key, $4] = $5; cpu[key, $4] = $8; keys[key] = 1; order[NR] = key }
  END {
    for (i = 1; i <= NR; ++i) {
      k = order[i]; if (seen[k]++) continue
      split(k, f, " ")
      printf "%-5s %-7s %-6s %10.2f %10.2f %16.2f\n", f[1], f[2], f[3],
        mib[k, "isoboot"] / mib[k, "vblade"],
        (cpu[k, "vblade"] > 0 ? cpu[k, "isoboot"] / cpu[k, "vblade"] : 0),
        mib[k, "ceiling"] / mib[k, "vblade"]
    }
  }' "$results"
