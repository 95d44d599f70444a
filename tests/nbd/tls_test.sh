#!/usr/bin/env bash
# NBD over TLS (NBD_OPT_STARTTLS) against peers nobody here wrote, inside a
# private network namespace (loopback only): a CA and certificates made by
# GnuTLS's certtool; libnbd's nbdinfo and nbdcopy (nbds:// URIs), QEMU's
# qemu-img with a tls-creds-x509 object, nbd-client -l with -A/-H (the kernel
# client's tool; attaching /dev/nbdX needs the nbd module, which the test
# machine's kernel may lack). Then `--tls require`'s refusals (plaintext
# clients, EXPORT_NAME, STARTTLS with data or twice, a client that starts TLS
# and stalls or sends garbage: dropped within the handshake timeout and
# counted while others are served), `--tls on` (both kinds of client),
# `--tls-verify-peer` (client certificates), `--tls off` (nbds:// fails), and
# the one-line startup errors for bad credential directories; last `isoboot
# serve --root nbd --nbd-tls require` as nobody under its seccomp filter.
set -euo pipefail
: "${ISOBOOT_BIN:?}" "${ISOBOOT_TEST_TMP:=/tmp}"
src=${ISOBOOT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
ns="isoboot-nbdtls-$$"
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp nbd-tls
dir=$tmp
pid=
idle_pid=
cleanup() {
  [[ -n $idle_pid ]] && kill "$idle_pid" 2>/dev/null && wait "$idle_pid" 2>/dev/null
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  ip netns del "$ns" 2>/dev/null || true
}
in_ns() { ip netns exec "$ns" "$@"; }
ip netns add "$ns"
ip -n "$ns" link set lo up

# --- credentials: a CA, a server certificate for 127.0.0.1/localhost, a
# client certificate, and an unrelated key.
pki=$dir/pki
mkdir -p "$pki" "$dir/srv" "$dir/cli" "$dir/cli-cert" "$dir/other-ca" "$dir/mismatch"
key() { certtool --generate-privkey --key-type=ecdsa --outfile "$1" 2>/dev/null; }
key "$pki/ca-key.pem"
cat >"$pki/ca.info" <<'EOF'
cn = isoboot test CA
ca
cert_signing_key
expiration_days = 3
EOF
certtool --generate-self-signed --load-privkey "$pki/ca-key.pem" --template "$pki/ca.info" \
  --outfile "$pki/ca-cert.pem" 2>/dev/null
key "$dir/srv/server-key.pem"
cat >"$pki/server.info" <<'EOF'
organization = isoboot test
cn = localhost
dns_name = localhost
ip_address = 127.0.0.1
ip_address = 10.79.0.1
tls_www_server
encryption_key
signing_key
expiration_days = 3
EOF
certtool --generate-certificate --load-privkey "$dir/srv/server-key.pem" \
  --load-ca-certificate "$pki/ca-cert.pem" --load-ca-privkey "$pki/ca-key.pem" \
  --template "$pki/server.info" --outfile "$dir/srv/server-cert.pem" 2>/dev/null
cp "$pki/ca-cert.pem" "$dir/srv/ca-cert.pem"
cp "$pki/ca-cert.pem" "$dir/cli/ca-cert.pem"
# A client with a certificate of its own (for --tls-verify-peer).
cp "$pki/ca-cert.pem" "$dir/cli-cert/ca-cert.pem"
key "$dir/cli-cert/client-key.pem"
cat >"$pki/client.info" <<'EOF'
cn = test client
tls_www_client
encryption_key
signing_key
expiration_days = 3
EOF
certtool --generate-certificate --load-privkey "$dir/cli-cert/client-key.pem" \
  --load-ca-certificate "$pki/ca-cert.pem" --load-ca-privkey "$pki/ca-key.pem" \
  --template "$pki/client.info" --outfile "$dir/cli-cert/client-cert.pem" 2>/dev/null
# A CA that did not sign the server's certificate: a client trusting only it
# must refuse the server.
key "$pki/other-key.pem"
certtool --generate-self-signed --load-privkey "$pki/other-key.pem" --template "$pki/ca.info" \
  --outfile "$dir/other-ca/ca-cert.pem" 2>/dev/null
# The server's certificate with another key.
cp "$dir/srv/server-cert.pem" "$dir/mismatch/"
key "$dir/mismatch/server-key.pem"
openssl x509 -in "$dir/srv/server-cert.pem" -noout -subject | grep -q localhost ||
  fail "certtool made no server certificate"

head -c $((4 * 1024 * 1024 + 1536)) /dev/urandom >"$dir/disk.img"
want=$(sha256sum <"$dir/disk.img" | cut -d' ' -f1)
log=$dir/server.log
fail_logs=("$log")
port=10809

start() {  # start LOG ARGS...: the server on $port in the namespace
  local l=$1
  shift
  rm -f "$l"
  ip netns exec "$ns" "$ISOBOOT_BIN" --log-level debug nbd export --port "$port" "$@" \
    >"$l" 2>&1 &
  pid=$!
  for _ in $(seq 50); do grep -q "serving" "$l" && break; sleep 0.1; done
  grep -q "serving 1 export(s) on 0.0.0.0 port $port" "$l" || fail "server did not start: $*"
}
stop() {  # stop: SIGTERM, a clean exit, the stats line kept in $stats
  kill -TERM "$pid"
  wait "$pid" || fail "server exit status $? after SIGTERM"
  pid=
  stats=$(grep "nbd: stats" "$1") || fail "no stats line in $1"
}
has_stat() { grep -Eq " $1( |$)" <<<"$stats"; }
tls_url() { echo "nbds://127.0.0.1:$port/disk.img?tls-certificates=$1"; }

# --- require: TLS clients get everything, plaintext ones nothing.
start "$log" --tls require --tls-certificates "$dir/srv" "$dir/disk.img"
grep -q "(TLS required)" "$log" || fail "startup line does not say TLS is required"

# Plaintext: refused, and the log says why (the first refusal: the log
# names at most one per 10 s).
if out=$(in_ns nbdinfo --size "nbd://127.0.0.1:$port/disk.img" 2>&1); then
  fail "plaintext nbdinfo succeeded against --tls require: $out"
fi
grep -qi "tls" <<<"$out" || fail "nbdinfo's error does not name TLS: $out"
grep -q "before NBD_OPT_STARTTLS: this server requires TLS" "$log" ||
  fail "the log does not say why the plaintext client was refused"
if out=$(in_ns nbd-client -l 127.0.0.1 "$port" 2>&1); then
  fail "plaintext nbd-client -l listed exports: $out"
fi


json=$(in_ns nbdinfo --json "$(tls_url "$dir/cli")") || fail "nbdinfo over TLS failed"
for want_line in '"export-size": 4195840' '"is_read_only": true' '"protocol": "newstyle-fixed"'; do
  grep -qF "$want_line" <<<"$json" || fail "nbdinfo over TLS lacks $want_line: $json"
done
grep -Eq '"TLS": true|"tls": true' <<<"$json" || fail "nbdinfo does not report TLS: $json"
for c in 1 4; do
  rm -f "$dir/copy"
  in_ns nbdcopy --connections=$c "$(tls_url "$dir/cli")" "$dir/copy" || fail "nbdcopy $c over TLS"
  [[ $(sha256sum <"$dir/copy" | cut -d' ' -f1) == "$want" ]] || fail "nbdcopy $c: wrong bytes"
done
grep -q "TLSv1\.[23]" "$log" || fail "the server did not log a TLS session"
# Block status (base:allocation) over TLS: the random file is all data.
map=$(in_ns nbdinfo --map "$(tls_url "$dir/cli")") || fail "nbdinfo --map over TLS failed"
grep -Eq "^ +0 +4195840 +0 +data" <<<"$map" || fail "nbdinfo --map over TLS: $map"

# A client that trusts another CA refuses this server: the certificate is
# really checked.
if in_ns nbdinfo --size "$(tls_url "$dir/other-ca")" >/dev/null 2>&1; then
  fail "a client trusting another CA accepted the server"
fi

qemu_opts=(--object "tls-creds-x509,id=tls0,endpoint=client,dir=$dir/cli"
  --image-opts "driver=nbd,host=127.0.0.1,port=$port,export=disk.img,tls-creds=tls0")
info=$(in_ns qemu-img info "${qemu_opts[@]}") || fail "qemu-img info over TLS failed"
grep -q "virtual size: .*(4195840 bytes)" <<<"$info" || fail "qemu-img info: $info"
rm -f "$dir/qemu.img"
in_ns qemu-img convert -O raw "${qemu_opts[@]}" "$dir/qemu.img" || fail "qemu-img convert over TLS"
[[ $(sha256sum <"$dir/qemu.img" | cut -d' ' -f1) == "$want" ]] || fail "qemu-img: wrong bytes"

nl=$(in_ns nbd-client -l 127.0.0.1 "$port" -A "$dir/cli/ca-cert.pem" -H localhost 2>&1) ||
  fail "nbd-client -l over TLS failed: $nl"
grep -qx "disk.img" <<<"$nl" || fail "nbd-client -l over TLS: $nl"

# Raw clients for what no tool does on purpose. Exit status 0 only when the
# server answered exactly as proto.md's FORCEDTLS mode says.
in_ns python3 - "$port" "$dir/cli/ca-cert.pem" <<'PY' || fail "raw TLS checks failed"
import socket, ssl, struct, sys, time
port, ca = int(sys.argv[1]), sys.argv[2]
OPT_EXPORT_NAME, OPT_LIST, OPT_STARTTLS, OPT_GO = 1, 3, 5, 7
ACK, ERR_INVALID, ERR_TLS_REQD = 1, 2**31 + 3, 2**31 + 5

def rd(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: raise EOFError("closed after %d of %d bytes" % (len(b), n))
        b += c
    return b

def connect():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    assert rd(s, 18)[:16] == b"NBDMAGICIHAVEOPT"
    s.sendall(struct.pack(">I", 3))  # FIXED_NEWSTYLE | NO_ZEROES
    return s

def option(s, opt, data=b""):
    s.sendall(b"IHAVEOPT" + struct.pack(">II", opt, len(data)) + data)

def reply(s):
    magic, opt, typ, n = struct.unpack(">QIII", rd(s, 20))
    assert magic == 0x3e889045565a9, hex(magic)
    return opt, typ, rd(s, n)

def closed(s):
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, ssl.SSLError):
        return True

# Every option but STARTTLS and ABORT: NBD_REP_ERR_TLS_REQD.
s = connect()
option(s, OPT_LIST)
opt, typ, _ = reply(s)
assert (opt, typ) == (OPT_LIST, ERR_TLS_REQD), (opt, typ)
option(s, OPT_GO, struct.pack(">I", 8) + b"disk.img" + struct.pack(">H", 0))
opt, typ, _ = reply(s)
assert (opt, typ) == (OPT_GO, ERR_TLS_REQD), (opt, typ)
# STARTTLS with data: NBD_REP_ERR_INVALID, and the connection goes on.
option(s, OPT_STARTTLS, b"x")
opt, typ, _ = reply(s)
assert (opt, typ) == (OPT_STARTTLS, ERR_INVALID), (opt, typ)
# EXPORT_NAME has no error reply: the server closes.
option(s, OPT_EXPORT_NAME, b"disk.img")
assert closed(s), "EXPORT_NAME without TLS was not closed"

# STARTTLS, the TLS handshake, then STARTTLS again over TLS: ERR_INVALID;
# then the export over TLS with EXPORT_NAME.
s = connect()
option(s, OPT_STARTTLS)
opt, typ, data = reply(s)
assert (opt, typ, data) == (OPT_STARTTLS, ACK, b""), (opt, typ, data)
ctx = ssl.create_default_context(cafile=ca)
t = ctx.wrap_socket(s, server_hostname="localhost")
assert t.version() in ("TLSv1.2", "TLSv1.3"), t.version()
option(t, OPT_STARTTLS)
opt, typ, _ = reply(t)
assert (opt, typ) == (OPT_STARTTLS, ERR_INVALID), (opt, typ)
option(t, OPT_LIST)
opt, typ, data = reply(t)
assert typ == 2 and data[4:] == b"disk.img", (typ, data)  # NBD_REP_SERVER
assert reply(t)[1] == ACK
option(t, OPT_EXPORT_NAME, b"disk.img")
size, flags = struct.unpack(">QH", rd(t, 10))
assert size == 4195840 and flags & 2, (size, flags)
t.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 0, 9, 4096, 100))  # NBD_CMD_READ
magic, err, cookie = struct.unpack(">IIQ", rd(t, 16))
assert (magic, err, cookie) == (0x67446698, 0, 9), (magic, err, cookie)
assert len(rd(t, 100)) == 100
t.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 2, 10, 0, 0))  # NBD_CMD_DISC
PY
in_ns python3 - "$port" "$dir/cli/ca-cert.pem" >"$dir/read.hex" <<'PY' || fail "raw read over TLS"
import socket, ssl, struct, sys
port, ca = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
def rd(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: raise EOFError
        b += c
    return b
rd(s, 18)
s.sendall(struct.pack(">I", 3) + b"IHAVEOPT" + struct.pack(">II", 5, 0))
assert struct.unpack(">QIII", rd(s, 20))[2] == 1
t = ssl.create_default_context(cafile=ca).wrap_socket(s, server_hostname="localhost")
t.sendall(b"IHAVEOPT" + struct.pack(">II", 1, 8) + b"disk.img")
rd(t, 10)
t.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 0, 9, 4096, 100))
assert struct.unpack(">IIQ", rd(t, 16)) == (0x67446698, 0, 9)
print(rd(t, 100).hex())
PY
[[ $(cat "$dir/read.hex") == $(tail -c +4097 "$dir/disk.img" | head -c 100 | od -An -tx1 | tr -d ' \n') ]] ||
  fail "a raw read over TLS returned the wrong bytes"

