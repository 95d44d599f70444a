#!/usr/bin/env bash
# A QEMU client (SeaBIOS + iPXE ROM) boots through a router: its segment (a
# bridge and a tap) sits in a router namespace that forwards to the server's
# subnet and runs ISC dhcrelay; `isoboot serve --dhcp full` in the server
# namespace leases from the client subnet's range by giaddr. The client must
# get boot.ipxe, the kernel and the initrd over HTTP through the router, and
# start the kernel.
#
#   ROUTED_ISO   the image (default: the cached KIWI ISO, tests/image/build-kiwi-live.sh)
#   ROUTED_ROOT  --root for serve (default aoe). With aoe, serve must also say
#                in one line that AoE cannot cross the router. With
#                ROUTED_LIVE=1 the live root must print ISOBOOT-LIVE-OK too
#                (needs an initrd that fetches its root over HTTP).
set -euo pipefail
src=${ISOBOOT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${ISOBOOT_BIN:?ISOBOOT_BIN must name the isoboot binary}
# shellcheck source=tests/lib.sh
source "$src/tests/lib.sh"
# shellcheck source=tests/qemu/lib.sh
source "$src/tests/qemu/lib.sh"
iso=${ROUTED_ISO:-$("$src/tests/image/build-kiwi-live.sh" "${KIWI_CACHE:-/var/cache/isoboot/kiwi}")}
root=${ROUTED_ROOT:-aoe}
timeout=${ROUTED_TIMEOUT:-300}
test_tmp routed
fail_logs=("$tmp/serve.log" "$tmp/relay.log" "$tmp/console")
rtr=isb-qr-$$ srv=isb-qs-$$
pid='' relay_pid=''
QEMU_PID=''
cleanup() {
  qemu_stop_pid "$QEMU_PID"
  qemu_stop_pid "$relay_pid"
  qemu_stop_pid "$pid"
}
# The router namespace holds the client's segment: bridge br0 (10.77.2.1)
# with the guest's tap; r-up (10.77.1.254) faces the server.
qemu_netns_setup "$rtr" br0 tap0
_netns_made+=("$rtr")  # lib.sh deletes it on exit
ip netns add "$srv"
_netns_made+=("$srv")
ip -n "$srv" link set lo up
ip link add r-up netns "$rtr" type veth peer name s0 netns "$srv"
ip -n "$rtr" link set r-up up
ip -n "$srv" link set s0 up
ip -n "$rtr" addr add 10.77.2.1/24 dev br0
ip -n "$rtr" addr add 10.77.1.254/24 dev r-up
ip netns exec "$rtr" sysctl -qw net.ipv4.ip_forward=1
ip -n "$srv" addr add 10.77.1.1/24 dev s0
ip -n "$srv" route add 10.77.2.0/24 via 10.77.1.254

ip netns exec "$srv" "$bin" serve "$iso" --interface s0 --dhcp full \
  --dhcp-range 10.77.1.100,10.77.1.120 --dhcp-range 10.77.2.100,10.77.2.150 \
  --lease-file "$tmp/leases" --root "$root" --append console=ttyS0 >"$tmp/serve.log" 2>&1 &
pid=$!
wait_ready "$tmp/serve.log"
ip netns exec "$rtr" dhcrelay -4 -d -a --no-pid -id br0 -iu r-up 10.77.1.1 >"$tmp/relay.log" 2>&1 &
relay_pid=$!
for _ in $(seq 50); do grep -q "^Sending on" "$tmp/relay.log" && break; sleep 0.2; done
grep -q "^Sending on" "$tmp/relay.log" || fail "dhcrelay did not start"

args=()
qemu_netboot_args args tap0 52:54:00:12:34:77 bios
qemu_start "$rtr" "$tmp/console" "${args[@]}"
t0=$SECONDS
marker="Linux version"
[[ ${ROUTED_LIVE:-0} == 1 ]] && marker="ISOBOOT-LIVE-(OK|FAIL)"
status=0
qemu_wait_line "$tmp/console" "$marker" "$timeout" || status=$?
((status == 0)) || fail "no '$marker' on the console within ${timeout}s (status $status)"
echo "'$marker' after $((SECONDS - t0)) s"
if [[ ${ROUTED_LIVE:-0} == 1 ]]; then
  qemu_wait_marker "$tmp/console" "ISOBOOT-LIVE-(OK|FAIL)" 10 || true
  grep -qa "ISOBOOT-LIVE-OK" "$tmp/console" || fail "the live root did not come up"
fi
qemu_stop_pid "$QEMU_PID"
QEMU_PID=''

# QEMU's NIC ROM is iPXE already: it is sent boot.ipxe at once (TFTP through
# the router is checked by tests/dhcp/relay_test.sh).
grep -q "DHCPACK 10\.77\.2\.1[0-5][0-9], boot file http://10.77.1.1:8080/boot.ipxe .* via relay 10.77.2.1" \
  "$tmp/serve.log" || fail "iPXE was not sent boot.ipxe through the relay"
for f in boot.ipxe boot/x86_64/loader/linux boot/x86_64/loader/initrd; do
  grep -Eq "http.* GET /$f 20[06]" "$tmp/serve.log" || fail "$f not fetched over HTTP"
done
if [[ $root == aoe ]]; then
  grep -q "52:54:00:12:34:77: relayed through 10.77.2.1: AoE (--root aoe) does not cross a router" \
    "$tmp/serve.log" || fail "no AoE refusal line"
  echo "aoe: refused in one line"
else
  grep -q "does not cross a router" "$tmp/serve.log" && fail "--root $root warned about AoE"
fi
echo "1 passed, 0 failed"
