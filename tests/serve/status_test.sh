#!/usr/bin/env bash
# The operator's view of `isoboot serve`, driven by real clients over a veth
# pair between two network namespaces this test creates: a node boots step
# by step (busybox udhcpc as a BIOS PXE ROM, the loader over TFTP with
# tftp-hpa, boot.ipxe/kernel/initrd over HTTP with curl, its root over AoE
# with aoe-load, an initiator that shares no code with isoboot, or
# `isoboot aoe read` where its source is missing, then GET /up), and after
# each step /status.json, the HTML page and `isoboot status` must say where
# it is. A UEFI ROM shows as uefi-pxe, a
# node that stops moving is marked stalled (--stall-after 2), a PXE request
# after the boot starts the next one. /metrics passes Prometheus's own
# `promtool check metrics`, and a real Prometheus scraping the running
# server answers PromQL queries about the node. Without serve's DHCP, the
# neighbour table names the nodes: an NBD client (nbdinfo) and one fetching
# live.iso over HTTP are both in root.
# Needs root, iproute2, busybox, tftp-hpa, curl, prometheus (promtool), cc.
#   AOE_LOAD_SRC  aoe-load.c (default /work/shared/tools/aoe-load/aoe-load.c)
set -euo pipefail
src=${ISOBOOT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp status
fail_logs=("$tmp/serve.log" "$tmp/prometheus.log")
fail_lines=40
srv=isb-sts-$$
cli=isb-stc-$$
pid=
prom_pid=
cleanup() {
  [[ -n $prom_pid ]] && kill "$prom_pid" 2>/dev/null && wait "$prom_pid" 2>/dev/null
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  return 0
}
for tool in promtool prometheus; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/deps.sh test)"
done
aoe_load_src=${AOE_LOAD_SRC:-/work/shared/tools/aoe-load/aoe-load.c}
aoe_reader=("$ISOBOOT_BIN" aoe read e0.1 -i veth-c -o "$tmp/aoe.img")
if [[ -f $aoe_load_src ]] && cc -O2 -o "$tmp/aoe-load" "$aoe_load_src" 2>/dev/null; then
  aoe_reader=("$tmp/aoe-load" -i veth-c -d 0.1 -f "$tmp/live.iso" -w 4 -r 5 -T 50 -q)
fi