stop "$log"
has_stat tls_handshake_failures=1 || fail "the refused CA was not counted: $stats"
sessions=$(sed -n 's/.*tls_sessions=\([0-9]*\).*/\1/p' <<<"$stats")
# nbdinfo, nbdcopy (1 and up to 4), qemu-img twice, nbd-client, the raw ones.
((sessions >= 8)) || fail "tls_sessions=$sessions, expected at least 8: $stats"

# Clients that start TLS and then stall, or send garbage: dropped (the stall
# within the 1.5 s handshake timeout) while another client is served.
start "$log" --tls require --tls-certificates "$dir/srv" --handshake-timeout 1500 "$dir/disk.img"
in_ns python3 - "$port" "$(tls_url "$dir/cli")" <<'PY' || fail "stalled TLS clients were not dropped"
import socket, struct, subprocess, sys, time
port, url = int(sys.argv[1]), sys.argv[2]
def starttls():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    b = b""
    while len(b) < 18: b += s.recv(18 - len(b))
    s.sendall(struct.pack(">I", 3) + b"IHAVEOPT" + struct.pack(">II", 5, 0))
    r = b""
    while len(r) < 20: r += s.recv(20 - len(r))
    assert struct.unpack(">QIII", r)[2] == 1, "STARTTLS not acknowledged"
    return s
