#!/usr/bin/env bash
# Every system call `isoboot serve` makes is one that isoboot-serve@.service's
# SystemCallFilter= lets through. systemd is not PID 1 on CI machines, so the
# unit's filter never runs there; instead this traces serve (strace -f) as
# the unit runs it: not root, with only the unit's capabilities, from
# --config, with a notify socket, through a PXE lease, TFTP and HTTP
# downloads, AoE reads (aoe-stat/the kernel's aoe driver would need a
# second host; an AoE discovery from a packet socket suffices to run the
# data path), a SIGHUP reload and a SIGTERM, and checks each call's name
# against the filter as systemd resolves it: the unit's SystemCallFilter=
# lines in order, groups expanded by `systemd-analyze syscall-filter`
# (systemd's own tables). A call the unit does not allow would be EPERM
# (SystemCallErrorNumber=) under systemd: a server that cannot start or
# breaks later.
set -euo pipefail
src=${ISOBOOT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${ISOBOOT_BIN:?set ISOBOOT_BIN to the isoboot binary}
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp unit-syscalls
chmod 0755 "$tmp"
fail_logs=("$tmp/serve.log")
unit=$src/contrib/systemd/isoboot-serve@.service
srv=isb-us-srv-$$
cli=isb-us-cli-$$
pid=       # strace
serve_pid= # serve, strace's child
cleanup() {
  # serve first: strace killed alone would leave it running, detached.
  [[ -n $serve_pid ]] && kill "$serve_pid" 2>/dev/null
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  return 0
}

"$src/scripts/make-layout-iso.sh" kiwi "$tmp/live.iso" >/dev/null
chmod 0644 "$tmp/live.iso"
veth_pair "$srv" "$cli"
ip -n "$srv" addr add 10.77.0.1/24 dev veth-s
ip -n "$cli" addr add 10.77.0.2/24 dev veth-c
mkdir "$tmp/state"
chown nobody "$tmp/state"
cat >"$tmp/test.toml" <<EOF
image = "$tmp/live.iso"
interface = "veth-s"
dhcp = "full"
dhcp-range = "10.77.0.100,10.77.0.120"
lease-file = "$tmp/state/leases"
backup-dir = "$tmp/state/backups"
ipv6-ra = "on"
EOF

# The unit's capabilities, as AmbientCapabilities= gives them.
caps=+net_raw,+net_bind_service
# LeakSanitizer cannot run under ptrace (a sanitizer build's leaks are the
# other tests' business).
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
  ip netns exec "$srv" strace -f -qq -o "$tmp/trace" \
  setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=$caps --ambient-caps=$caps \
  --bounding-set=-all,$caps --no-new-privs \
  "$bin" serve --config "$tmp/test.toml" >"$tmp/serve.log" 2>&1 &
pid=$!
for _ in $(seq 50); do  # setpriv exec's serve in strace's child
  serve_pid=$(tr -d " " <"/proc/$pid/task/$pid/children" 2>/dev/null || true)
  [[ -n $serve_pid && $(readlink "/proc/$serve_pid/exe") == "$(readlink -f "$bin")" ]] && break
  sleep 0.1
done
wait_ready "$tmp/serve.log"
[[ $(readlink "/proc/$serve_pid/exe") == "$(readlink -f "$bin")" ]] || fail "serve's PID not found"

[[ -n $(dhcp_lease "$cli" veth-c "${pxe_bios[@]}") ]] || fail "no DHCP lease"
(cd "$tmp" && ip netns exec "$cli" timeout 30 tftp -m binary 10.77.0.1 -c get boot/x86_64/loader/linux k)
ip netns exec "$cli" curl -sf --max-time 20 -o /dev/null http://10.77.0.1:8080/live.iso ||
  fail "HTTP download"
ip netns exec "$cli" curl -sf --max-time 20 -o /dev/null -r 1000-9999 \
  http://10.77.0.1:8080/live.iso || fail "HTTP range"
# An AoE query config and a read of sector 0, from a packet socket.
ip netns exec "$cli" python3 - <<'EOF' || fail "AoE"
import socket, struct
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88A2))
s.bind(("veth-c", 0))
s.settimeout(5)
mac = s.getsockname()[4]
bcast = b"\xff" * 6
def frame(cmd, tag, body):
    return bcast + mac + struct.pack("!HBBHBBI", 0x88A2, 0x10, 0, 0, 1, cmd, tag) + body
