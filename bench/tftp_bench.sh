#!/usr/bin/env bash
# TFTP server benchmark: `isoboot serve` (the initrd straight from an ISO's
# extents) against tftpd-hpa's in.tftpd (the same bytes from a directory), both
# running at once on two addresses of one veth (MTU 1500) between two network
# namespaces this script creates and removes; every case runs against one
# server, then the other, so a busy shared machine hurts both alike.
#   1 client, as firmware asks: pxelinux (blksize 1408 + tsize), iPXE (blksize
#     1432 + tsize), plain RFC 1350 (512-byte blocks, no options), blksize
#     1468 and 65464: curl; windowsize 8 and 16 + blksize 1432 (RFC 7440,
#     isoboot only: tftpd-hpa has no windowsize): atftp. Best of REPEAT runs.
#   CLIENTS curl downloads at once (a rack booting together): total MiB/s and
#     the slowest client's time.
#   1 % loss each way (tc netem, or nftables numgen when sch_netem is missing),
#     a smaller file, curl asking for the RFC 2349 timeout 1 s from both servers.
# Every download is checked with sha256. Server CPU is the time of each
# server's own cgroup (tftpd-hpa forks a child per transfer, which
# /proc/PID/stat would not count), per MiB sent. Runs as root, ~5 minutes.
# Not part of CI.
#
# tftpd-hpa: Debian's package starts a system tftpd-hpa service on install
# unless policy-rc.d forbids it; this script never uses or touches that
# service: it starts its own in.tftpd --foreground inside its namespace.
#
# usage: bench/tftp_bench.sh [BUILD_DIR]   (default: build/release)
#   env: TFTP_BENCH_MIB (initrd size, default 64), TFTP_BENCH_CLIENTS (concurrent
#        cases, default "32"; e.g. "32 128"), TFTP_BENCH_REPEAT (single-client runs
#        per cell, best kept, default 2), TFTP_BENCH_LOSS_MIB (loss case file, default 1;
#        0 skips the case), TFTP_BENCH_LOSS_RUNS (its runs, mean kept, default 3),
#        TFTP_BENCH_PIN (default 0; 1: servers on CPU 0, clients on the other CPUs),
#        TFTP_BENCH_CASES (default "single concurrent loss"; e.g. "concurrent"),
#        TFTP_BENCH_ROUNDS (runs of each concurrent case, alternating the servers; the
#        mean total is kept and the range printed; default 1)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build/release}
bin=${ISOBOOT_BIN:-$build/src/cli/isoboot}
mib=${TFTP_BENCH_MIB:-64}
many=${TFTP_BENCH_CLIENTS:-32}
repeat=${TFTP_BENCH_REPEAT:-2}
loss_mib=${TFTP_BENCH_LOSS_MIB:-1}
loss_runs=${TFTP_BENCH_LOSS_RUNS:-3}
cases=" ${TFTP_BENCH_CASES:-single concurrent loss} "
rounds=${TFTP_BENCH_ROUNDS:-1}
[[ $(id -u) == 0 ]] || { echo "run as root (network namespaces, cgroups)" >&2; exit 2; }
"$src/scripts/deps.sh" test bench
if [[ ! -x $bin ]]; then
  "$src/scripts/deps.sh" build
  cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" --target isoboot >/dev/null
fi
id tftp >/dev/null 2>&1 || { echo "no user tftp (the tftpd-hpa package creates it)" >&2; exit 2; }

srv="isoboot-tftpb-s-$$"
cli="isoboot-tftpb-c-$$"
dir=$(mktemp -d "${TMPDIR:-/tmp}/tftp-bench.XXXXXX")
iso_ip=10.78.0.1  # isoboot
hpa_ip=10.78.0.3  # tftpd-hpa
declare -A pid=() cg=()
cleanup() {
  local p
  for s in isoboot tftpd; do
    [[ -n ${pid[$s]:-} ]] && kill "${pid[$s]}" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  ip netns del "$srv" 2>/dev/null || true
  ip netns del "$cli" 2>/dev/null || true
  for s in isoboot tftpd; do
    [[ -n ${cg[$s]:-} && -d ${cg[$s]} ]] || continue
    for p in $(cat "${cg[$s]}/cgroup.procs" 2>/dev/null); do  # tftpd-hpa's transfer children
      kill "$p" 2>/dev/null || true
    done
    for _ in $(seq 50); do rmdir "${cg[$s]}" 2>/dev/null && break; sleep 0.1; done
  done
  rm -rf "$dir"
}
trap cleanup EXIT

