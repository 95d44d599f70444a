#!/usr/bin/env bash
# A QEMU client (SeaBIOS + iPXE ROM) boots through a router: its segment (a
# bridge and a tap) sits in a router namespace that forwards to the server's
# subnet and runs ISC dhcrelay; `isoboot serve --dhcp full` in the server
# namespace leases from the client subnet's range by giaddr. The client gets
# boot.ipxe, the kernel and the initrd over HTTP through the router, and then
# its root. Paths (ROUTED_PATHS, space separated):
#   dracut-http  the dracut live ISO (tests/image/build-dracut-live.sh), root
#                over HTTP (livenet fetches LiveOS/squashfs.img), to the live
#                root's ISOBOOT-LIVE-OK
#   dracut-nbd   the same ISO with its root over NBD from serve's own export
#                (--root nbd: dracut's nbd module + dmsquash-live), to the
#                marker, with proof the root is on /dev/nbd0
#   kiwi-aoe     the KIWI ISO with --root aoe: the kernel starts, and serve
#                says in one line that AoE cannot cross the router (not by
#                default: tests/dhcp/relay_test.sh checks that line)
set -euo pipefail
src=${ISOBOOT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${ISOBOOT_BIN:?ISOBOOT_BIN must name the isoboot binary}
# shellcheck source=tests/lib.sh
source "$src/tests/lib.sh"
# shellcheck source=tests/qemu/lib.sh
source "$src/tests/qemu/lib.sh"
paths=${ROUTED_PATHS:-dracut-http dracut-nbd}
timeout=${ROUTED_TIMEOUT:-420}
kiwi_cache=${KIWI_CACHE:-/var/cache/isoboot/kiwi}
# livenet downloads its squashfs into RAM (tmpfs).
export QEMU_MEM=${QEMU_MEM:-1024}
test_tmp routed
fail_logs=()
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

ip netns exec "$rtr" dhcrelay -4 -d -a --no-pid -id br0 -iu r-up 10.77.1.1 >"$tmp/relay.log" 2>&1 &
relay_pid=$!
for _ in $(seq 50); do grep -q "^Sending on" "$tmp/relay.log" && break; sleep 0.2; done
grep -q "^Sending on" "$tmp/relay.log" || fail "dhcrelay did not start"

declare -A seconds=()
failures=0
path_failed() {
  echo "FAIL $1: $2"
  failures=$((failures + 1))
}
for path in $paths; do
  case $path in
    dracut-http | dracut-nbd) iso=$("$src/tests/image/build-dracut-live.sh" "$kiwi_cache") ;;
    kiwi-aoe) iso=$("$src/tests/image/build-kiwi-live.sh" "$kiwi_cache") ;;
    *) fail "unknown path $path" ;;
  esac
  root=${path#*-}
  log=$tmp/$path.serve.log console=$tmp/$path.console
  fail_logs=("$log" "$tmp/relay.log" "$console")
  echo "== $path ($iso, --root $root)"
  rm -f "$tmp/leases"
  ip netns exec "$srv" "$bin" serve "$iso" --interface s0 --dhcp full \
    --dhcp-range 10.77.1.100,10.77.1.120 --dhcp-range 10.77.2.100,10.77.2.150 \
    --lease-file "$tmp/leases" --root "$root" --append console=ttyS0 >"$log" 2>&1 &
  pid=$!
  wait_ready "$log"
  args=()
  qemu_netboot_args args tap0 52:54:00:12:34:77 bios
  qemu_start "$rtr" "$console" "${args[@]}"
  t0=$SECONDS
  marker="ISOBOOT-LIVE-(OK|FAIL)"
  [[ $path == kiwi-aoe ]] && marker="Linux version"
  status=0
  qemu_wait_line "$console" "$marker" "$timeout" || status=$?
  if ((status != 0)); then
    path_failed "$path" "no '$marker' on the console within ${timeout}s (status $status); console tail:"
    tail -30 "$console" | cut -c1-200
  else
    seconds[$path]=$((SECONDS - t0))
    echo "'$marker' after ${seconds[$path]} s"
  fi
  if [[ $path != kiwi-aoe ]]; then
    qemu_wait_marker "$console" "ISOBOOT-LIVE-(OK|FAIL)" 10 || true
    grep -qa "ISOBOOT-LIVE-OK" "$console" || path_failed "$path" "the live root did not come up"
    grep -a "^ISOBOOT-LIVE-" "$console" | cut -c1-200 || true
  fi
  qemu_stop_pid "$QEMU_PID"
  QEMU_PID=''
  qemu_stop_pid "$pid"
  pid=''

  # QEMU's NIC ROM is iPXE already: it is sent boot.ipxe at once (TFTP
  # through the router is checked by tests/dhcp/relay_test.sh).
  grep -q "DHCPACK 10\.77\.2\.1[0-5][0-9], boot file http://10.77.1.1:8080/boot.ipxe .* via relay 10.77.2.1" \
    "$log" || path_failed "$path" "iPXE was not sent boot.ipxe through the relay"
  kernel=$(sed -nE 's/.*: kernel ([^,]+), initrd ([^ ]+)$/\1/p' "$log" | head -n1)
  initrd=$(sed -nE 's/.*: kernel ([^,]+), initrd ([^ ]+)$/\2/p' "$log" | head -n1)
  for f in boot.ipxe "$kernel" "$initrd"; do
    grep -Eq "http.* GET /$f 20[06]" "$log" || path_failed "$path" "'$f' not fetched over HTTP"
  done
  case $path in
    kiwi-aoe)
      grep -q "52:54:00:12:34:77: relayed through 10.77.2.1: AoE (--root aoe) does not cross a router" \
        "$log" || path_failed "$path" "no AoE refusal line"
      ;;
    dracut-http)
      grep -Eq "http.* GET /LiveOS/squashfs.img 200" "$log" || path_failed "$path" "the squashfs was not fetched"
      grep -q "does not cross a router" "$log" && path_failed "$path" "--root http warned about AoE"
      ;;
    dracut-nbd)
      # Proof the root is on the NBD device, and serve's export served it.
      grep -qaE "ISOBOOT-LIVE-NBD: nbd0 $(stat -c %s "$iso") bytes" "$console" ||
        path_failed "$path" "the live root is not on /dev/nbd0 with the image's size"
      grep -Eq "nbd: 10\.77\.2\.1[0-5][0-9]:[0-9]+ (closed|lost) export '.*' after [1-9][0-9]* requests" "$log" ||
        grep -Eq "nbd: 10\.77\.2\.1[0-5][0-9]:[0-9]+ reads export" "$log" ||
        path_failed "$path" "serve's NBD export was not read by the routed client"
      grep -q "does not cross a router" "$log" && path_failed "$path" "--root nbd warned about AoE"
      ;;
  esac
done

echo "== routed boot times (QEMU start to marker, software emulation, BIOS + iPXE, through dhcrelay)"
for path in $paths; do
  printf '%-12s %s\n' "$path" "${seconds[$path]:+${seconds[$path]} s}"
done
echo "$((${#seconds[@]})) passed, $failures failed"
((failures == 0))