s.send(frame(1, 1, struct.pack("!HHBBH", 0, 0, 0, 0, 0)))  # query config
ata = struct.pack("!BBBB6sH", 0x40, 0, 1, 0x24, b"\0" * 6, 0)  # read sector 0 (LBA48)
s.send(frame(0, 2, ata))
seen = set()
for _ in range(20):
    r = s.recv(2000)
    if r[12:14] == b"\x88\xa2" and r[14] & 0x08:  # a response
        seen.add(struct.unpack("!I", r[20:24])[0])
    if seen >= {1, 2}:
        break
assert seen >= {1, 2}, seen
EOF
# A backup stored (the store writes files and renames them).
head -c 65536 /dev/urandom >"$tmp/blob"
token=$(cat "$tmp/state/backups/.token")
ip netns exec "$cli" curl -s --max-time 20 -o /dev/null -H "Authorization: Bearer $token" \
  -T "$tmp/blob" http://10.77.0.1:8080/overlay/probe || true
kill -HUP "$serve_pid"
for _ in $(seq 50); do
  grep -q "reloaded:" "$tmp/serve.log" && break
  sleep 0.1
done
grep -q "reloaded:" "$tmp/serve.log" || fail "no reload"
kill -TERM "$serve_pid"
wait "$pid" || fail "serve did not exit 0"
pid= serve_pid=

# The calls made once isoboot was executed (setpriv's own come before).
python3 - "$tmp/trace" "$bin" "$unit" <<'EOF' || fail "a system call outside the unit's filter"
import re, subprocess, sys
trace, binary, unit = sys.argv[1:]
used, started = {}, False
for line in open(trace, errors="replace"):
    m = re.match(r"(\d+)\s+(?:<\.\.\. )?([a-z_0-9]+)[( ]", line)
    if not m:
        continue
    if not started:
        started = m.group(2) == "execve" and binary in line
        continue
    if "resumed>" in line and "<..." not in line:
        continue
    used.setdefault(m.group(2), line.strip())
assert started, "no execve of the binary in the trace"
assert len(used) > 20, "implausibly few calls: %s" % sorted(used)

groups, current = {}, None
for line in subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True,
                           text=True, check=True).stdout.splitlines():
    s = line.strip()
    if not s or s.startswith("#"):
        continue
    if not line.startswith(" "):
        current = s
        groups[current] = []
    elif current:
        groups[current].append(s)
def expand(names, seen=()):
    out = set()
    for n in names:
        if n.startswith("@"):
            if n not in seen:
                out |= expand(groups[n], seen + (n,))
        else:
            out.add(n)
    return out

allowed = None
for line in open(unit):
    m = re.match(r"SystemCallFilter=(~?)(.*)", line.strip())
    if not m:
        continue
    names = expand(m.group(2).split())
    if allowed is None:
        assert not m.group(1), "the unit's filter is a deny list"
        allowed = names
    elif m.group(1):
        allowed -= names
    else:
        allowed |= names
assert allowed, "no SystemCallFilter= in " + unit
# systemd.exec(5): always permitted, whatever the filter.
always = {"execve", "exit", "exit_group", "getrlimit", "rt_sigreturn", "sigreturn"}
missing = sorted(n for n in used if n not in allowed and n not in always)
print("%d distinct system calls, all in the unit's filter" % len(used) if not missing else "")
for n in missing:
    print("not allowed by the unit: %s, e.g. %s" % (n, used[n]))
sys.exit(1 if missing else 0)
EOF
echo "unit syscalls test: ok"
