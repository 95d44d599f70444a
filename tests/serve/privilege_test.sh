#!/usr/bin/env bash
# `isoboot serve --user nobody`, started as root in a network namespace: once
# every socket is bound it runs as nobody with no capabilities, under a
# system call filter, and still serves: DHCP (a PXE request), TFTP (a new
# transfer socket per download), HTTP, AoE (the packet socket opened as
# root) and a backup upload into a store it made for that user. A user that
# does not exist, and a store that user cannot write, are one-line errors.
# The previous binary has no --user (it runs as root for its whole life).
set -euo pipefail
src=${ISOBOOT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${ISOBOOT_BIN:?set ISOBOOT_BIN to the isoboot binary}
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp privilege
chmod 0755 "$tmp"  # nobody must reach the store inside it
fail_logs=("$tmp/serve.log")
fail_lines=40
srv=isb-pv-srv-$$
cli=isb-pv-cli-$$
pid=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
}

"$src/scripts/make-layout-iso.sh" kiwi "$tmp/live.iso" >/dev/null
veth_pair "$srv" "$cli"
ip -n "$srv" addr add 10.78.0.1/24 dev veth-s
ip -n "$cli" addr add 10.78.0.2/24 dev veth-c

mkdir "$tmp/state"
chown nobody "$tmp/state"  # the lease file's directory, made by the admin
serve_args=("$tmp/live.iso" --interface veth-s --dhcp full --dhcp-range 10.78.0.100,10.78.0.120
  --lease-file "$tmp/state/leases" --announce 0 --ipv6-ra off)

# Refusals first: no such user; a store that user cannot write.
if ip netns exec "$srv" "$bin" serve "${serve_args[@]}" --user no-such-user-$$ >"$tmp/err" 2>&1; then
  fail "serve ran with a user that does not exist"
fi
grep -q "no-such-user-$$: no such user" "$tmp/err" || fail "unclear error for a missing user: $(cat "$tmp/err")"
mkdir -m 0700 "$tmp/root-store"
if ip netns exec "$srv" "$bin" serve "${serve_args[@]}" --user nobody --backup-dir "$tmp/root-store" \
  >"$tmp/err" 2>&1; then
  fail "serve ran as nobody with a store only root can write"
fi
grep -q "backup-dir $tmp/root-store: user nobody cannot write it" "$tmp/err" ||
  fail "unclear error for an unwritable store: $(cat "$tmp/err")"

ip netns exec "$srv" "$bin" serve "${serve_args[@]}" --user nobody --backup-dir "$tmp/store" \
  >"$tmp/serve.log" 2>&1 &
pid=$!
wait_ready "$tmp/serve.log"

# What the kernel says about the running server.
status=$(cat "/proc/$pid/status")
field() { sed -n "s/^$1:[[:space:]]*//p" <<<"$status"; }
[[ $(field Uid) == $'65534\t65534\t65534\t65534' ]] || fail "uids: $(field Uid)"
[[ $(field Gid) == $'65534\t65534\t65534\t65534' ]] || fail "gids: $(field Gid)"
[[ $(field Groups) == "" ]] || fail "supplementary groups kept: $(field Groups)"
for cap in CapInh CapPrm CapEff CapAmb; do
  [[ $(field $cap) == 0000000000000000 ]] || fail "$cap is $(field $cap)"
done
[[ $(field NoNewPrivs) == 1 ]] || fail "no_new_privs is not set"
[[ $(field Seccomp) == 2 ]] || fail "no seccomp filter (Seccomp: $(field Seccomp))"
[[ $(stat -c %U "$tmp/store") == nobody ]] || fail "the store is not nobody's: $(stat -c %U "$tmp/store")"

# And it still serves everything.
lease=$(dhcp_lease "$cli" veth-c "${pxe_bios[@]}")
[[ $lease == "ip=10.78.0.1"[0-2][0-9]" boot_file=undionly.kpxe siaddr=10.78.0.1" ]] ||
  fail "no PXE lease after the drop: $lease"
ip=${lease#ip=}
ip=${ip%% *}
grep -q "$ip" "$tmp/state/leases" || fail "the lease is not in the lease file: $(cat "$tmp/state/leases")"
(cd "$tmp" && ip netns exec "$cli" timeout 30 tftp -m binary 10.78.0.1 -c get boot/x86_64/loader/linux linux.tftp)
"$bin" iso cat "$tmp/live.iso" /boot/x86_64/loader/linux | cmp - "$tmp/linux.tftp" || fail "TFTP after the drop"
ip netns exec "$cli" curl -sf http://10.78.0.1:8080/live.iso -o "$tmp/live.http" || fail "HTTP after the drop"
cmp "$tmp/live.http" "$tmp/live.iso" || fail "live.iso over HTTP differs"
ip netns exec "$cli" timeout 60 "$bin" aoe read e0.1 --interface veth-c -o "$tmp/aoe.img" || fail "AoE after the drop"
cmp "$tmp/aoe.img" "$tmp/live.iso" || fail "the AoE export differs"
mkdir -p "$tmp/up/etc"
echo hello >"$tmp/up/etc/motd"
ip netns exec "$cli" "$bin" overlay backup --upper "$tmp/up" --token-file "$tmp/store/.token" \
  -o http://10.78.0.1:8080/overlay/52:54:00:00:00:01 >/dev/null || fail "a backup after the drop"
[[ $(stat -c %U "$tmp/store/52-54-00-00-00-01"/*.isoboot-overlay) == nobody ]] || fail "version not nobody's"

kill "$pid"
wait "$pid" || fail "server exit status $?"
pid=
echo PASS
