#!/usr/bin/env bash
# `isoboot serve --dhcp full` across a router: ISC dhcrelay (isc-dhcp-relay)
# in a router namespace forwards a client subnet to the server subnet.
#
#   relayed client (busybox udhcpc) -- router: dhcrelay -a, ip_forward --+
#   client "no range" (udhcpc)       --                                  |
#                                        server ns: bridge br0 10.77.1.1 +-- direct client
#
# The relayed client leases from the range of its own subnet (giaddr), with
# the relay as router and the server as next-server, then fetches its loader
# over TFTP and boot.ipxe, kernel and initrd over HTTP through the router; the
# server's replies carry option 82 back to the relay (tcpdump on the router's
# upstream side); a direct client leases from the server subnet's range at the
# same time; a relay on a subnet without a range is dropped and logged; and
# with --root aoe serve says in one line that AoE cannot cross the router;
# in ProxyDHCP mode the PXE offer goes back through the relay too.
set -euo pipefail
src=${ISOBOOT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp relay
fail_logs=("$tmp/serve.log" "$tmp/relay.log")
srv=isb-rs-$$ rtr=isb-rr-$$ cli=isb-rc-$$ dir=isb-rd-$$ bad=isb-rb-$$
pid='' relay_pid='' dump_pid=''
stop() {  # PID: SIGTERM, then wait for it
  [[ -n $1 ]] || return 0
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  stop "$pid"
  stop "$relay_pid"
  stop "$dump_pid"
}
for ns in "$srv" "$rtr" "$cli" "$dir" "$bad"; do
  ip netns add "$ns"
  _netns_made+=("$ns")  # lib.sh deletes them on exit
  ip -n "$ns" link set lo up
done
link() {  # NS_A IF_A NS_B IF_B
  ip link add "$2" netns "$1" type veth peer name "$4" netns "$3"
  ip -n "$1" link set "$2" up
  ip -n "$3" link set "$4" up
}
ip -n "$srv" link add br0 type bridge
link "$srv" s-rtr "$rtr" r-up
link "$srv" s-dir "$dir" d0
ip -n "$srv" link set s-rtr master br0
ip -n "$srv" link set s-dir master br0
ip -n "$srv" link set br0 up
ip -n "$srv" addr add 10.77.1.1/24 dev br0
ip -n "$srv" route add 10.77.0.0/16 via 10.77.1.254
link "$rtr" r-down "$cli" c0
link "$rtr" r-bad "$bad" b0
ip -n "$rtr" addr add 10.77.1.254/24 dev r-up
ip -n "$rtr" addr add 10.77.2.1/24 dev r-down
ip -n "$rtr" addr add 10.77.9.1/24 dev r-bad
ip netns exec "$rtr" sysctl -qw net.ipv4.ip_forward=1

"$src/scripts/make-layout-iso.sh" kiwi "$tmp/live.iso" >/dev/null
serve() {  # ARG...: starts serve in the server namespace
  rm -f "$tmp/serve.log"
  ip netns exec "$srv" "$ISOBOOT_BIN" serve "$tmp/live.iso" --interface br0 "$@" \
    >"$tmp/serve.log" 2>&1 &
  pid=$!
  wait_ready "$tmp/serve.log"
}
full=(--dhcp full --lease-file "$tmp/leases")
serve "${full[@]}" --root http --dhcp-range 10.77.1.100,10.77.1.120 --dhcp-range 10.77.2.100,10.77.2.120

# The relay: downstream (client side) r-down and r-bad, upstream r-up; -a adds
# option 82 (circuit id = the downstream interface) to what it forwards.
ip netns exec "$rtr" tcpdump -i r-up -n -U --immediate-mode -s 0 -w "$tmp/up.pcap" udp port 67 2>"$tmp/tcpdump.log" &
dump_pid=$!
ip netns exec "$rtr" dhcrelay -4 -d -a --no-pid -id r-down -id r-bad -iu r-up 10.77.1.1 \
  >"$tmp/relay.log" 2>&1 &
relay_pid=$!
for _ in $(seq 50); do
  grep -q "listening on" "$tmp/tcpdump.log" && grep -q "^Sending on" "$tmp/relay.log" && break
  sleep 0.2
done
grep -q "^Sending on" "$tmp/relay.log" || fail "dhcrelay did not start"

# One udhcpc exchange that also prints the router option.
lease_script=$tmp/lease.sh
# shellcheck disable=SC2016  # the script's own variables
printf '%s\n' '#!/bin/sh' \
  '[ "$1" = bound ] && echo "ip=$ip boot_file=$boot_file siaddr=$siaddr router=$router"' \
  'exit 0' >"$lease_script"
chmod +x "$lease_script"
lease() {  # NS IFACE [UDHCPC-ARG...]
  local ns=$1 iface=$2
  shift 2
  ip netns exec "$ns" timeout 20 busybox udhcpc -i "$iface" -n -q -f -s "$lease_script" "$@" \
    2>/dev/null | grep '^ip=' || true
}

# The relayed PXE client and the direct one at the same time.
lease "$dir" d0 >"$tmp/direct.lease" &
direct_pid=$!
relayed=$(lease "$cli" c0 "${pxe_bios[@]}")
wait "$direct_pid"
direct=$(cat "$tmp/direct.lease")
echo "relayed: $relayed"
echo "direct: $direct"
[[ $relayed =~ ^ip=10\.77\.2\.1([01][0-9]|20)\ boot_file=undionly\.kpxe\ siaddr=10\.77\.1\.1\ router=10\.77\.2\.1$ ]] ||
  fail "relayed client: $relayed"
[[ $direct =~ ^ip=10\.77\.1\.1([01][0-9]|20)\ boot_file=\ siaddr=(0\.0\.0\.0)?\ router=$ ]] ||
  fail "direct client: $direct"
relayed_ip=${relayed#ip=}
relayed_ip=${relayed_ip%% *}
grep -q "ACK $relayed_ip.* via relay 10.77.2.1" "$tmp/serve.log" || fail "no ACK via the relay in the log"
grep -q " $relayed_ip " "$tmp/leases" || fail "relayed lease not in the lease file"
direct_ip=${direct#ip=}
direct_ip=${direct_ip%% *}
grep -q " $direct_ip " "$tmp/leases" || fail "direct lease not in the lease file"

# tcpdump -n -vv of the server's replies to the relay in capture FILE
replies_to_relay() {
  tcpdump -n -vv -r "$1" 'src host 10.77.1.1 and dst host 10.77.2.1 and udp port 67' 2>/dev/null
}

# The server's replies to the relay carried option 82 (dhcrelay strips it
# before the client sees it, and drops a reply whose option it cannot match).
stop "$dump_pid"
dump_pid=
replies_to_relay "$tmp/up.pcap" >"$tmp/up.txt"
grep -q "BOOTP/DHCP, Reply" "$tmp/up.txt" || fail "no reply to the relay captured: $(head -20 "$tmp/up.txt")"
replies=$(grep -c "BOOTP/DHCP, Reply" "$tmp/up.txt")
with_82=$(grep -c "Agent-Information" "$tmp/up.txt" || true)
[[ $replies -ge 2 && $with_82 == "$replies" ]] || fail "$with_82 of $replies replies carry option 82"
grep -q 'Circuit-ID SubOption 1, length 6: r-down' "$tmp/up.txt" || fail "option 82 changed: $(grep -A3 Agent "$tmp/up.txt" | head)"
grep -q "Gateway-IP 10.77.2.1" "$tmp/up.txt" || fail "giaddr not kept in the reply"
echo "option 82: echoed in $replies replies"

# Boot files through the router: TFTP loader and kernel, HTTP boot.ipxe,
# kernel and initrd, compared with the image.
ip -n "$cli" addr add "$relayed_ip/24" dev c0
ip -n "$cli" route add default via 10.77.2.1
(cd "$tmp" && ip netns exec "$cli" timeout 30 tftp -m binary 10.77.1.1 -c get undionly.kpxe undionly.tftp)
cmp /usr/lib/ipxe/undionly.kpxe "$tmp/undionly.tftp" || fail "undionly.kpxe over TFTP differs"
(cd "$tmp" && ip netns exec "$cli" timeout 30 tftp -m binary 10.77.1.1 -c get boot/x86_64/loader/linux linux.tftp)
"$ISOBOOT_BIN" iso cat "$tmp/live.iso" /boot/x86_64/loader/linux >"$tmp/linux.want"
"$ISOBOOT_BIN" iso cat "$tmp/live.iso" /boot/x86_64/loader/initrd >"$tmp/initrd.want"
cmp "$tmp/linux.want" "$tmp/linux.tftp" || fail "kernel over TFTP differs"
ip netns exec "$cli" curl -sf http://10.77.1.1:8080/boot.ipxe -o "$tmp/boot.ipxe" || fail "boot.ipxe"
grep -q "kernel http://10.77.1.1:8080/boot/x86_64/loader/linux " "$tmp/boot.ipxe" ||
  fail "boot.ipxe: $(cat "$tmp/boot.ipxe")"
for f in linux initrd; do
  ip netns exec "$cli" curl -sf "http://10.77.1.1:8080/boot/x86_64/loader/$f" -o "$tmp/$f.http" ||
    fail "$f over HTTP"
  [[ $(sha256sum <"$tmp/$f.http") == $(sha256sum <"$tmp/$f.want") ]] || fail "$f over HTTP differs"
done
echo "boot files through the router: ok ($(stat -c %s "$tmp/linux.http")-byte kernel, $(stat -c %s "$tmp/initrd.http")-byte initrd)"

# A relay on a subnet without a range: dropped, logged, no lease.
nolease=$(lease "$bad" b0 -t 2 -T 1)
[[ -z $nolease ]] || fail "a client behind 10.77.9.1 got a lease: $nolease"
grep -q "dropped: no range for relay 10.77.9.1" "$tmp/serve.log" || fail "no 'no range' line"
grep -q "does not cross a router" "$tmp/serve.log" && fail "--root http warned about AoE"
echo "unknown relay: dropped"

# --root aoe (the KIWI default) and a relayed client: one clear line, and the
# client still gets its lease (its loader and kernel work; only the root
# cannot come).
# (the two ranges from a TOML array this time)
stop "$pid"
pid=
printf 'dhcp-range = ["10.77.1.100,10.77.1.120", "10.77.2.100,10.77.2.120"]\n' >"$tmp/isoboot.toml"
serve "${full[@]}" --root aoe --config "$tmp/isoboot.toml"
again=$(lease "$cli" c0 "${pxe_bios[@]}")
[[ $again == "ip=$relayed_ip "* ]] || fail "relayed client with --root aoe: $again"
grep -q "dhcp.*: relayed through 10.77.2.1: AoE (--root aoe) does not cross a router; this client cannot reach its root: serve with --root http or --root nbd" "$tmp/serve.log" ||
  fail "no AoE refusal line"
[[ $(grep -c "does not cross a router" "$tmp/serve.log") == 1 ]] || fail "the AoE line repeats"
echo "aoe: refused in one line"
stop "$pid"
pid=

# ProxyDHCP behind the relay (the site's relay forwards to its DHCP server and
# to isoboot; no site server here): the PXE offer, without an address, goes
# to the relay with option 82, and the relay forwards it to the client.
ip netns exec "$rtr" tcpdump -i r-up -n -U --immediate-mode -s 0 -w "$tmp/proxy.pcap" udp port 67 \
  2>"$tmp/tcpdump.log" &
dump_pid=$!
for _ in $(seq 50); do grep -q "listening on" "$tmp/tcpdump.log" && break; sleep 0.2; done
serve --dhcp proxy --root http
forwarded=$(grep -c "Forwarded BOOTREPLY" "$tmp/relay.log")
lease "$cli" c0 "${pxe_bios[@]}" -t 2 -T 1 >/dev/null
grep -q "DHCPOFFER boot file undionly.kpxe (arch 0) via relay 10.77.2.1" "$tmp/serve.log" ||
  fail "no proxy offer via the relay"
for _ in $(seq 50); do
  [[ $(grep -c "Forwarded BOOTREPLY" "$tmp/relay.log") -gt $forwarded ]] && break
  sleep 0.2
done
[[ $(grep -c "Forwarded BOOTREPLY" "$tmp/relay.log") -gt $forwarded ]] || fail "the relay did not forward the proxy offer"
stop "$dump_pid"
dump_pid=
replies_to_relay "$tmp/proxy.pcap" >"$tmp/proxy.txt"
grep -q "DHCP-Message (53), length 1: Offer" "$tmp/proxy.txt" || fail "no proxy offer captured"
grep -q "Your-IP" "$tmp/proxy.txt" && fail "the proxy offer carries an address"
grep -q 'Circuit-ID SubOption 1, length 6: r-down' "$tmp/proxy.txt" || fail "proxy offer without option 82"
echo "proxy: offer through the relay"
stop "$pid"
pid=
echo "1 passed, 0 failed"