# --- the file: an initrd-like blob inside a KIWI-layout ISO, and the same bytes in a directory
chmod 755 "$dir"  # in.tftpd reads as user tftp
tree="$dir/tree"
put() {  # path MiB|bytes
  mkdir -p "$tree/$(dirname "$1")"
  head -c "$2" /dev/urandom >"$tree/$1"
}
initrd=boot/x86_64/loader/initrd
kernel=boot/x86_64/loader/linux  # the loss case's file
put "$initrd" $((mib << 20))
put "$kernel" $((loss_mib > 0 ? loss_mib << 20 : 300000))
put boot/x86_64/loader/isolinux.bin 4096
put boot/x86_64/loader/eltorito.img 8192
put boot/x86_64/efi 65536
put EFI/BOOT/bootx64.efi 20000
put LiveOS/squashfs.img 1000000
echo "TFTP bench image" >"$tree/config.isoclient"
xorriso -as mkisofs -quiet -R -J -V TFTP_BENCH -b boot/x86_64/loader/eltorito.img -no-emul-boot \
  -boot-load-size 4 -boot-info-table -eltorito-alt-boot -e boot/x86_64/efi -no-emul-boot \
  -o "$dir/live.iso" "$tree" 2>/dev/null
mkdir -p "$dir/root/$(dirname "$initrd")"
cp "$tree/$initrd" "$tree/$kernel" "$dir/root/$(dirname "$initrd")/"
chmod -R a+rX "$dir/root"
declare -A want=(
  [$initrd]=$(sha256sum <"$tree/$initrd" | cut -d' ' -f1)
  [$kernel]=$(sha256sum <"$tree/$kernel" | cut -d' ' -f1)
)
rm -rf "$tree"
cat "$dir/live.iso" "$dir/root/$initrd" "$dir/root/$kernel" >/dev/null  # page-cached alike

# --- network: server namespace (both servers) and client namespace
ip netns add "$srv"
ip netns add "$cli"
ip link add tftpb-s netns "$srv" type veth peer name tftpb-c netns "$cli"
ip -n "$srv" addr add "$iso_ip/24" dev tftpb-s
ip -n "$srv" addr add "$hpa_ip/24" dev tftpb-s
ip -n "$cli" addr add 10.78.0.2/24 dev tftpb-c
for ns in "$srv" "$cli"; do ip -n "$ns" link set lo up; done
ip -n "$srv" link set tftpb-s up
ip -n "$cli" link set tftpb-c up

# --- CPU accounting: one cgroup per server (v2, or v1 cpuacct), else /proc/PID/stat
if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
  cg_kind=v2 cg_base=/sys/fs/cgroup
elif [[ -f /sys/fs/cgroup/cpuacct/cpuacct.usage ]]; then
  cg_kind=v1 cg_base=/sys/fs/cgroup/cpuacct
else
  cg_kind=proc
  echo "note: no cgroup cpu accounting; CPU from /proc/PID/stat misses tftpd-hpa's children" >&2
fi
cpu_ns() {  # server
  case $cg_kind in
    v2) awk '/^usage_usec/ {printf "%.0f\n", $2 * 1000}' "${cg[$1]}/cpu.stat" ;;
    v1) cat "${cg[$1]}/cpuacct.usage" ;;
    proc) awk -v hz="$(getconf CLK_TCK)" '{printf "%.0f\n", ($14 + $15) / hz * 1e9}' \
      "/proc/${pid[$1]}/stat" ;;
  esac
}
# Servers on CPU 0, clients on the others: the clients run on this machine
# too, and on shared CPUs the scheduler gives isoboot's event loops (one per
# CPU) one share each among hundreds of curl processes (and whatever else
# runs here), and tftpd-hpa one share per forked transfer (a real rack's
# clients bring their own CPUs). Pinned, the 32 curls share one CPU on a
# 2-CPU machine and may become the limit.
on_srv=(ip netns exec "$srv") on_cli=(ip netns exec "$cli") pinned="not pinned"
if [[ ${TFTP_BENCH_PIN:-0} == 1 ]] && (($(nproc) >= 2)); then
  on_srv=(taskset -c 0 "${on_srv[@]}") on_cli=(taskset -c "1-$(($(nproc) - 1))" "${on_cli[@]}")
  pinned="servers on CPU 0, clients on CPUs 1-$(($(nproc) - 1))"
