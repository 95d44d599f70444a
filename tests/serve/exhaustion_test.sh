#!/usr/bin/env bash
# `isoboot serve` under a resource-exhaustion attack keeps serving real
# clients. The server runs with the 1024 open files of a default systemd
# service (prlimit 1024:1024, so it cannot raise them). From one address
# (10.79.0.3) a hostile host holds 3000 idle TCP connections to the HTTP port
# (reopening those the server closes) and sends 3000 TFTP RRQs asking for
# timeout=255 that it never acknowledges (repeated while the attack lasts, so
# expired ones come back). Meanwhile a real client on another address
# (10.79.0.2) downloads the initrd with curl over HTTP and the kernel with
# tftp-hpa and curl over TFTP, each of which must give the right bytes.
# Before the per-client shares, the HTTP accept failed with EMFILE and no
# TFTP transfer socket could be opened (issue: 2000 idle connections or 1100
# RRQs used up the descriptors). Correctness only: no timing is asserted;
# the clients' own timeouts (60 s) only bound the test.
#   EXHAUSTION_CONNS / EXHAUSTION_RRQS   hostile connections / RRQs (3000)
set -euo pipefail
src=${ISOBOOT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${ISOBOOT_BIN:?set ISOBOOT_BIN to the isoboot binary}
conns=${EXHAUSTION_CONNS:-3000}
rrqs=${EXHAUSTION_RRQS:-3000}
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp exhaustion
fail_logs=("$tmp/serve.log" "$tmp/hostile.log")
srv=isb-exs-$$
cli=isb-exc-$$
pid=
hostile=
cleanup() {
  [[ -n $hostile ]] && kill "$hostile" 2>/dev/null && wait "$hostile" 2>/dev/null
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
}

"$src/scripts/make-layout-iso.sh" kiwi "$tmp/live.iso" >/dev/null
"$bin" iso cat "$tmp/live.iso" /boot/x86_64/loader/initrd >"$tmp/initrd.want"
"$bin" iso cat "$tmp/live.iso" /boot/x86_64/loader/linux >"$tmp/linux.want"
veth_pair "$srv" "$cli"
ip -n "$srv" addr add 10.79.0.1/24 dev veth-s
# The real client's address first: it is the source of curl and tftp.
ip -n "$cli" addr add 10.79.0.2/24 dev veth-c
ip -n "$cli" addr add 10.79.0.3/24 dev veth-c

ip netns exec "$srv" prlimit --nofile=1024:1024 "$bin" serve "$tmp/live.iso" \
  --interface veth-s --dhcp off >"$tmp/serve.log" 2>&1 &
pid=$!
wait_ready "$tmp/serve.log"
[[ $(prlimit --nofile --noheadings --output SOFT,HARD --pid "$pid" | tr -s ' ') == *"1024 1024"* ]] \
  || fail "server's open-file limit is not 1024: $(prlimit --nofile --pid "$pid")"

cat >"$tmp/hostile.py" <<'EOS'
# The hostile host: idle TCP connections and unacknowledged RRQs from one
# address, kept up until $2/stop exists (at most 600 s).
import os, resource, select, socket, sys, time
src, tmp, conns, rrqs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
server = "10.79.0.1"
resource.setrlimit(resource.RLIMIT_NOFILE, (conns + rrqs + 256, conns + rrqs + 256))
rrq = b"\x00\x01boot/x86_64/loader/initrd\x00octet\x00timeout\x00255\x00tsize\x000\x00"

def connect():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.setblocking(False)
    try:
        s.connect((server, 8080))
    except BlockingIOError:
        pass
    return s

tcp = [connect() for _ in range(conns)]
udp = []
for _ in range(rrqs):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((src, 0))  # a port of its own: a new session each, never ACKed
    u.setblocking(False)
    u.sendto(rrq, (server, 69))
    udp.append(u)
print("attack running", flush=True)
open(os.path.join(tmp, "attack"), "w").close()
reopened = resent = 0
deadline = time.monotonic() + 600
while time.monotonic() < deadline and not os.path.exists(os.path.join(tmp, "stop")):
    time.sleep(2)
    # Connections the server closed (EOF, reset) come back at once.
    poller = select.poll()
    by_fd = {}
    for i, s in enumerate(tcp):
        poller.register(s, select.POLLIN | select.POLLHUP | select.POLLERR)
        by_fd[s.fileno()] = i
    for fd, _ in poller.poll(0):
        i = by_fd[fd]
        try:
            gone = tcp[i].recv(1) == b""
        except BlockingIOError:
            gone = False
        except OSError:
            gone = True
        if gone:
            tcp[i].close()
            tcp[i] = connect()
            reopened += 1
    # Repeated RRQs: a duplicate while its session runs, a new one after.
    for u in udp:
        try:
            while u.recv(65536):
                pass
        except OSError:
            pass
        try:
            u.sendto(rrq, (server, 69))
            resent += 1
        except OSError:
            pass
print(f"stopped: {reopened} connections reopened, {resent} RRQs resent", flush=True)
EOS
ip netns exec "$cli" python3 "$tmp/hostile.py" 10.79.0.3 "$tmp" "$conns" "$rrqs" >"$tmp/hostile.log" 2>&1 &
hostile=$!
for _ in $(seq 300); do [[ -e $tmp/attack ]] && break; sleep 0.2; done
[[ -e $tmp/attack ]] || fail "the hostile host did not start"
sleep 3  # let the server take in the whole attack first

errors=()
if ip netns exec "$cli" curl -sS --max-time 60 -o "$tmp/initrd.http" \
  http://10.79.0.1:8080/boot/x86_64/loader/initrd 2>"$tmp/curl-http.err" &&
  cmp -s "$tmp/initrd.want" "$tmp/initrd.http"; then
  echo "http (curl): right bytes"
else
  errors+=("HTTP download failed: $(cat "$tmp/curl-http.err")")
fi
if (cd "$tmp" && ip netns exec "$cli" timeout 60 tftp -m binary 10.79.0.1 \
  -c get boot/x86_64/loader/linux linux.tftp) >"$tmp/tftp.out" 2>&1 &&
  cmp -s "$tmp/linux.want" "$tmp/linux.tftp"; then
  echo "tftp (tftp-hpa): right bytes"
else
  errors+=("TFTP download (tftp-hpa) failed: $(cat "$tmp/tftp.out")")
fi
if ip netns exec "$cli" curl -sS --max-time 60 --tftp-blksize 1468 -o "$tmp/linux.curl" \
  tftp://10.79.0.1/boot/x86_64/loader/linux 2>"$tmp/curl-tftp.err" &&
  cmp -s "$tmp/linux.want" "$tmp/linux.curl"; then
  echo "tftp (curl): right bytes"
else
  errors+=("TFTP download (curl) failed: $(cat "$tmp/curl-tftp.err")")
fi
touch "$tmp/stop"
wait "$hostile" || true
hostile=
cat "$tmp/hostile.log"
kill -0 "$pid" 2>/dev/null || errors+=("the server died")
((${#errors[@]} == 0)) || fail "$(printf '%s; ' "${errors[@]}")"
kill -TERM "$pid"
wait "$pid" || fail "serve exited with $?"
pid=
echo "exhaustion_test: $conns idle connections and $rrqs unacknowledged RRQs from one host; the real client got the right bytes over HTTP and TFTP"
