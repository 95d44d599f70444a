# shellcheck shell=bash
# The boot storm's test bed, shared by bench/storm_bench.sh and
# tests/storm/storm_test.sh: two network namespaces joined by a veth pair,
# the boot servers in one, the storm client in the other, and the two
# stacks the storm runs against. Source it, set STORM_DIR (scratch) and
# call storm_net_up; storm_cleanup (the EXIT trap) stops what was started
# here, by PID, and removes the namespaces.
#
#   $STORM_NS_SRV  veth-s 10.89.0.1/16: isoboot, or dnsmasq + vblade + nginx
#   $STORM_NS_CLI  veth-c 10.89.0.2/16 and the lease range 10.89.4.0/22
#                  routed to itself ("local" route on lo), so the nodes'
#                  TFTP and HTTP sockets bind their leased addresses; it
#                  ignores pings (a node that is still booting does not
#                  answer dnsmasq's ping check), and the server reaches the
#                  range through 10.89.0.2 (one neighbour entry, not one per
#                  node; the kernel's table is shared by all namespaces)
STORM_RANGE_LO=10.89.4.1
STORM_RANGE_HI=10.89.7.254
STORM_SERVER_IP=10.89.0.1
STORM_HTTP_PORT=8080
STORM_PIDS=()

storm_net_up() {
  STORM_NS_SRV=stsrv$$
  STORM_NS_CLI=stcli$$
  ip netns add "$STORM_NS_SRV"
  ip netns add "$STORM_NS_CLI"
  ip -n "$STORM_NS_SRV" link set lo up
  ip -n "$STORM_NS_CLI" link set lo up
  ip link add veth-s netns "$STORM_NS_SRV" type veth peer name veth-c netns "$STORM_NS_CLI"
  ip -n "$STORM_NS_SRV" addr add "$STORM_SERVER_IP/16" dev veth-s
  ip -n "$STORM_NS_CLI" addr add 10.89.0.2/16 dev veth-c
  ip -n "$STORM_NS_SRV" link set veth-s up
  ip -n "$STORM_NS_CLI" link set veth-c up
  ip -n "$STORM_NS_CLI" route add local 10.89.4.0/22 dev lo table local
  ip -n "$STORM_NS_SRV" route add 10.89.4.0/22 via 10.89.0.2 dev veth-s
  ip netns exec "$STORM_NS_CLI" sysctl -qw net.ipv4.icmp_echo_ignore_all=1
  ip netns exec "$STORM_NS_CLI" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  # Wait for the link (veth carrier) so the first DISCOVERs are not lost.
  for _ in $(seq 50); do
    ip -n "$STORM_NS_CLI" link show veth-c | grep -q LOWER_UP && break
    sleep 0.1
  done
}

storm_cleanup() {
  storm_stop_servers
  [[ -n ${STORM_NS_SRV:-} ]] && ip netns del "$STORM_NS_SRV" 2>/dev/null
  [[ -n ${STORM_NS_CLI:-} ]] && ip netns del "$STORM_NS_CLI" 2>/dev/null
  return 0
}

# Starts CMD... in the server namespace on CPU $STORM_SERVER_CPU (default 0),
# output to LOG; its PID goes to STORM_PIDS (ip netns exec execs, so $! is
# the server itself).
storm_bg() {  # LOG CMD...
  local log=$1
  shift
  taskset -c "${STORM_SERVER_CPU:-0}" ip netns exec "$STORM_NS_SRV" "$@" >"$log" 2>&1 &
  STORM_PIDS+=($!)
}
storm_stop_servers() {
  local pid
  for pid in "${STORM_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${STORM_PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  STORM_PIDS=()
}
storm_wait_port() {  # TCP PORT listening in the server namespace
  for _ in $(seq 100); do
    ip netns exec "$STORM_NS_SRV" ss -Hltn "sport = :$1" | grep -q LISTEN && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  return 1
}

# Every PID of the server processes: those started and their children
# (nginx workers).
storm_server_pids() {
  local pid
  for pid in "${STORM_PIDS[@]}"; do
    echo "$pid"
    pgrep -P "$pid" || true
  done
}
# Clock ticks the servers have run (user + system, children reaped included).
storm_server_ticks() {
  local pid sum=0 t
  for pid in $(storm_server_pids); do
    t=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$pid/stat" 2>/dev/null || echo 0)
    sum=$((sum + t))
  done
  echo "$sum"
}
# Peak resident set of the servers, KiB: the sum of each process's VmHWM
# (an upper bound of their peak together).
storm_server_hwm_kib() {
  local pid sum=0 k
  for pid in $(storm_server_pids); do
    k=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    sum=$((sum + ${k:-0}))
  done
  echo "$sum"
}

