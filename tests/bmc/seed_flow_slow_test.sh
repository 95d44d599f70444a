#!/usr/bin/env bash
# The seed's whole BMC flow, end to end, on a VM that really boots: for each
# vendor and firmware in BMC_SEED_CASES (default "ilo5:bios ami:uefi"),
#  1. a powered-off host behind a fake Redfish BMC of that vendor (the real
#     mockup tree, tests/bmc/fake_bmc.py --vm-dir) with a real IPMI BMC for
#     its console (OpenIPMI's ipmi_sim, --vm-ipmi: SOL on the VM's serial
#     port, IPMI over LAN on 127.0.0.1:623);
#  2. `isoboot bmc boot --serve live.iso --console`: isoboot serves the ISO,
#     inserts its URL, sets the one-time CD boot, powers the host on and
#     hands over the SOL console (ipmitool, read here through a FIFO); the
#     live system boots from the virtual CD and its marker and shell show on
#     that console;
#  3. through the console, a file is written on the live system, which then
#     fetches isoboot (the test root is busybox only; a real live image ships
#     it) and runs `isoboot overlay backup` to `isoboot serve --backup-dir`
#     (reached as 10.0.2.2, QEMU's user network onto this namespace's
#     loopback); `~.` ends the console;
#  4. `isoboot bmc boot` again, with another SOL session already holding the
#     console (it must be taken over): the host restarts and its RAM overlay
#     is gone, the file with it; `isoboot overlay restore --remount` brings
#     it back.
# While isoboot and ipmitool run, no process's argv holds the BMC password.
# Once, an ISO URL nobody answers must give exit 7 and one line saying why.
#
# Everything runs in a network namespace holding only loopback, made and
# removed here. Prints seconds from each `isoboot bmc boot` to the shell.
# E2E_TIMEOUT bounds each boot (default 420 s). BMC_SEED_SHOW=1 (scripts/demo.sh
# --bmc) also shows isoboot's output and the SOL console as they come.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
# shellcheck source=tests/qemu/lib.sh
source "$src/tests/qemu/lib.sh"
# shellcheck source=tests/bmc/vm_lib.sh
source "$src/tests/bmc/vm_lib.sh"
bin=${ISOBOOT_BIN:?ISOBOOT_BIN must name the isoboot binary}
timeout=${E2E_TIMEOUT:-420}
read -r -a cases <<<"${BMC_SEED_CASES:-ilo5:bios ami:uefi}"
fail() { echo "FAIL: $*"; exit 1; }

for tool in ipmi_sim ipmitool; do
  command -v "$tool" >/dev/null || fail "$tool missing: scripts/deps.sh qemu"
done
qemu_need_http_driver
iso=$("$src/tests/image/build-kiwi-live.sh" "${KIWI_CACHE:-/var/cache/isoboot/kiwi}")
tmp=$(mktemp -d "${ISOBOOT_TEST_TMP:-/tmp}/bmcseed.XXXXXX")
ns=isbseed$$
console_pid=""
cleanup() {
  [[ -n $console_pid ]] && qemu_stop_pid "$console_pid"
  qemu_test_cleanup "$ns" "$tmp"
}
trap cleanup EXIT
# IPMI passwords are at most 20 bytes.
export BMC_PW="Pw-$$-noargv"

bmc_vm_cert
ip netns add "$ns"
ip -n "$ns" link set lo up

# The backup store.
mkdir -p "$tmp/store"
qemu_bg_start "$ns" "$tmp/store.log" "$bin" serve "$iso" --http-only --http-address 127.0.0.1 \
  --http-port 0 --backup-dir "$tmp/store"
qemu_wait_log "$tmp/store.log" "ready:" || fail "serve --backup-dir did not start"
store_port=$(grep -o 'the image is at http://127.0.0.1:[0-9]*' "$tmp/store.log" | head -n1 | sed 's/.*://')
[[ -n $store_port ]] || fail "no port in serve's log"
token=$(cat "$tmp/store/.token")

