#!/usr/bin/env bash
# `isoboot serve` the way isoboot-serve@.service runs it: not root, with only
# CAP_NET_RAW and CAP_NET_BIND_SERVICE (ambient, as systemd's
# AmbientCapabilities= gives them), options from --config, a notify socket
# ($NOTIFY_SOCKET, Type=notify) and SIGHUP for `systemctl reload`. In a pair
# of network namespaces:
#   - without the capabilities, each server that needs one refuses to start
#     with one line naming the server and the capability;
#   - with them it says READY=1 only once every server answers, and from
#     then on holds no capability at all (it needed them only to bind);
#   - SIGHUP re-reads the config file: a new `append`, a new `node` (whose
#     entry only that node gets) and a new image are served at once, each
#     reload framed by RELOADING=1 and READY=1; an option that needs new
#     sockets is named as needing a restart and keeps its value; a broken
#     file or an image that AoE cannot export keeps everything as it was;
#   - SIGTERM says STOPPING=1 and exits 0.
# The previous binary has no notify socket: it fails at the first READY.
set -euo pipefail
src=${ISOBOOT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${ISOBOOT_BIN:?set ISOBOOT_BIN to the isoboot binary}
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp service
chmod 0755 "$tmp"
fail_logs=("$tmp/serve.log" "$tmp/notify.log")
srv=isb-sv-srv-$$
cli=isb-sv-cli-$$
pid=
listener=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  [[ -n $listener ]] && kill "$listener" 2>/dev/null && wait "$listener" 2>/dev/null
}

"$src/scripts/make-layout-iso.sh" kiwi "$tmp/live.iso" >/dev/null
cp "$tmp/live.iso" "$tmp/same-size.iso"
cp "$tmp/live.iso" "$tmp/other-size.iso"
truncate -s +2M "$tmp/other-size.iso"
chmod 0644 "$tmp"/*.iso
veth_pair "$srv" "$cli"
ip -n "$srv" addr add 10.79.0.1/24 dev veth-s
ip -n "$cli" addr add 10.79.0.2/24 dev veth-c
cli_mac=$(ip netns exec "$cli" cat /sys/class/net/veth-c/address)
node_entry=nodes/${cli_mac//:/-}.ipxe
mkdir "$tmp/state"
chown nobody "$tmp/state"

as_nobody=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
with_caps=(--inh-caps=+net_raw,+net_bind_service --ambient-caps=+net_raw,+net_bind_service
  --bounding-set=-all,+net_raw,+net_bind_service)

# --- without the capabilities: one line, naming the server and the capability
refusal() {  # EXPECTED-TEXT SERVE-ARGS...
  local expected=$1
  shift
  if ip netns exec "$srv" "${as_nobody[@]}" --inh-caps=-all --bounding-set=-all \
    "$bin" serve "$tmp/live.iso" --interface veth-s "$@" >"$tmp/out" 2>"$tmp/err"; then
    fail "serve $* ran without capabilities"
  fi
  [[ $(wc -l <"$tmp/err") == 1 ]] || fail "serve $*: not one line: $(cat "$tmp/err")"
  grep -qF "$expected" "$tmp/err" || fail "serve $*: expected \"$expected\", got: $(cat "$tmp/err")"
}
refusal "aoe: a packet socket on veth-s needs CAP_NET_RAW (" --announce 0
refusal "tftp: cannot bind UDP 10.79.0.1:69 (ports below 1024 need CAP_NET_BIND_SERVICE)" \
  --root http --dhcp off
refusal "dhcp: binding UDP port 67 needs CAP_NET_BIND_SERVICE" --root http --tftp-port 6969
refusal "ipv6-ra: IPv6 router advertisements need CAP_NET_RAW" --root http --tftp-port 6969 \
  --dhcp off --ipv6-ra on

# --- the notify socket: every datagram, one line each (fields joined by |)
python3 - "$tmp/notify.sock" >"$tmp/notify.log" 2>&1 <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("listening", flush=True)
s.settimeout(300)
while True:
    print(s.recv(4096).decode().replace("\n", "|"), flush=True)
EOF
listener=$!
for _ in $(seq 50); do
  grep -q listening "$tmp/notify.log" && break
  sleep 0.1
done
chmod 0777 "$tmp/notify.sock"  # nobody sends to it
notified() {  # COUNT PATTERN: waits until the COUNT-th line matching PATTERN
  local _
  for _ in $(seq 100); do
    (($(grep -c -- "$2" "$tmp/notify.log") >= $1)) && return 0
    sleep 0.1
  done
  fail "no notification $2 (#$1)"
}

config=$tmp/test.toml
write_config() {  # IMAGE EXTRA-LINES
  cat >"$config" <<EOF
image = "$1"
interface = "veth-s"
dhcp = "full"
dhcp-range = "10.79.0.100,10.79.0.120"
lease-file = "$tmp/state/leases"
announce = 0
ipv6-ra = "off"
$2
EOF
}
write_config "$tmp/live.iso" 'append = "console=ttyS0"'
NOTIFY_SOCKET=$tmp/notify.sock ip netns exec "$srv" "${as_nobody[@]}" "${with_caps[@]}" \
  "$bin" serve --config "$config" >"$tmp/serve.log" 2>&1 &
pid=$!
notified 1 "^READY=1|STATUS=serving $tmp/live.iso: HTTP, AoE e0.1, TFTP, DHCP (full)"
# READY means serving: no waiting after it.
http() { ip netns exec "$cli" curl -sf --max-time 10 "http://10.79.0.1:8080/$1"; }
http boot.ipxe >"$tmp/boot.ipxe" || fail "HTTP does not answer at READY"
grep -q "console=ttyS0" "$tmp/boot.ipxe" || fail "boot.ipxe lacks the config's append"

status=$(cat "/proc/$pid/status")
field() { sed -n "s/^$1:[[:space:]]*//p" <<<"$status"; }
[[ $(field Uid) == $'65534\t65534\t65534\t65534' ]] || fail "uids: $(field Uid)"
for cap in CapInh CapPrm CapEff CapAmb; do
  [[ $(field $cap) == 0000000000000000 ]] || fail "$cap is $(field $cap) once serving"
