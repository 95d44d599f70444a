#!/usr/bin/env bash
# Boot storm: N simulated nodes (bench/storm) boot at once, the whole client
# sequence (PXE DHCP, loader over TFTP, iPXE DHCP, boot.ipxe + kernel + initrd
# over HTTP, the initrd's DHCP, AoE discovery and the reads of a real KIWI
# boot), against `isoboot serve` and against KIWI's documented stack
# (dnsmasq DHCP+TFTP, vblade, nginx) in the same run, and prints one table.
#
#   STORM_NODES       node counts (default "100 300 1000")
#   STORM_UEFI_PCT    percent of UEFI nodes (default 50)
#   STORM_SPREAD_MS   power-on spread of the N nodes (default 2000)
#   STORM_SERVER_CPU  CPU the servers are confined to (default 0)
#   STORM_CLIENT_CPU  CPU of the storm client (default 1)
#   STORM_LIMIT       seconds a storm may take (default 600)
#   STORM_DNSMASQ_ARGS extra dnsmasq arguments (e.g. --no-ping)
#   STORM_KEEP        directory to keep per-node tables and logs in
# Usage (root): bench/storm_bench.sh [ISOBOOT_BIN] [ISO]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/.." && pwd)
# shellcheck source=bench/storm/lib.sh
source "$here/storm/lib.sh"
bin=${1:-$src/build/release/isoboot}
iso=${2:-$("$src/tests/image/build-kiwi-live.sh" "${KIWI_CACHE:-/var/cache/isoboot/kiwi}")}
sizes=${STORM_NODES:-100 300 1000}
STORM_DIR=$(mktemp -d)
trap 'storm_cleanup; rm -rf "$STORM_DIR"' EXIT
storm_build "$STORM_DIR"
storm=$STORM_DIR/storm
hz=$(getconf CLK_TCK)
storm_net_up
echo "# servers on CPU ${STORM_SERVER_CPU:-0}, storm client on CPU ${STORM_CLIENT_CPU:-1} (taskset); $(nproc) CPUs"
echo "# image $iso; $(grep -c '^[0-9]' "$here/storm/kiwi-blocks.txt") AoE reads per node"

declare -A res=()
run() {  # STACK N
  local stack=$1 n=$2 out=$STORM_DIR/$1-$2.out
  rm -f "$STORM_DIR"/*.leases
  if [[ $stack == isoboot ]]; then
    storm_start_isoboot "$bin" "$iso" "$STORM_DIR"
  else
    storm_start_reference "$iso" "$STORM_DIR"
  fi
  local t0 t1 rc=0
  t0=$(storm_server_ticks)
  storm_run "$storm" "$out" -n "$n" -b "$here/storm/kiwi-blocks.txt" -f "$iso" -u "${STORM_UEFI_PCT:-50}" \
    -S "${STORM_SPREAD_MS:-2000}" -T "${STORM_LIMIT:-600}" -o "$STORM_DIR/$stack-$n.tsv" -q || rc=$?
  t1=$(storm_server_ticks)
  local hwm
  hwm=$(storm_server_hwm_kib)
  if [[ -n ${STORM_KEEP:-} ]]; then
    mkdir -p "$STORM_KEEP"
    cp "$out" "$STORM_DIR/$stack-$n.tsv" "$STORM_KEEP/"
    for f in "$STORM_DIR"/*.log; do cp "$f" "$STORM_KEEP/$stack-$n-$(basename "$f")"; done
  fi
  storm_stop_servers
  # UDP datagrams the kernel dropped for a full socket buffer, per side
  local drops
  # shellcheck disable=SC2016
  drops=$(for ns in "$STORM_NS_SRV" "$STORM_NS_CLI"; do
    ip netns exec "$ns" awk '$1 == "Udp:" && !h {for (i = 2; i <= NF; i++) c[$i] = i; h = 1; next}
      $1 == "Udp:" {printf "%s ", $c["RcvbufErrors"]}' /proc/net/snmp
  done)
  local line
  line=$(grep "^RESULT" "$out" || echo "RESULT storm-exit=$rc")
  res[$stack-$n]="$line cpu=$(echo "scale=2; ($t1 - $t0) / $hz" | bc) rss_mib=$((hwm / 1024)) udp_rcvbuf_drops_srv_cli=${drops// /,}"
  echo "$stack N=$n: ${res[$stack-$n]}"
  grep "^failure" "$out" | head -5 || true
}
field() {  # KEY NAME
  grep -Eo "(^| )$2=[^ ]*" <<<"${res[$1]}" | cut -d= -f2
}
ratio() {
  if [[ -z $1 || -z $2 ]] || [[ $(echo "$2 == 0" | bc) == 1 ]]; then echo "-"; else printf '%.2f' "$(echo "$1 / $2" | bc -l)"; fi
}
for n in $sizes; do
  run isoboot "$n"
  run reference "$n"
done
echo
printf '%-6s | %-20s | %-16s | %-16s | %-13s | %-13s | %s\n' nodes "failures iso / ref" \
  "p50 s iso / ref" "p99 s iso / ref" "CPU s iso/ref" "RSS MiB i/r" "ratios p50 p99 CPU RSS"
for n in $sizes; do
  i=isoboot-$n r=reference-$n
  printf '%-6s | %-20s | %-16s | %-16s | %-13s | %-13s | %s %s %s %s\n' "$n" \
    "$(field "$i" failed) / $(field "$r" failed)" "$(field "$i" p50) / $(field "$r" p50)" \
    "$(field "$i" p99) / $(field "$r" p99)" "$(field "$i" cpu) / $(field "$r" cpu)" \
    "$(field "$i" rss_mib) / $(field "$r" rss_mib)" \
    "$(ratio "$(field "$i" p50)" "$(field "$r" p50)")" "$(ratio "$(field "$i" p99)" "$(field "$r" p99)")" \
    "$(ratio "$(field "$i" cpu)" "$(field "$r" cpu)")" "$(ratio "$(field "$i" rss_mib)" "$(field "$r" rss_mib)")"
done