# isoboot for the live system: the stripped binary, its libraries and their
# loader, run through the loader as the root has no /lib of its own.
mkdir -p "$tmp/tools/lib" "$tmp/www"
strip -o "$tmp/tools/isoboot.bin" "$bin"
while read -r lib; do cp -L "$lib" "$tmp/tools/lib/"; done < <(ldd "$bin" | awk '$3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
cat >"$tmp/tools/isoboot" <<'EOF'
#!/bin/sh
d=${0%/*}
exec "$d/lib/ld-linux-x86-64.so.2" --library-path "$d/lib" "$d/isoboot.bin" "$@"
EOF
chmod +x "$tmp/tools/isoboot"
tar -C "$tmp/tools" -cf "$tmp/www/tools.tar" .
qemu_bg_start "$ns" "$tmp/www.log" python3 -c '
import functools, http.server, os, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(server.server_port))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
server.serve_forever()' "$tmp/www" "$tmp/www.port"
for ((i = 0; i < 100; i++)); do [[ -s $tmp/www.port ]] && break; sleep 0.1; done
[[ -s $tmp/www.port ]] || fail "the tools server did not start: $(cat "$tmp/www.log")"
www_port=$(cat "$tmp/www.port")

# A fake BMC whose VM has ipmi_sim for SOL and a NIC on QEMU's user network.
start_fake() {  # DIR VENDOR FIRMWARE
  bmc_vm_start_fake "$@" --vm-ipmi --vm-user-net --vm-mem 768 || fail "see above"
}

# Waits up to TIMEOUT s for a line matching REGEX in FILE (carriage returns
# dropped), while PID lives.
wait_for() {  # FILE REGEX TIMEOUT PID
  local deadline=$((SECONDS + $3))
  while ((SECONDS < deadline)); do
    lines "$1" | grep -qaE "$2" && return 0
    kill -0 "$4" 2>/dev/null || { lines "$1" | grep -qaE "$2"; return; }
    sleep 0.5
  done
  return 1
}

# FILE without carriage returns; nothing while it does not exist yet.
lines() { [[ -e $1 ]] && tr -d '\r' <"$1"; }

# Starts `isoboot bmc boot --serve ISO --console` on the console FIFO IN;
# output to OUT; sets console_pid and opens fd 5 for writing to IN.
start_console_boot() {  # IN OUT ERR
  rm -f "$1"
  mkfifo "$1"
  exec 5<>"$1"
  ip netns exec "$ns" "$bin" bmc boot --bmc "$bmc" --user admin --password-env BMC_PW \
    --ca "$tmp/cert.pem" --serve "$iso" --http-address 127.0.0.1 --http-port 0 \
    --poll-interval 0.5 --power-timeout 60 --console <"$1" >"$2" 2>"$3" &
  console_pid=$!
  if [[ ${BMC_SEED_SHOW:-} == 1 ]]; then
    # The followers end with isoboot (--pid).
    tail -n +1 -F --pid="$console_pid" "$3" 2>/dev/null | sed -u 's/^/isoboot | /' &
    tail -n +1 -F --pid="$console_pid" "$2" 2>/dev/null | tr -d '\r' | sed -u 's/^/sol     | /' &
  fi
}

# Types LINE on the console.
type_line() {
  [[ ${BMC_SEED_SHOW:-} == 1 ]] && echo "demo    | typed on the console: $1"
  printf '%s\n' "$1" >&5
}

# Ends the console with ipmitool's escape and waits for isoboot; sets rc.
end_console() {
  local i
  printf '\n~.\n' >&5
  for ((i = 0; i < 300; i++)); do
    kill -0 "$console_pid" 2>/dev/null || break
    sleep 0.1
  done
  rc=0
  if kill -0 "$console_pid" 2>/dev/null; then
    rc=124
    qemu_stop_pid "$console_pid"
  else
    wait "$console_pid" || rc=$?
  fi
  console_pid=""
  exec 5>&-
}

# Fails the case when any process's argv holds the password; also demands
# that isoboot and ipmitool were seen running (so the check saw them).
check_argv() {  # WHEN
  local f seen_isoboot=0 seen_ipmitool=0 args
  for f in /proc/[0-9]*/cmdline; do
    args=$( { tr '\0' ' ' <"$f"; } 2>/dev/null) || continue  # gone meanwhile
    [[ $args == *"$BMC_PW"* ]] && problems+=("$1: the password is in the argv of pid ${f//[^0-9]/}: $args")
    [[ $args == "$bin bmc boot"* ]] && seen_isoboot=1
    [[ $args == ipmitool\ * ]] && seen_ipmitool=1
  done
  ((seen_isoboot && seen_ipmitool)) || problems+=("$1: isoboot ($seen_isoboot) and ipmitool ($seen_ipmitool) not both running")
}

# The live system's commands: its NIC on QEMU's user network, then isoboot.
net_and_tools="for n in /sys/class/net/*; do [ \${n##*/} = lo ] || nic=\${n##*/}; done; ip addr add 10.0.2.15/24 dev \$nic; ip link set \$nic up; mount -t tmpfs tools /mnt && wget -q -O - http://10.0.2.2:$www_port/tools.tar | tar -x -C /mnt && echo ISOBOOT-SEED-TOOLS-\$((40 + 2))"

status=0
for case in "${cases[@]}"; do
  vendor=${case%%:*} fw=${case#*:}
  dir=$tmp/$vendor-$fw
  problems=()
  start_fake "$dir" "$vendor" "$fw"
  proof="seed-file-$vendor-$fw-$$-$RANDOM"
  node=seed-$vendor-$fw

  # 1-3: boot, write the file, back the overlay up.
  start=$SECONDS
  start_console_boot "$dir/in1" "$dir/console1.out" "$dir/boot1.err"
  if wait_for "$dir/console1.out" '^ISOBOOT-LIVE-SHELL' "$timeout" "$console_pid"; then
    boot1=$((SECONDS - start))
    check_argv "first boot"
    lines "$dir/console1.out" | grep -qa '^ISOBOOT-LIVE-MEDIA: .* - iso9660 /dev/sr0 ' ||
      problems+=("first boot: the live medium is not the CD /dev/sr0")
    type_line "echo $proof >/etc/isoboot-seed; $net_and_tools"
    wait_for "$dir/console1.out" '^ISOBOOT-SEED-TOOLS-42' 180 "$console_pid" ||
      problems+=("first boot: the live system did not fetch isoboot")
    type_line "ISOBOOT_TOKEN=$token /mnt/isoboot overlay backup -o http://10.0.2.2:$store_port/overlay/$node; echo ISOBOOT-SEED-BACKUP-rc\$((\$? + 100))"
    wait_for "$dir/console1.out" '^ISOBOOT-SEED-BACKUP-rc' 180 "$console_pid" || true
    lines "$dir/console1.out" | grep -qa '^ISOBOOT-SEED-BACKUP-rc100' ||
      problems+=("the backup failed: $(lines "$dir/console1.out" | grep -a 'ISOBOOT-SEED-BACKUP-rc\|error' | tail -n 3 || true)")
  else
    problems+=("first boot: no ISOBOOT-LIVE-SHELL on the SOL console within ${timeout} s")
  fi
  end_console
  ((rc == 0)) || problems+=("the first isoboot bmc boot --console exited $rc: $(tail -n 3 "$dir/boot1.err")")
  grep -q "PUT /overlay/$node 20[01]" "$tmp/store.log" || problems+=("the store got no backup for $node")

  # 4: another SOL session holds the console; boot again; restore.
  if ((${#problems[@]} == 0)); then
    IPMI_PASSWORD=$BMC_PW ip netns exec "$ns" ipmitool -I lanplus -H 127.0.0.1 -U admin -E -C 3 \
      sol activate </dev/zero >"$dir/other-sol.out" 2>&1 &
    other_sol=$!
    QEMU_BG_PIDS+=("$other_sol")
    wait_for "$dir/other-sol.out" 'SOL Session operational' 30 "$other_sol" ||
      problems+=("the other SOL session did not start: $(cat "$dir/other-sol.out")")
    start=$SECONDS
    start_console_boot "$dir/in2" "$dir/console2.out" "$dir/boot2.err"
    if wait_for "$dir/console2.out" '^ISOBOOT-LIVE-SHELL' "$timeout" "$console_pid"; then
      boot2=$((SECONDS - start))
      check_argv "second boot"
      type_line "cat /etc/isoboot-seed 2>/dev/null || echo ISOBOOT-SEED-GONE-\$((40 + 2)); $net_and_tools"
      wait_for "$dir/console2.out" '^ISOBOOT-SEED-TOOLS-42' 180 "$console_pid" ||
        problems+=("second boot: the live system did not fetch isoboot")
      lines "$dir/console2.out" | grep -qa '^ISOBOOT-SEED-GONE-42' ||
        problems+=("second boot: the file written before the reboot was still there (the host did not restart)")
      type_line "ISOBOOT_TOKEN=$token /mnt/isoboot overlay restore --remount http://10.0.2.2:$store_port/overlay/$node; echo ISOBOOT-SEED-RESTORE-rc\$((\$? + 100)); echo ISOBOOT-SEED-FILE: \$(cat /etc/isoboot-seed)"
      wait_for "$dir/console2.out" '^ISOBOOT-SEED-FILE:' 180 "$console_pid" || true
      lines "$dir/console2.out" | grep -qa "^ISOBOOT-SEED-FILE: $proof\$" ||
        problems+=("the restore did not bring the file back: $(lines "$dir/console2.out" | grep -a 'ISOBOOT-SEED-RESTORE\|ISOBOOT-SEED-FILE\|error' | tail -n 3 || true)")
    else
      problems+=("second boot: no ISOBOOT-LIVE-SHELL on the SOL console within ${timeout} s")
    fi
    end_console
    ((rc == 0)) || problems+=("the second isoboot bmc boot --console exited $rc: $(tail -n 3 "$dir/boot2.err")")
    kill -0 "$other_sol" 2>/dev/null && problems+=("the other SOL session was not taken over")
    qemu_stop_pid "$other_sol"
  fi

  if ((${#problems[@]} == 0)); then
    echo "$vendor $fw: isoboot bmc boot to the live shell on SOL in ${boot1} s, again after the backup in ${boot2} s; the file came back from the store"
  else
    status=1
    echo "FAIL $vendor $fw: ${problems[*]}"
    for f in boot1.err console1.out boot2.err console2.out; do
      [[ -e $dir/$f ]] && { echo "--- $f (last 25 lines)"; lines "$dir/$f" | tail -n 25; }
    done
    echo "--- the VM's serial console (last 15 lines)"; lines "$dir/vm/console.log" | tail -n 15 || true
    echo "--- qemu"; cat "$dir/vm/qemu.out" 2>/dev/null || true
    echo "--- ipmi_sim"; tail -n 5 "$dir/vm/ipmi_sim.out" 2>/dev/null || true
  fi
  qemu_stop_pid "$fake_pid"  # the fake stops its VM and ipmi_sim on SIGTERM
done

# An ISO URL nobody answers: exit 7 and one line saying why.
dir=$tmp/unreachable
start_fake "$dir" ilo5 bios
rc=0
ip netns exec "$ns" "$bin" bmc boot --bmc "$bmc" --user admin --password-env BMC_PW \
  --ca "$tmp/cert.pem" --iso http://127.0.0.1:9/nobody.iso --poll-interval 0.5 --mount-timeout 5 >"$dir/out" 2>&1 || rc=$?
if ((rc == 7)) && [[ $(grep -c 'isoboot: error:' "$dir/out") == 1 ]] && grep -q '(from here: .*onnect' "$dir/out"; then
  echo "unreachable URL: exit 7, $(grep 'isoboot: error:' "$dir/out")"
else
  status=1
  echo "FAIL unreachable URL: exit $rc (want 7), output:"; cat "$dir/out"
fi

((status == 0)) && echo "seed_flow: passed" || echo "seed_flow: failed"
exit $status
