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

bmc_vm_sol_setup seed || fail "see above"

# The backup store.
mkdir -p "$tmp/store"
qemu_bg_start "$ns" "$tmp/store.log" "$bin" serve "$iso" --http-only --http-address 127.0.0.1 \
  --http-port 0 --backup-dir "$tmp/store"
qemu_wait_log "$tmp/store.log" "ready:" || fail "serve --backup-dir did not start"
store_port=$(grep -o 'the image is at http://127.0.0.1:[0-9]*' "$tmp/store.log" | head -n1 | sed 's/.*://')
[[ -n $store_port ]] || fail "no port in serve's log"
token=$(cat "$tmp/store/.token")

bmc_vm_tools || fail "see above"
# What the console boots: the ISO, served by isoboot bmc itself.
serve_iso=(--serve "$iso" --http-address 127.0.0.1 --http-port 0)
BMC_VM_SHOW=${BMC_SEED_SHOW:-}

# A fake BMC whose VM has ipmi_sim for SOL and a NIC on QEMU's user network.
start_fake() {  # DIR VENDOR FIRMWARE
  bmc_vm_start_fake "$@" --vm-ipmi --vm-user-net --vm-mem 768 || fail "see above"
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
  bmc_vm_console_boot "$dir/in1" "$dir/console1.out" "$dir/boot1.err" "${serve_iso[@]}"
  if bmc_vm_wait_for "$dir/console1.out" '^ISOBOOT-LIVE-SHELL' "$timeout" "$console_pid"; then
    boot1=$((SECONDS - start))
    check_argv "first boot"
    bmc_vm_lines "$dir/console1.out" | grep -qa '^ISOBOOT-LIVE-MEDIA: .* - iso9660 /dev/sr0 ' ||
      problems+=("first boot: the live medium is not the CD /dev/sr0")
    bmc_vm_type "echo $proof >/etc/isoboot-seed; $bmc_vm_get_tools"
    bmc_vm_wait_for "$dir/console1.out" '^ISOBOOT-TOOLS-42' 180 "$console_pid" ||
      problems+=("first boot: the live system did not fetch isoboot")
    bmc_vm_type "ISOBOOT_TOKEN=$token /mnt/isoboot overlay backup -o http://10.0.2.2:$store_port/overlay/$node; echo ISOBOOT-SEED-BACKUP-rc\$((\$? + 100))"
    bmc_vm_wait_for "$dir/console1.out" '^ISOBOOT-SEED-BACKUP-rc' 180 "$console_pid" || true
    bmc_vm_lines "$dir/console1.out" | grep -qa '^ISOBOOT-SEED-BACKUP-rc100' ||
      problems+=("the backup failed: $(bmc_vm_lines "$dir/console1.out" | grep -a 'ISOBOOT-SEED-BACKUP-rc\|error' | tail -n 3 || true)")
  else
    problems+=("first boot: no ISOBOOT-LIVE-SHELL on the SOL console within ${timeout} s")
  fi
  bmc_vm_end_console
  ((rc == 0)) || problems+=("the first isoboot bmc boot --console exited $rc: $(tail -n 3 "$dir/boot1.err")")
  grep -q "PUT /overlay/$node 20[01]" "$tmp/store.log" || problems+=("the store got no backup for $node")

  # 4: another SOL session holds the console; boot again; restore.
  if ((${#problems[@]} == 0)); then
    IPMI_PASSWORD=$BMC_PW ip netns exec "$ns" ipmitool -I lanplus -H 127.0.0.1 -U admin -E -C 3 \
      sol activate </dev/zero >"$dir/other-sol.out" 2>&1 &
    other_sol=$!
    QEMU_BG_PIDS+=("$other_sol")
    bmc_vm_wait_for "$dir/other-sol.out" 'SOL Session operational' 30 "$other_sol" ||
      problems+=("the other SOL session did not start: $(cat "$dir/other-sol.out")")
    start=$SECONDS
    bmc_vm_console_boot "$dir/in2" "$dir/console2.out" "$dir/boot2.err" "${serve_iso[@]}"
    if bmc_vm_wait_for "$dir/console2.out" '^ISOBOOT-LIVE-SHELL' "$timeout" "$console_pid"; then
      boot2=$((SECONDS - start))
      check_argv "second boot"
      bmc_vm_type "cat /etc/isoboot-seed 2>/dev/null || echo ISOBOOT-SEED-GONE-\$((40 + 2)); $bmc_vm_get_tools"
      bmc_vm_wait_for "$dir/console2.out" '^ISOBOOT-TOOLS-42' 180 "$console_pid" ||
        problems+=("second boot: the live system did not fetch isoboot")
      bmc_vm_lines "$dir/console2.out" | grep -qa '^ISOBOOT-SEED-GONE-42' ||
        problems+=("second boot: the file written before the reboot was still there (the host did not restart)")
      bmc_vm_type "ISOBOOT_TOKEN=$token /mnt/isoboot overlay restore --remount http://10.0.2.2:$store_port/overlay/$node; echo ISOBOOT-SEED-RESTORE-rc\$((\$? + 100)); echo ISOBOOT-SEED-FILE: \$(cat /etc/isoboot-seed)"
      bmc_vm_wait_for "$dir/console2.out" '^ISOBOOT-SEED-FILE:' 180 "$console_pid" || true
      bmc_vm_lines "$dir/console2.out" | grep -qa "^ISOBOOT-SEED-FILE: $proof\$" ||
        problems+=("the restore did not bring the file back: $(bmc_vm_lines "$dir/console2.out" | grep -a 'ISOBOOT-SEED-RESTORE\|ISOBOOT-SEED-FILE\|error' | tail -n 3 || true)")
    else
      problems+=("second boot: no ISOBOOT-LIVE-SHELL on the SOL console within ${timeout} s")
    fi
    bmc_vm_end_console
    ((rc == 0)) || problems+=("the second isoboot bmc boot --console exited $rc: $(tail -n 3 "$dir/boot2.err")")
    kill -0 "$other_sol" 2>/dev/null && problems+=("the other SOL session was not taken over")
    qemu_stop_pid "$other_sol"
  fi

  if ((${#problems[@]} == 0)); then
    echo "$vendor $fw: isoboot bmc boot to the live shell on SOL in ${boot1} s, again after the backup in ${boot2} s; the file came back from the store"
  else
    status=1
    echo "FAIL $vendor $fw: ${problems[*]}"
    bmc_vm_show_failure "$dir"
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
