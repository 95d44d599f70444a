# shellcheck shell=bash
# What the server benchmarks share: a private network namespace, a scratch
# directory and the one server running now, all removed on exit; CPU
# accounting from /proc. Sourced by bench/nbd_bench.sh and bench/aoe_bench.sh.

# Creates namespace NS (BENCH_NS) and a scratch directory (BENCH_DIR), and
# sets the EXIT trap that stops BENCH_PID and removes both.
bench_setup() {  # NS
  BENCH_NS=$1
  BENCH_DIR=$(mktemp -d)
  BENCH_PID=
  trap bench_cleanup EXIT
  ip netns add "$BENCH_NS"
}
bench_cleanup() {
  bench_stop_server
  ip netns del "$BENCH_NS" 2>/dev/null || true
  rm -rf "$BENCH_DIR"
}
bench_stop_server() {  # the server in BENCH_PID, started by the script
  [[ -n ${BENCH_PID:-} ]] || return 0
  kill "$BENCH_PID" 2>/dev/null || true
  wait "$BENCH_PID" 2>/dev/null || true
  BENCH_PID=
}

# Writes MIB MiB of random bytes to FILE and reads them once, so every
# server reads them from the page cache alike.
bench_file() {  # FILE MIB
  head -c $(($2 * 1024 * 1024)) /dev/urandom >"$1"
  cat "$1" >/dev/null
}

# Clock ticks (getconf CLK_TCK) PID has run, user + system.
bench_cpu_ticks() {  # PID
  awk '{print $14 + $15}' "/proc/$1/stat"
}
# Clock ticks CPU N has been busy since boot (all but idle and iowait).
bench_cpu_busy_ticks() {  # N
  awk -v cpu="cpu$1" '$1 == cpu {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat
}