fi
start() {  # server command...
  local s=$1
  shift
  if [[ $cg_kind == proc ]]; then
    "${on_srv[@]}" "$@" &
  else
    cg[$s]="$cg_base/isoboot-tftpbench-$$-$s"
    mkdir "${cg[$s]}"
    bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "${cg[$s]}" "${on_srv[@]}" "$@" &
  fi
  pid[$s]=$!
}

start isoboot "$bin" serve "$dir/live.iso" --interface tftpb-s --server-ip "$iso_ip" --dhcp off \
  --tftp-address "$iso_ip" --http-address "$iso_ip" --announce 0 --ipv6-ra off \
  >"$dir/isoboot.log" 2>&1
start tftpd in.tftpd --foreground --address "$hpa_ip:69" --secure --user tftp "$dir/root" \
  >"$dir/tftpd.log" 2>&1
for _ in $(seq 100); do
  grep -q "ready:" "$dir/isoboot.log" &&
    ip netns exec "$srv" ss -uln | grep -q "$hpa_ip:69" && break
  sleep 0.1
done
grep -q "ready:" "$dir/isoboot.log" || { cat "$dir/isoboot.log" >&2; echo "isoboot did not start" >&2; exit 1; }
ip netns exec "$srv" ss -uln | grep -q "$hpa_ip:69" || { cat "$dir/tftpd.log" >&2; echo "in.tftpd did not start" >&2; exit 1; }

# Background CPU of each idle server (isoboot serve also runs HTTP, AoE and
# its image watch), in ms per second; part of every CPU figure below.
declare -A idle=()
for s in isoboot tftpd; do
  c0=$(cpu_ns "$s")
  sleep 3
  idle[$s]=$(awk -v n=$(($(cpu_ns "$s") - c0)) 'BEGIN { printf "%.2f", n / 1e6 / 3 }')
done

ip_of() { [[ $1 == isoboot ]] && echo "$iso_ip" || echo "$hpa_ip"; }
now() { date +%s%N; }

# One download in the client namespace; checks the bytes. Prints seconds.
fetch() {  # server client-kind path out
  local ip t0 t1
  ip=$(ip_of "$1")
  t0=$(now)
  case $2 in
    # bN: curl asking for blksize N (and tsize); windowN: atftp, blksize 1432, windowsize N.
    b[0-9]*) "${on_cli[@]}" timeout 300 curl -sS --tftp-blksize "${2#b}" -o "$4" "tftp://$ip/$3" ;;
    plain) "${on_cli[@]}" timeout 300 curl -sS --tftp-no-options -o "$4" "tftp://$ip/$3" ;;
    window[0-9]*) "${on_cli[@]}" timeout 300 atftp --option "blksize 1432" --option "windowsize ${2#window}" \
      -g -r "$3" -l "$4" "$ip" >/dev/null 2>"$dir/atftp.log" ;;
    # --connect-timeout 3 makes curl ask for "timeout 1" and re-ACK after 1 s
    # itself (by default both wait 6 s). atftp aborts on a repeated OACK.
    lossy) "${on_cli[@]}" timeout 300 curl -sS --connect-timeout 3 --tftp-blksize 1432 \
      -o "$4" "tftp://$ip/$3" ;;
  esac
  t1=$(now)
  check "$1 $2" "$3" "$4"
  awk -v d=$((t1 - t0)) 'BEGIN { printf "%.3f\n", d / 1e9 }'
}
check() {  # label path file
  local got
  got=$(sha256sum <"$3" | cut -d' ' -f1)
  [[ $got == "${want[$2]}" ]] || { echo "$1: $3 differs from the served file" >&2; exit 1; }
}

# Waits (bounded) until the server has no transfer left, so its CPU is all counted.
settle() {  # server
  [[ $1 == tftpd && $cg_kind != proc ]] || return 0
  for _ in $(seq 50); do
    [[ $(wc -l <"${cg[tftpd]}/cgroup.procs") -le 1 ]] && return 0
    sleep 0.1
  done
}

