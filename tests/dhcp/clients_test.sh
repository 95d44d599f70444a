#!/usr/bin/env bash
# Real DHCP clients against isoboot's DHCP server in private network
# namespaces: busybox udhcpc (as a PXE ROM would ask: vendor class
# PXEClient, option 93 arch) and ISC dhclient (as the KIWI initrd asks: no PXE
# vendor class), in full mode and ProxyDHCP mode, then ProxyDHCP beside
# dnsmasq as the site DHCP server. Checks the boot file per architecture, the
# iPXE script hand-off, that ProxyDHCP hands out no address, the same address
# for the same MAC without PXE, lease persistence across a restart, the
# on_client hook, and that bad packets are dropped and counted.
# Needs root, iproute2, busybox(-static), isc-dhcp-client, dnsmasq, tcpdump
# (scripts/deps.sh test). Every wait is bounded.
#   DHCP_TEST_SERVER  the dhcp_test_server binary (default: next to isoboot's build)
#   DHCP_TEST_KEEP=1  keep the temporary directory (logs, capture); as ISOBOOT_TEST_KEEP=1
set -euo pipefail
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
server_bin=${DHCP_TEST_SERVER:-$(dirname "${ISOBOOT_BIN:?ISOBOOT_BIN must name the isoboot binary}")/../dhcp/dhcp_test_server}
[[ -x $server_bin ]] || { echo "no dhcp_test_server at $server_bin" >&2; exit 1; }
busybox=$(command -v busybox)