t0 = time.monotonic()
stalled = starttls()
# Half a TLS record header and nothing more: the server must not wait for
# the rest forever.
half = starttls()
half.sendall(b"\x16\x03")
# The server still serves others while the stalled ones wait.
out = subprocess.run(["nbdinfo", "--size", url], capture_output=True, text=True, timeout=20)
assert out.stdout.strip() == "4195840", out
for s in (stalled, half):
    s.settimeout(10)
    try:
        assert s.recv(1) == b"", "the server sent data to a stalled TLS client"
    except ConnectionResetError:
        pass
waited = time.monotonic() - t0
assert 1.0 < waited < 5.0, "stalled TLS clients dropped after %.1f s (timeout 1.5 s)" % waited
# Garbage where the ClientHello belongs: dropped at once.
garbage = starttls()
t0 = time.monotonic()
garbage.sendall(b"GET / HTTP/1.0\r\n\r\n" * 4)
garbage.settimeout(5)
try:
    while garbage.recv(4096): pass
except ConnectionResetError:
    pass
assert time.monotonic() - t0 < 1.0, "a garbage TLS client was not dropped at once"
PY
grep -q "TLS handshake failed (TLS handshake: timed out)" "$log" ||
  fail "the stalled TLS client's drop was not logged"
stop "$log"
for counter in tls_handshake_failures=3 tls_sessions=1 handshake_failures=0 handshake_timeouts=0; do
  has_stat "$counter" || fail "stats lack $counter: $stats"