# rows: "label|iso value|tftpd value|unit|iso cpu ms/MiB|tftpd cpu ms/MiB"
rows=()
single() {  # kind label size-MiB path servers...
  local kind=$1 label=$2 size=$3 path=$4
  shift 4
  local -A best=() cpu=()
  local s secs c0
  for _ in $(seq "$repeat"); do
    for s in "$@"; do
      c0=$(cpu_ns "$s")
      secs=$(fetch "$s" "$kind" "$path" "$dir/out")
      settle "$s"
      cpu[$s]=$((${cpu[$s]:-0} + $(cpu_ns "$s") - c0))
      if [[ $kind == lossy ]]; then  # losses are random: the mean, not the luckiest run
        best[$s]=$(awk -v a="$secs" -v b="${best[$s]:-0}" -v r="$repeat" 'BEGIN { print b + a / r }')
      elif [[ -z ${best[$s]:-} ]] || awk -v a="$secs" -v b="${best[$s]}" 'BEGIN { exit !(a < b) }'; then
        best[$s]=$secs
      fi
    done
  done
  local iso hpa iso_cpu hpa_cpu
  iso=$(awk -v m="$size" -v t="${best[isoboot]}" 'BEGIN { printf "%.3g", m / t }')
  iso_cpu=$(awk -v n="${cpu[isoboot]}" -v m="$size" -v r="$repeat" 'BEGIN { printf "%.2f", n / 1e6 / (m * r) }')
  hpa=- hpa_cpu=-
  if [[ -n ${best[tftpd]:-} ]]; then
    hpa=$(awk -v m="$size" -v t="${best[tftpd]}" 'BEGIN { printf "%.3g", m / t }')
    hpa_cpu=$(awk -v n="${cpu[tftpd]}" -v m="$size" -v r="$repeat" 'BEGIN { printf "%.2f", n / 1e6 / (m * r) }')
  fi
  rows+=("$label|$iso|$hpa|MiB/s|$iso_cpu|$hpa_cpu")
}