test_tmp dhcp-clients
ISOBOOT_TEST_KEEP=${DHCP_TEST_KEEP:-${ISOBOOT_TEST_KEEP:-0}}
S=isoboot-dhcps-$$ # server side (bridge br0)
C=isoboot-dhcpc-$$ # client
D=isoboot-dhcpd-$$ # site DHCP server (dnsmasq)
pids=()
server_pid=""
dhclient_pid=""
cleanup() {
  local rc=$1
  for p in "${pids[@]}" $server_pid $dhclient_pid; do kill "$p" 2>/dev/null || true; done
  for ns in "$S" "$C" "$D"; do ip netns del "$ns" 2>/dev/null || true; done
  if ((rc != 0)); then
    for f in "$tmp"/*.log; do echo "--- $f"; tail -n 30 "$f"; done
  fi
}

expect_eq() { [[ "$1" == "$2" ]] || fail "$3: got '$1', want '$2'"; }

for ns in "$S" "$C" "$D"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n "$S" link add br0 type bridge
ip -n "$S" addr add 10.77.0.1/24 dev br0
ip -n "$S" link set br0 up
for end in c d; do
  peer=$C
  [[ $end == d ]] && peer=$D
  ip -n "$S" link add "p$end" type veth peer name eth0 netns "$peer"
  ip -n "$S" link set "p$end" master br0 up
  ip -n "$peer" link set eth0 up
done
ip -n "$D" addr add 10.77.0.2/24 dev eth0

# udhcpc script: record what the client got, configure nothing.
cat >"$tmp/udhcpc.sh" <<'EOF'
#!/bin/sh
[ "$1" = bound ] || exit 0
{ echo "ip=$ip"; echo "siaddr=$siaddr"; echo "boot_file=$boot_file"; echo "serverid=$serverid"; echo "tftp=$tftp"; echo "bootfile=$bootfile"; } >"$OUT"
EOF
# dhclient runs its script with a clean environment: the output path is fixed.
cat >"$tmp/dhclient.sh" <<EOF
#!/bin/sh
case \$reason in BOUND|REBOOT) ;; *) exit 0 ;; esac
{ echo "ip=\$new_ip_address"; echo "server=\$new_dhcp_server_identifier"; echo "filename=\$new_filename"; } >"$tmp/dhclient.out"
EOF
chmod +x "$tmp/udhcpc.sh" "$tmp/dhclient.sh"

start_server() { # args for dhcp_test_server
  : >"$tmp/server.out"
  ip netns exec "$S" "$server_bin" --interface br0 --server-ip 10.77.0.1 --events "$tmp/events" \
    --ipxe-url http://10.77.0.1:8080/boot.ipxe --arm64-file arm64/ipxe.efi "$@" \
    >"$tmp/server.out" 2>>"$tmp/server.log" &
  server_pid=$!
  for _ in $(seq 100); do grep -q ready "$tmp/server.out" && return; sleep 0.1; done
  fail "server did not start"
}
stop_server() {
  kill -TERM "$server_pid"
  wait "$server_pid" || fail "server exited with an error"
  server_pid=""
}
set_mac() { ip -n "$C" link set eth0 down; ip -n "$C" link set eth0 address "$1"; ip -n "$C" link set eth0 up; }
# udhcpc NAME [udhcpc args]: one lease attempt, result in $tmp/NAME.
udhcpc() {
  local name=$1
  shift
  rm -f "$tmp/$name"
  OUT=$tmp/$name ip netns exec "$C" "$busybox" udhcpc -i eth0 -f -q -n -t 3 -T 2 -A 1 \
    -s "$tmp/udhcpc.sh" "$@" >>"$tmp/udhcpc.log" 2>&1 || true
  [[ -f $tmp/$name ]] || fail "udhcpc $name got no lease"
}
get() { sed -n "s/^$2=//p" "$tmp/$1"; }
# dhclient_run CONF: dhclient in the foreground (so we own its PID) until it
# has a lease or has given up; stopped without a release.
dhclient_run() {
  rm -f "$tmp/dhclient.out"
  ip netns exec "$C" dhclient -d -1 -v -cf "$1" -sf "$tmp/dhclient.sh" -lf "$tmp/dhclient.leases" \
    -pf "$tmp/dhclient.pid" eth0 >>"$tmp/dhclient.log" 2>&1 &
  dhclient_pid=$!
  local pid=$dhclient_pid
  for _ in $(seq 600); do
    [[ -f $tmp/dhclient.out ]] && break
    kill -0 "$pid" 2>/dev/null || break
    [[ -n ${2:-} ]] && (($(grep -c "$2" "$tmp/server.log") >= 2)) && break
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  dhclient_pid="" # waited for: never kill a PID that may be reused
  rm -f "$tmp/dhclient.leases"
}
# dhclient NAME: one lease attempt without any PXE option, result in $tmp/NAME.
dhclient() {
  dhclient_run /dev/null
  [[ -f $tmp/dhclient.out ]] || fail "dhclient $1 got no lease"
  mv "$tmp/dhclient.out" "$tmp/$1"
}
pxe_bios=(-V PXEClient:Arch:00000:UNDI:002001 -x 0x5d:0000 -O tftp -O bootfile)
pxe_efi=(-V PXEClient:Arch:00007:UNDI:003016 -x 0x5d:0007 -O tftp -O bootfile)
mac1=52:54:00:d0:00:01
mac2=52:54:00:d0:00:02

echo "== full mode: PXE ROM, then the initrd's plain DHCP client from the same MAC"
start_server --mode full --range 10.77.0.100,10.77.0.120 --lease-file "$tmp/leases"
set_mac $mac1
udhcpc full_bios "${pxe_bios[@]}"
ip1=$(get full_bios ip)
[[ $ip1 == 10.77.0.1[0-2][0-9] ]] || fail "full mode address $ip1 not in range"
expect_eq "$(get full_bios boot_file)" pxelinux.0 "BIOS boot file"
expect_eq "$(get full_bios siaddr)" 10.77.0.1 "next-server"
expect_eq "$(get full_bios serverid)" 10.77.0.1 "server id"
dhclient full_plain
expect_eq "$(get full_plain ip)" "$ip1" "same MAC without PXE vendor class"
expect_eq "$(get full_plain filename)" "" "boot file for a non-PXE client"
set_mac $mac2
udhcpc full_efi "${pxe_efi[@]}"
ip2=$(get full_efi ip)
[[ $ip2 != "$ip1" ]] || fail "two MACs got the same address $ip1"
expect_eq "$(get full_efi boot_file)" ipxe.efi "x86-64 UEFI boot file"
grep -q "^$mac1 $ip1 pxe$" "$tmp/events" || fail "on_client hook: no PXE event for $mac1"
grep -q "^$mac1 .* plain$" "$tmp/events" || fail "on_client hook: no plain event for $mac1"

echo "== full mode: leases survive a restart"
ip -n "$C" addr add 10.77.0.250/24 dev eth0
ip netns exec "$C" bash -c 'printf "not a dhcp packet" >/dev/udp/10.77.0.1/67'
for _ in $(seq 100); do grep -q "dropped packet from 10.77.0.250" "$tmp/server.log" && break; sleep 0.1; done
ip -n "$C" addr flush dev eth0
stop_server
grep -q "dropped_bad [1-9]" "$tmp/server.out" || fail "garbage packet not counted: $(cat "$tmp/server.out")"
grep -q "^$mac1 $ip1 " "$tmp/leases" || fail "lease file lacks $mac1 $ip1"
start_server --mode full --range 10.77.0.100,10.77.0.120 --lease-file "$tmp/leases"
set_mac $mac2
dhclient restart_mac2
expect_eq "$(get restart_mac2 ip)" "$ip2" "address of $mac2 after restart"
set_mac $mac1
udhcpc restart_mac1 # busybox's own vendor class, not PXE
expect_eq "$(get restart_mac1 ip)" "$ip1" "address of $mac1 after restart"
stop_server

echo "== ProxyDHCP alone: boot file per architecture, no address"
start_server --mode proxy
set_mac $mac1
for case in "00000 0000 pxelinux.0" "00007 0007 ipxe.efi" "00009 0009 ipxe.efi" "00011 000b arm64/ipxe.efi"; do
  read -r vc arch want <<<"$case"
  udhcpc "proxy_$arch" -V "PXEClient:Arch:$vc:UNDI:003016" -x "0x5d:$arch"
  expect_eq "$(get "proxy_$arch" boot_file)" "$want" "ProxyDHCP boot file for arch $arch"
  expect_eq "$(get "proxy_$arch" ip)" 0.0.0.0 "ProxyDHCP address for arch $arch"
  expect_eq "$(get "proxy_$arch" siaddr)" 10.77.0.1 "ProxyDHCP next-server"
done
udhcpc proxy_ipxe "${pxe_efi[@]}" -x 0x4d:69505845 # user class "iPXE"
expect_eq "$(get proxy_ipxe boot_file)" http://10.77.0.1:8080/boot.ipxe "boot file for iPXE"
# No answer: wait until the server has ignored two of its DISCOVERs.
dhclient_run /dev/null "no answer (DHCPDISCOVER from a non-PXE client)"
[[ ! -f $tmp/dhclient.out ]] || fail "ProxyDHCP answered a non-PXE client: $(cat "$tmp/dhclient.out")"
grep -q "no answer (DHCPDISCOVER from a non-PXE client)" "$tmp/server.log" || fail "non-PXE DISCOVER not seen"

echo "== ProxyDHCP beside dnsmasq: the client sees both offers"
ip netns exec "$D" dnsmasq --no-daemon --conf-file=/dev/null --port=0 --interface=eth0 --bind-interfaces \
  --dhcp-range=10.77.0.150,10.77.0.160,255.255.255.0,1h --dhcp-leasefile="$tmp/dnsmasq.leases" \
  --user=root --log-dhcp >"$tmp/dnsmasq.log" 2>&1 &
pids+=($!)
ip netns exec "$C" tcpdump -i eth0 -n -l -vvv udp port 68 >"$tmp/offers.txt" 2>"$tmp/tcpdump.log" &
pids+=($!)
for _ in $(seq 100); do grep -q "listening on" "$tmp/tcpdump.log" && break; sleep 0.1; done
for _ in $(seq 100); do grep -q "started" "$tmp/dnsmasq.log" && break; sleep 0.1; done
# dhclient (sending the PXE vendor class) must take the address from dnsmasq.
printf 'send vendor-class-identifier "PXEClient:Arch:00000:UNDI:002001";\n' >"$tmp/pxe.conf"
dhclient_run "$tmp/pxe.conf"
[[ -f $tmp/dhclient.out ]] || fail "dhclient got no lease beside dnsmasq"
mv "$tmp/dhclient.out" "$tmp/site"
site_ip=$(get site ip)
[[ $site_ip == 10.77.0.1[56][0-9] ]] || fail "address $site_ip is not from dnsmasq's range"
expect_eq "$(get site server)" 10.77.0.2 "server that leased the address"
# tcpdump prints one block per packet; cut it into one line per packet.
offers() {
  tr '\n' ' ' <"$tmp/offers.txt" | sed 's/\([0-9][0-9]:[0-9][0-9]:[0-9][0-9]\.[0-9]* IP \)/\n\1/g' |
    grep "DHCP-Message (53), length 1: Offer" || true
}
site_offer() { offers | grep "10.77.0.2.67 >.*Your-IP 10.77.0.1[56]" >/dev/null; }
proxy_offer() { offers | grep "10.77.0.1.67 >" | grep -v "Your-IP" | grep 'file "pxelinux.0".*PXEClient' >/dev/null; }
for _ in $(seq 100); do site_offer && proxy_offer && break; sleep 0.1; done
site_offer || fail "no address offer from dnsmasq seen by the client"
proxy_offer || fail "no ProxyDHCP offer (no address, pxelinux.0) seen by the client"
stop_server
echo "PASS"