"$src/scripts/make-layout-iso.sh" kiwi "$tmp/live.iso" >/dev/null
veth_pair "$srv" "$cli"
ip -n "$srv" addr add 10.79.0.1/24 dev veth-s
ip -n "$cli" addr add 10.79.0.2/24 dev veth-c  # until DHCP gives it one
mac=$(ip -n "$cli" -o link show veth-c | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
base=http://10.79.0.1:8080

ip netns exec "$srv" "$ISOBOOT_BIN" serve "$tmp/live.iso" --interface veth-s --dhcp full \
  --dhcp-range 10.79.0.100,10.79.0.120 --stall-after 2 --announce 1 >"$tmp/serve.log" 2>&1 &
pid=$!
wait_ready "$tmp/serve.log"

# get PATH / status_table: the page or `isoboot status` as text (captured
# whole first: `grep -q` on a pipe would cut the writer short under pipefail).
get() { ip netns exec "$cli" curl -sf "$base$1"; }
status_table() { ip netns exec "$cli" "$ISOBOOT_BIN" status --server "$base" "$@"; }

# node_field FIELD: the node's FIELD in /status.json (empty when not listed).
node_field() {
  ip netns exec "$cli" curl -sf "$base/status.json" | python3 -c '
import json, sys
mac, field = sys.argv[1], sys.argv[2]
for n in json.load(sys.stdin)["nodes"]:
    if n["mac"] == mac:
        v = n[field]
        print(str(v).lower() if isinstance(v, bool) else v)
' "$mac" "$1"
}
expect_phase() {  # PHASE: the JSON, the HTML row and `isoboot status` agree
  local want=$1 got
  got=$(node_field phase)
  [[ $got == "$want" ]] || fail "phase: want $want, /status.json says '$got'"
  local page table
  page=$(get /status)
  grep -q "data-mac=\"$mac\" data-phase=\"$want\"" <<<"$page" || fail "the status page has no $want row for $mac"
  table=$(status_table)
  grep -Eq "^$mac +[0-9.]* +[a-z-]* +$want " <<<"$table" || fail "isoboot status does not show $mac in $want: $table"
  echo "phase $want: ok"
}

# Before any node: an empty table, and a page that reads without JavaScript.
[[ $(status_table) == "no nodes seen yet" ]] || fail "isoboot status with no nodes: $(status_table)"
[[ $(get /) == *'<table id="nodes">'* ]] || fail "no status page at /"

# A plain DHCP client (no PXE) is not a node; a BIOS PXE ROM is.
lease=$(dhcp_lease "$cli" veth-c)
[[ $lease == ip=10.79.0.1* ]] || fail "no lease: $lease"
[[ -z $(node_field phase) ]] || fail "a client that is not booting is listed as a node"
pxe=$(dhcp_lease "$cli" veth-c "${pxe_bios[@]}")
[[ $pxe == *"boot_file=undionly.kpxe"* ]] || fail "no loader for the PXE client: $pxe"
ip=${pxe#ip=}
ip=${ip%% *}
ip -n "$cli" addr add "$ip/24" dev veth-c
expect_phase dhcp
[[ $(node_field firmware) == bios-pxe ]] || fail "firmware: $(node_field firmware)"
[[ $(node_field ip) == "$ip" ]] || fail "address: $(node_field ip), leased $ip"

# Stalled: nothing for more than --stall-after 2 s.
sleep 3
[[ $(node_field stalled) == true ]] || fail "a node doing nothing for 3 s is not stalled"
page=$(get /status)
[[ $page == *"data-mac=\"$mac\" data-phase=\"dhcp\" data-stalled=\"true\""* ]] ||
  fail "the page does not mark the stalled node: $(grep data-mac <<<"$page")"
[[ $(status_table) == *STALLED* ]] || fail "isoboot status: no STALLED mark: $(status_table)"
echo "stalled: ok"

# The loader over TFTP, as the ROM fetches it.
(cd "$tmp" && ip netns exec "$cli" timeout 30 tftp -m binary 10.79.0.1 -c get undionly.kpxe undionly.kpxe)
expect_phase loader
[[ $(node_field stalled) == false ]] || fail "progress did not clear the stalled mark"
# iPXE's script, kernel and initrd over HTTP.
ip netns exec "$cli" curl -sf "$base/boot.ipxe" -o /dev/null
[[ $(node_field firmware) == bios-ipxe ]] || fail "firmware after boot.ipxe: $(node_field firmware)"
ip netns exec "$cli" curl -sf "$base/boot/x86_64/loader/linux" -o /dev/null
expect_phase kernel
ip netns exec "$cli" curl -sf "$base/boot/x86_64/loader/initrd" -o /dev/null
expect_phase initrd
# The initrd's own DHCP (no PXE vendor class) leaves the node where it is.
dhcp_lease "$cli" veth-c >/dev/null
expect_phase initrd
# The root over AoE: the whole export.
ip netns exec "$cli" timeout 60 "${aoe_reader[@]}" >"$tmp/aoe.out" 2>&1 ||
  fail "${aoe_reader[0]}: $(cat "$tmp/aoe.out")"
for _ in $(seq 50); do [[ $(node_field phase) == root ]] && break; sleep 0.2; done
expect_phase root
bytes=$(node_field bytes)
initrd_size=$("$ISOBOOT_BIN" iso cat "$tmp/live.iso" /boot/x86_64/loader/initrd | wc -c)
image_size=$(stat -c %s "$tmp/live.iso")
((bytes > initrd_size + image_size)) || fail "bytes served: $bytes (initrd $initrd_size, image $image_size)"
# The booted system says it is up.
[[ $(get /up) == "$mac is up" ]] || fail "GET /up"
expect_phase up
sleep 3
[[ $(node_field stalled) == false ]] || fail "an up node is marked stalled"
echo "up: ok"

# /metrics in the Prometheus text format, checked by Prometheus's own linter.
ip netns exec "$cli" curl -sf "$base/metrics" -o "$tmp/metrics"
promtool check metrics <"$tmp/metrics" >"$tmp/promtool.out" 2>&1 || fail "promtool: $(cat "$tmp/promtool.out")"
grep -q "^isoboot_node_phase{mac=\"$mac\",phase=\"up\"} 1$" "$tmp/metrics" || fail "no node phase in /metrics"
grep -q '^isoboot_tftp_transfers_total{outcome="complete"} [1-9]' "$tmp/metrics" || fail "no TFTP transfers in /metrics"
grep -q '^isoboot_aoe_frames_total [1-9]' "$tmp/metrics" || fail "no AoE frames in /metrics"
grep -q '^isoboot_dhcp_leases 1$' "$tmp/metrics" || fail "leases in /metrics: $(grep leases "$tmp/metrics")"
grep -q '^isoboot_build_info{version="[0-9.]*",root="aoe"} 1$' "$tmp/metrics" || fail "no build info"
echo "metrics: ok"

# A burst the DHCP socket cannot hold (serve stopped while 30000 requests
# arrive) is counted as dropped by the kernel, not lost silently.
kill -STOP "$pid"
ip netns exec "$cli" python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(30000):
    s.sendto(b"\x01" * 300, ("10.79.0.1", 67))
'
kill -CONT "$pid"
drops=
for _ in $(seq 50); do
  # The kernel's count rides on the next packet queued after the drops.
  ip netns exec "$cli" python3 -c '
import socket
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"\x01" * 300, ("10.79.0.1", 67))'
  drops=$(get /metrics | sed -n 's/^isoboot_dhcp_dropped_total{reason="receive_buffer"} //p')
  [[ -n $drops && $drops != 0 ]] && break
  sleep 0.2
done
((drops > 0)) || fail "a burst over the DHCP receive buffer counted no drops ($drops)"
echo "dhcp receive-buffer drops: $drops: ok"

# A real Prometheus scrapes the running server and answers PromQL.
cat >"$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: isoboot
    static_configs:
      - targets: ["10.79.0.1:8080"]
EOF
promtool check config "$tmp/prometheus.yml" >/dev/null || fail "promtool check config"
ip netns exec "$cli" prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
  --web.listen-address=127.0.0.1:9090 >"$tmp/prometheus.log" 2>&1 &
prom_pid=$!
query() {  # PROMQL: the value of the first result, or nothing
  ip netns exec "$cli" curl -sf --get --data-urlencode "query=$1" http://127.0.0.1:9090/api/v1/query |
    python3 -c 'import json, sys; r = json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")'
}
got=
for _ in $(seq 360); do
  got=$(query "isoboot_node_phase{mac=\"$mac\",phase=\"up\"}" 2>/dev/null || true)
  [[ $got == 1 ]] && break
  sleep 0.5
done
[[ $got == 1 ]] || fail "Prometheus has no up node (got '$got')"
[[ $(query 'sum(isoboot_nodes)') == 1 ]] || fail "PromQL sum(isoboot_nodes): $(query 'sum(isoboot_nodes)')"
[[ $(query 'up{job="isoboot"}') == 1 ]] || fail "the scrape target is not up"
echo "prometheus: ok"

# A UEFI ROM from another MAC (a macvlan) is a second node.
ip -n "$cli" link add link veth-c name mv0 type macvlan mode bridge
ip -n "$cli" link set mv0 up
mac2=$(ip -n "$cli" -o link show mv0 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
pxe2=$(dhcp_lease "$cli" mv0 -V PXEClient:Arch:00007:UNDI:003016)
[[ $pxe2 == *"boot_file=ipxe.efi"* ]] || fail "no UEFI loader: $pxe2"
ip netns exec "$cli" curl -sf "$base/status.json" | python3 -c '
import json, sys
nodes = {n["mac"]: n for n in json.load(sys.stdin)["nodes"]}
assert nodes[sys.argv[1]]["firmware"] == "uefi-pxe", nodes
assert nodes[sys.argv[2]]["phase"] == "up", nodes
' "$mac2" "$mac" || fail "the UEFI node is not listed as uefi-pxe beside the up node"
echo "uefi node: ok"

# A PXE request from the booted node starts its next boot.
dhcp_lease "$cli" veth-c "${pxe_bios[@]}" >/dev/null
expect_phase dhcp
[[ $(node_field boots) == 2 ]] || fail "boots: $(node_field boots)"
status_table --json | python3 -c '
import json, sys; assert len(json.load(sys.stdin)["nodes"]) == 2' || fail "isoboot status --json"
echo "next boot: ok"

# isoboot status against something that is not a server: one line, non-zero.
if out=$(ip netns exec "$cli" "$ISOBOOT_BIN" status --server http://127.0.0.1:1 2>&1); then
  fail "isoboot status without a server succeeded"
fi
(($(wc -l <<<"$out") == 1)) || fail "isoboot status error is not one line: $out"

kill -TERM "$prom_pid"
wait "$prom_pid" 2>/dev/null || true
prom_pid=
kill -TERM "$pid"
wait "$pid" || fail "serve exited with $?"
pid=

# Without serve's DHCP (--dhcp off: the site's server leases), nodes are
# known by the boot network's neighbour table: an NBD connection (nbdinfo,
# libnbd) puts one in root, the whole image over HTTP another.
"$src/scripts/make-layout-iso.sh" dracut "$tmp/dracut.iso" >/dev/null
ip netns exec "$srv" "$ISOBOOT_BIN" serve "$tmp/dracut.iso" --interface veth-s --dhcp off \
  --root nbd >"$tmp/serve.log" 2>&1 &
pid=$!
wait_ready "$tmp/serve.log"
# The second node (mv0, the UEFI one) in a namespace of its own, so each
# client's packets leave by its own MAC.
cli2=isb-st2-$$
ip netns add "$cli2"
_netns_made+=("$cli2")
ip -n "$cli" link set mv0 netns "$cli2"
ip -n "$cli2" link set lo up
ip -n "$cli2" link set mv0 up
ip -n "$cli2" addr add 10.79.0.3/24 dev mv0
ip netns exec "$cli" nbdinfo --size nbd://10.79.0.1/live.iso >"$tmp/nbdinfo.out" || fail "nbdinfo"
[[ $(cat "$tmp/nbdinfo.out") == "$(stat -c %s "$tmp/dracut.iso")" ]] || fail "nbdinfo size: $(cat "$tmp/nbdinfo.out")"
[[ $(node_field phase) == root ]] || fail "an NBD client is not in root: '$(node_field phase)'"
ip netns exec "$cli2" curl -sf "$base/live.iso" -o "$tmp/live.http"
cmp "$tmp/live.http" "$tmp/dracut.iso" || fail "live.iso over HTTP differs"
# Bytes are counted as they go, once a second.
http_root_ok() {
  ip netns exec "$cli" curl -sf "$base/status.json" | python3 -c '
import json, sys
nodes = {n["mac"]: n for n in json.load(sys.stdin)["nodes"]}
n = nodes[sys.argv[1]]
sys.exit(0 if n["phase"] == "root" and n["ip"] == "10.79.0.3" and n["bytes"] >= int(sys.argv[2]) else 1)
' "$mac2" "$(stat -c %s "$tmp/dracut.iso")"
}
for _ in $(seq 50); do http_root_ok && break; sleep 0.2; done
http_root_ok || fail "the HTTP root client is not in root with its address and bytes: $(get /status.json)"
[[ $(node_field ip) == 10.79.0.2 ]] || fail "the NBD client's address: $(node_field ip)"
echo "nbd and http roots: ok"
kill -TERM "$pid"
wait "$pid" || fail "serve exited with $?"
pid=
echo "PASS"