concurrent() {  # clients
  local n=$1 s t0 t1 c0 r
  local -A total=() slowest=() cpu=() lo=() hi=()
  for r in $(seq "$rounds"); do
    for s in isoboot tftpd; do
      rm -f "$dir"/many.*
      c0=$(cpu_ns "$s")
      t0=$(now)
      # One shell in the client namespace starts every curl, then waits for all.
      "${on_cli[@]}" bash -c '
        n=$1 url=$2 out=$3
        for i in $(seq "$n"); do
          timeout 600 curl -sS --tftp-blksize 1432 -o "$out.$i" -w "%{time_total}\n" "$url" >"$out.$i.t" &
        done
        wait' _ "$n" "tftp://$(ip_of "$s")/$initrd" "$dir/many"
      t1=$(now)
      settle "$s"
      cpu[$s]=$((${cpu[$s]:-0} + $(cpu_ns "$s") - c0))
      for i in $(seq "$n"); do check "$s, $n clients, client $i" "$initrd" "$dir/many.$i"; done
      local mibs
      mibs=$(awk -v n="$n" -v m="$mib" -v d=$((t1 - t0)) 'BEGIN { printf "%.1f", n * m / (d / 1e9) }')
      total[$s]=$(awk -v a="${total[$s]:-0}" -v b="$mibs" -v r="$rounds" 'BEGIN { print a + b / r }')
      lo[$s]=$(awk -v a="${lo[$s]:-1e9}" -v b="$mibs" 'BEGIN { print (b < a ? b : a) }')
      hi[$s]=$(awk -v a="${hi[$s]:-0}" -v b="$mibs" 'BEGIN { print (b > a ? b : a) }')
      slowest[$s]=$(cat "$dir"/many.*.t | awk -v m="${slowest[$s]:-0}" '
        $1 > m { m = $1 } END { printf "%.2f", m }')
      ((rounds > 1)) && echo "round $r, $n clients, $s: $mibs MiB/s" >&2
    done
  done
  for s in isoboot tftpd; do
    total[$s]=$(awk -v t="${total[$s]}" 'BEGIN { printf "%.1f", t }')
    cpu[$s]=$(awk -v c="${cpu[$s]}" -v n="$n" -v m="$mib" -v r="$rounds" 'BEGIN { printf "%.2f", c / 1e6 / (n * m * r) }')
  done
  rm -f "$dir"/many.*
  local range=
  ((rounds > 1)) && range=", mean of $rounds (isoboot ${lo[isoboot]}-${hi[isoboot]}, tftpd-hpa ${lo[tftpd]}-${hi[tftpd]})"
  rows+=("$n clients at once, blksize 1432: total$range|${total[isoboot]}|${total[tftpd]}|MiB/s|${cpu[isoboot]}|${cpu[tftpd]}")
  rows+=("$n clients at once: slowest client|${slowest[isoboot]}|${slowest[tftpd]}|s||")
}

if [[ $cases == *" single "* ]]; then
  single b1408 "1 client, pxelinux: blksize 1408, tsize" "$mib" "$initrd" isoboot tftpd
  single b1432 "1 client, iPXE: blksize 1432, tsize" "$mib" "$initrd" isoboot tftpd
  single plain "1 client, no options: 512-byte blocks" "$mib" "$initrd" isoboot tftpd
  single b1468 "1 client, blksize 1468 (the most MTU 1500 holds)" "$mib" "$initrd" isoboot tftpd
  # isoboot clamps blksize to what the interface MTU holds (no IP fragments,
  # which turn one lost fragment into a lost block); tftpd-hpa grants 65464.
  single b65464 "1 client, blksize 65464 asked" "$mib" "$initrd" isoboot tftpd
  single window8 "1 client, windowsize 8, blksize 1432" "$mib" "$initrd" isoboot
  single window16 "1 client, windowsize 16, blksize 1432" "$mib" "$initrd" isoboot
fi
if [[ $cases == *" concurrent "* ]]; then
  for n in $many; do concurrent "$n"; done
fi

# 1 % of the UDP packets arriving in a namespace vanish, as on a lossy wire
# (dropped on input: a drop on output would fail the sender's sendto with
# EPERM, which makes in.tftpd give up; a wire never says so).
drop_input() {  # netns
  ip netns exec "$1" nft -f - <<'EOF'
table inet tftploss {
  chain in { type filter hook input priority 0; meta l4proto udp numgen random mod 100 < 1 drop; }
}
EOF
}
loss_note=
if ((loss_mib > 0)) && [[ $cases == *" loss "* ]]; then
  loss=
  if ip netns exec "$srv" tc qdisc add dev tftpb-s root netem loss 1% 2>/dev/null; then
    if ip netns exec "$cli" tc qdisc add dev tftpb-c root netem loss 1% 2>/dev/null; then
      loss="tc netem loss 1% on each veth end"
    else
      ip netns exec "$srv" tc qdisc del dev tftpb-s root
    fi
  fi
  if [[ -z $loss ]] && command -v nft >/dev/null && drop_input "$srv" && drop_input "$cli"; then
    loss="nftables numgen drops 1% of UDP arriving on each side (no sch_netem)"
  fi
  if [[ -n $loss ]]; then
    # Every loss costs a 1 s timeout, so a run takes ~15 s per MiB.
    repeat=$loss_runs single lossy "1 client, 1% loss: blksize 1432, timeout 1" "$loss_mib" "$kernel" \
      isoboot tftpd
    loss_note="loss case: ${loss_mib} MiB file, mean of $loss_runs runs (noisy: ~15 losses per MiB), $loss"
  else
    loss_note="loss case skipped: neither tc netem nor nftables could drop packets here"
  fi
fi

echo "TFTP bench: ${mib} MiB initrd (isoboot: inside an ISO, tftpd-hpa $(in.tftpd -V 2>&1 | awk '{sub(",", "", $2); print $2}'): a file)," \
  "veth MTU 1500 between two netns, best of $repeat single-client runs, $(nproc) CPUs: $pinned"
echo "clients: curl $(curl --version | awk 'NR==1 {print $2}'), atftp $(dpkg-query -W -f='${Version}' atftp);" \
  "CPU: server cgroup time ($cg_kind) per MiB sent"
echo "idle server CPU (ms/s, included in the CPU figures): isoboot ${idle[isoboot]}, tftpd-hpa ${idle[tftpd]}"
[[ -n $loss_note ]] && echo "$loss_note"
printf '%-52s %9s %9s %6s  %14s %12s %6s\n' case isoboot tftpd-hpa ratio "isoboot ms/MiB" "tftpd ms/MiB" ratio
for r in "${rows[@]}"; do
  IFS='|' read -r label iso hpa unit ic hc <<<"$r"
  ratio=$(awk -v a="$iso" -v b="$hpa" -v u="$unit" 'BEGIN {
    if (b == "-") print "only"; else if (u == "s") printf "%.2f", b / a; else printf "%.2f", a / b }')
  cratio=$(awk -v a="$ic" -v b="$hc" 'BEGIN { if (b == "-" || b == "" || b == 0) print ""; else printf "%.2f", a / b }')
  printf '%-52s %9s %9s %6s  %14s %12s %6s\n' "$label ($unit)" "$iso" "$hpa" "$ratio" "$ic" "$hc" "$cratio"
done
echo
echo "ratio: isoboot/tftpd-hpa throughput, and tftpd-hpa/isoboot time for the slowest client (>1: isoboot"
echo "faster); CPU ratio isoboot/tftpd-hpa (<1: isoboot uses less). \"only\": tftpd-hpa has no windowsize."