# isoboot serve with full DHCP over the lease range.
storm_start_isoboot() {  # BIN ISO DIR [EXTRA ARGS]
  local bin=$1 iso=$2 dir=$3
  shift 3
  storm_bg "$dir/isoboot.log" "$bin" serve "$iso" --interface veth-s --dhcp full \
    --dhcp-range "$STORM_RANGE_LO,$STORM_RANGE_HI,255.255.0.0" --lease-file "$dir/isoboot.leases" \
    --http-port "$STORM_HTTP_PORT" "$@"
  for _ in $(seq 100); do grep -q "ready:" "$dir/isoboot.log" && return 0; sleep 0.1; done
  echo "isoboot did not start:" >&2
  tail -20 "$dir/isoboot.log" >&2
  return 1
}

# KIWI's documented stack: dnsmasq for DHCP and TFTP (undionly.kpxe for BIOS,
# ipxe.efi for UEFI, the boot.ipxe URL for iPXE), vblade exporting the ISO as
# e0.1, nginx serving boot.ipxe and the kernel and initrd copied out of the
# ISO. dnsmasq's limits are raised for the storm: --tftp-max (50 by default)
# and --dhcp-lease-max (1000) to 5000, as an operator of such a cluster would.
storm_reference_files() {  # ISO DIR
  local iso=$1 root=$2/ref
  mkdir -p "$root/tftp" "$root/www/boot"
  osirrox -indev "$iso" -extract /boot/x86_64/loader/linux "$root/www/boot/linux" \
    -extract /boot/x86_64/loader/initrd "$root/www/boot/initrd" >/dev/null 2>&1
  cp /usr/lib/ipxe/undionly.kpxe /usr/lib/ipxe/ipxe.efi "$root/tftp/"
  cat >"$root/www/boot.ipxe" <<IPXE
#!ipxe
kernel http://$STORM_SERVER_IP:$STORM_HTTP_PORT/boot/linux initrd=initrd rd.kiwi.live.pxe root=live:AOEINTERFACE=e0.1 console=ttyS0 || goto failed
initrd --name initrd http://$STORM_SERVER_IP:$STORM_HTTP_PORT/boot/initrd || goto failed
boot || goto failed
:failed
echo boot failed
IPXE
  cat >"$root/nginx.conf" <<NGINX
daemon off;
master_process on;
worker_processes auto;
user root;
pid $root/nginx.pid;
error_log $root/nginx-error.log warn;
events { worker_connections 8192; }
worker_rlimit_nofile 16384;
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 65;
  default_type application/octet-stream;
  client_body_temp_path $root/tmp;
  proxy_temp_path $root/tmp;
  fastcgi_temp_path $root/tmp;
  uwsgi_temp_path $root/tmp;
  scgi_temp_path $root/tmp;
  server {
    listen $STORM_SERVER_IP:$STORM_HTTP_PORT backlog=4096;
    root $root/www;
  }
}
NGINX
  mkdir -p "$root/tmp"
}
storm_start_reference() {  # ISO DIR
  local iso=$1 dir=$2 root=$2/ref
  [[ -f $root/nginx.conf ]] || storm_reference_files "$iso" "$dir"
  storm_bg "$dir/vblade.log" vblade 0 1 veth-s "$iso"
  # shellcheck disable=SC2086
  storm_bg "$dir/dnsmasq.log" dnsmasq --no-daemon --conf-file=/dev/null --port=0 \
    --interface=veth-s --bind-interfaces \
    --dhcp-range="$STORM_RANGE_LO,$STORM_RANGE_HI,255.255.0.0,12h" \
    --dhcp-leasefile="$dir/dnsmasq.leases" --dhcp-lease-max=5000 \
    --dhcp-match=set:efi,option:client-arch,7 --dhcp-userclass=set:ipxe,iPXE \
    --dhcp-boot=tag:ipxe,"http://$STORM_SERVER_IP:$STORM_HTTP_PORT/boot.ipxe" \
    --dhcp-boot=tag:!ipxe,tag:efi,ipxe.efi --dhcp-boot=tag:!ipxe,tag:!efi,undionly.kpxe \
    --enable-tftp --tftp-root="$root/tftp" --tftp-max=5000 ${STORM_DNSMASQ_ARGS:-}  # word splitting wanted
  storm_bg "$dir/nginx.log" nginx -c "$root/nginx.conf" -p "$root"
  storm_wait_port "$STORM_HTTP_PORT"
  sleep 0.5
}

# Runs the storm client in the client namespace on CPU $STORM_CLIENT_CPU
# (default 1); its RESULT line is the last line of OUT.
storm_run() {  # STORM_BIN OUT ARGS...
  local storm=$1 out=$2
  shift 2
  taskset -c "${STORM_CLIENT_CPU:-1}" ip netns exec "$STORM_NS_CLI" "$storm" -i veth-c "$@" >"$out" 2>"$out.err"
}

# Builds the storm client into DIR/storm (what bench/storm/Makefile does,
# without needing make).
storm_build() {  # DIR
  "${CC:-cc}" -O2 -std=gnu11 -Wall -Wextra -Werror -o "$1/storm" "$(dirname "${BASH_SOURCE[0]}")/storm.c"
}