done

# --- on: TLS offered, plaintext allowed.
start "$log" --tls on --tls-certificates "$dir/srv" "$dir/disk.img"
in_ns nbdinfo --size "nbd://127.0.0.1:$port/disk.img" | grep -qx 4195840 ||
  fail "plaintext client refused with --tls on"
in_ns nbdinfo --size "$(tls_url "$dir/cli")" | grep -qx 4195840 || fail "TLS client refused with --tls on"
rm -f "$dir/copy"
in_ns nbdcopy "nbd://127.0.0.1:$port/disk.img" "$dir/copy" || fail "plaintext nbdcopy with --tls on"
[[ $(sha256sum <"$dir/copy" | cut -d' ' -f1) == "$want" ]] || fail "plaintext copy with --tls on"
# A TLS client idle in the transmission phase does not hold up SIGTERM.
in_ns python3 - "$port" "$dir/cli/ca-cert.pem" >"$dir/idle.out" 2>&1 <<'PY' &
import socket, ssl, struct, sys, time
port, ca = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=30)
def rd(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: raise EOFError
        b += c
    return b
rd(s, 18)
s.sendall(struct.pack(">I", 3) + b"IHAVEOPT" + struct.pack(">II", 5, 0))
rd(s, 20)
t = ssl.create_default_context(cafile=ca).wrap_socket(s, server_hostname="localhost")
t.sendall(b"IHAVEOPT" + struct.pack(">II", 1, 8) + b"disk.img")
rd(t, 10)
print("idle", flush=True)
t0 = time.monotonic()
try:
    closed = t.recv(1) == b""
except (ConnectionResetError, ssl.SSLError):
    closed = True
print("closed" if closed else "data", round(time.monotonic() - t0), flush=True)
PY
idle_pid=$!
for _ in $(seq 50); do grep -q idle "$dir/idle.out" && break; sleep 0.1; done
grep -q idle "$dir/idle.out" || fail "the idle TLS client did not connect: $(cat "$dir/idle.out")"
SECONDS=0
stop "$log"
((SECONDS <= 3)) || fail "SIGTERM took $SECONDS s with an idle TLS client"
wait "$idle_pid" || fail "idle TLS client: $(cat "$dir/idle.out")"
idle_pid=
grep -q "^closed" "$dir/idle.out" || fail "idle TLS client: $(cat "$dir/idle.out")"
has_stat tls_sessions=2 || fail "--tls on: $stats"

# --- require with client certificates.
start "$log" --tls require --tls-certificates "$dir/srv" --tls-verify-peer "$dir/disk.img"
if in_ns nbdinfo --size "$(tls_url "$dir/cli")" >/dev/null 2>&1; then
  fail "a client without a certificate got in with --tls-verify-peer"
fi
in_ns nbdinfo --size "$(tls_url "$dir/cli-cert")" | grep -qx 4195840 ||
  fail "a client with a certificate was refused with --tls-verify-peer"
stop "$log"
has_stat tls_handshake_failures=1 || fail "--tls-verify-peer: $stats"

# --- off (the default): STARTTLS is unsupported, so nbds:// fails.
start "$log" "$dir/disk.img"
if in_ns nbdinfo --size "$(tls_url "$dir/cli")" >/dev/null 2>&1; then
  fail "nbds:// succeeded without --tls"
fi
in_ns nbdinfo --size "nbd://127.0.0.1:$port/disk.img" | grep -qx 4195840 || fail "plaintext off"
stop "$log"

# --- setup errors: one line on stderr naming the flag and the problem,
# exit status 1, nothing listening.
check_error() {  # check_error WHAT PATTERN ARGS...
  local what=$1 pattern=$2 err
  shift 2
  if err=$(in_ns "$ISOBOOT_BIN" nbd export "$@" "$dir/disk.img" 2>&1); then fail "$what: ran"; fi
  [[ $(wc -l <<<"$err") == 1 ]] || fail "$what: not one line: $err"
  [[ $err == *$pattern* ]] || fail "$what: $err"
}
check_error "missing dir" "--tls-certificates $dir/nope: $dir/nope/server-cert.pem: No such file" \
  --tls require --tls-certificates "$dir/nope"
check_error "key mismatch" "--tls-certificates $dir/mismatch: server-key.pem is not the key" \
  --tls on --tls-certificates "$dir/mismatch"
check_error "no dir" "--tls on|require needs --tls-certificates DIR" --tls require
mkdir -p "$dir/bad"
echo "not a certificate" >"$dir/bad/server-cert.pem"
cp "$dir/srv/server-key.pem" "$dir/bad/"
check_error "not PEM" "--tls-certificates $dir/bad: $dir/bad/server-cert.pem: " \
  --tls on --tls-certificates "$dir/bad"
check_error "verify without CA" "ca-cert.pem: No such file" \
  --tls require --tls-certificates "$dir/mismatch" --tls-verify-peer

# --- serve's NBD root with TLS required, after dropping root to nobody and
# under the system call filter (OpenSSL's calls must pass it). The key is
# root's alone: serve reads it before dropping root.
chmod 0755 "$dir"
chmod 0600 "$dir/srv/server-key.pem"
"$src/scripts/make-layout-iso.sh" dracut "$dir/live.iso" >/dev/null
ip -n "$ns" link add d0 type veth peer name d1
ip -n "$ns" addr add 10.79.0.1/24 dev d0
ip -n "$ns" link set d1 up
ip -n "$ns" link set d0 up
slog=$dir/serve.log
fail_logs=("$slog")
ip netns exec "$ns" "$ISOBOOT_BIN" serve "$dir/live.iso" --interface d0 --dhcp off --root nbd \
  --nbd-tls require --nbd-tls-certificates "$dir/srv" --user nobody --ipv6-ra off --announce 0 \
  >"$slog" 2>&1 &
pid=$!
wait_ready "$slog"
status=$(cat "/proc/$pid/status")
grep -q $'^Seccomp:\t2' <<<"$status" || fail "serve runs without its seccomp filter"
grep -q $'^Uid:\t65534' <<<"$status" || fail "serve did not drop root"
iso_size=$(stat -c %s "$dir/live.iso")
siso="nbds://10.79.0.1:10809/live.iso?tls-certificates=$dir/cli"
in_ns nbdinfo --size "$siso" | grep -qx "$iso_size" || fail "serve: nbdinfo over TLS"
rm -f "$dir/copy"
in_ns nbdcopy "$siso" "$dir/copy" || fail "serve: nbdcopy over TLS"
cmp -s "$dir/copy" "$dir/live.iso" || fail "serve: the copy over TLS differs"
if in_ns nbdinfo --size "nbd://10.79.0.1:10809/live.iso" >/dev/null 2>&1; then
  fail "serve: plaintext nbdinfo got in with --nbd-tls require"
fi
kill -TERM "$pid"
wait "$pid" || fail "serve exited with $?"
pid=
grep -q "before NBD_OPT_STARTTLS: this server requires TLS" "$slog" ||
  fail "serve did not log the plaintext client's refusal"
if grep -qi "operation not permitted\|seccomp" "$slog"; then fail "a call was refused: $(cat "$slog")"; fi
# Its setup error, in one line, before anything runs.
if err=$(in_ns "$ISOBOOT_BIN" serve "$dir/live.iso" --interface d0 --dhcp off --root nbd \
  --nbd-tls on --nbd-tls-certificates "$dir/nope" 2>&1); then
  fail "serve ran with a missing --nbd-tls-certificates"
fi
[[ $(wc -l <<<"$err") == 1 && $err == *"--nbd-tls-certificates $dir/nope: "*"No such file"* ]] ||
  fail "serve's credential error: $err"
echo "nbd tls: ok"