done
[[ $(field NoNewPrivs) == 1 ]] || fail "no_new_privs is not set"
[[ $(field Seccomp) == 2 ]] || fail "no seccomp filter"
grep -q "keeping no capabilities\|no capabilities" "$tmp/serve.log" ||
  fail "the log does not say the capabilities were dropped"

# The sockets bound with the capabilities still serve: a PXE lease and TFTP.
lease=$(dhcp_lease "$cli" veth-c "${pxe_bios[@]}")
[[ $lease == "ip=10.79.0.1"[0-2][0-9]" boot_file=undionly.kpxe siaddr=10.79.0.1" ]] ||
  fail "no PXE lease: $lease"
(cd "$tmp" && ip netns exec "$cli" timeout 30 tftp -m binary 10.79.0.1 -c get boot.ipxe b.tftp)
cmp -s "$tmp/b.tftp" "$tmp/boot.ipxe" || fail "TFTP served another boot.ipxe"
ip netns exec "$cli" curl -s -o /dev/null --max-time 10 -w '%{http_code}' \
  "http://10.79.0.1:8080/$node_entry" >"$tmp/code" || true
[[ $(cat "$tmp/code") == 404 ]] || fail "a node entry exists before any node: $(cat "$tmp/code")"

# --- SIGHUP: append, a node and the image are reloaded
write_config "$tmp/same-size.iso" "append = \"console=ttyS1 reloaded=1\"
node = [\"$cli_mac=hostname=node-a\"]"
kill -HUP "$pid"
notified 1 "^RELOADING=1|MONOTONIC_USEC=[0-9]*$"
notified 1 "^READY=1|STATUS=reloaded: $tmp/same-size.iso"
http boot.ipxe >"$tmp/boot2.ipxe"
grep -q "console=ttyS1 reloaded=1" "$tmp/boot2.ipxe" || fail "append not reloaded: $(cat "$tmp/boot2.ipxe")"
http "$node_entry" >"$tmp/node.ipxe" || fail "the new node's entry is not served"
grep -q "hostname=node-a" "$tmp/node.ipxe" || fail "the node entry lacks its arguments"
grep -q "reloaded: $tmp/same-size.iso" "$tmp/serve.log" || fail "the log does not say what was reloaded"

# An option that needs new sockets: named, not applied; the rest still is.
write_config "$tmp/live.iso" 'http-port = 8081
append = "third=3"'
kill -HUP "$pid"
notified 1 "^READY=1|STATUS=reloaded: $tmp/live.iso"
grep "^READY=1|STATUS=reloaded: $tmp/live.iso" "$tmp/notify.log" | tail -1 |
  grep -q "changed but not applied until a restart: http-port" || fail "http-port not named"
http boot.ipxe | grep -q "third=3" || fail "append not reloaded beside an ignored option"

# A broken file, and an image AoE cannot export (another size): nothing changes.
printf 'image = "%s"\nappend = \n' "$tmp/live.iso" >"$config"
kill -HUP "$pid"
notified 1 "^READY=1|STATUS=reload failed, still serving as before: --config: $config:2"
write_config "$tmp/other-size.iso" 'append = "fourth=4"'
kill -HUP "$pid"
notified 2 "^READY=1|STATUS=reload failed, still serving as before: "
grep "^READY=1|STATUS=reload failed" "$tmp/notify.log" | tail -1 | grep -q "size changed" ||
  fail "the size refusal does not say why: $(tail -1 "$tmp/notify.log")"
http boot.ipxe | grep -q "third=3" || fail "a failed reload changed what is served"
(($(grep -c "^RELOADING=1" "$tmp/notify.log") == 4)) || fail "not one RELOADING=1 per SIGHUP"

# --- SIGTERM
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
((rc == 0)) || fail "exit status $rc after SIGTERM"
notified 1 "^STOPPING=1$"
echo "service test: ok"
