#!/usr/bin/env bash
# Per-node images booted through a BMC's virtual CD, and the node's overlay
# restored at boot by the image's own initrd. One `isoboot serve --http-only`
# (--server-ip 10.0.2.2: QEMU's user network onto this namespace's loopback)
# has, for each case's VM MAC, --node MAC=ARGS, --node-files MAC=DIR, a
# --backup-dir and --initrd-add with contrib/dracut/make-initrd-addon.sh's
# restore hook. For each vendor and firmware in NODE_VM_CASES (default
# "ilo5:bios ami:uefi"), a powered-off VM behind the fake BMC of that vendor
# (tests/bmc/fake_bmc.py --vm-dir, its NIC on QEMU's user network with that
# MAC, ipmi_sim for SOL):
#  1. `isoboot bmc boot --iso http://.../nodes/<mac>.iso --console`: the live
#     system's /proc/cmdline (ISOBOOT-LIVE-CMDLINE) has the node's arguments
#     and no isoboot.overlay=, and the file from DIR is on its CD
#     (/run/overlay/live, the medium kiwi-live mounted, under
#     --node-files-path) with DIR's content;
#  2. through the console the live system writes a new file and overwrites
#     /etc/isoboot-proof (the file its /sbin/init prints first), fetches
#     isoboot (the test root is busybox only) and sends `isoboot overlay
#     backup` to serve's store under the VM's MAC with that name's write key;
#  3. `isoboot bmc boot --iso` with the same URL plus ?key=READ-KEY (without it
#     serve answers 403: the image now carries the key): serve makes the node
#     image anew, its /proc/cmdline now has isoboot.overlay=...?key= (and
#     rd.neednet=1 ip=dhcp), the initrd's hook fetched the backup (serve's
#     log) and nothing is restored by hand: /sbin/init already prints the
#     backed-up /etc/isoboot-proof, and the new file is there with its
#     content.
#
# Everything runs in a network namespace holding only loopback, made and
# removed here. Prints seconds from each `isoboot bmc boot` to the shell.
# E2E_TIMEOUT bounds each boot (default 420 s). BMC_VM_SHOW=1 shows isoboot's
# output and the SOL console as they come.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
# shellcheck source=tests/qemu/lib.sh
source "$src/tests/qemu/lib.sh"
# shellcheck source=tests/bmc/vm_lib.sh
source "$src/tests/bmc/vm_lib.sh"
bin=${ISOBOOT_BIN:?ISOBOOT_BIN must name the isoboot binary}
timeout=${E2E_TIMEOUT:-420}
read -r -a cases <<<"${NODE_VM_CASES:-ilo5:bios ami:uefi}"
fail() { echo "FAIL: $*"; exit 1; }

bmc_vm_sol_setup node || fail "see above"
"$src/contrib/dracut/make-initrd-addon.sh" "$tmp/addon.cpio.gz" "$bin"

# Each case's node: its VM's MAC, arguments and files.
declare -A mac args files_proof
node_opts=()
n=0
for case in "${cases[@]}"; do
  vendor=${case%%:*} fw=${case#*:}
  n=$((n + 1))
  mac[$case]=$(printf '52:54:00:4e:0d:%02x' "$n")
  args[$case]="node.test=$vendor-$fw hostname=node-$vendor-$fw"
  files_proof[$case]="node-files-$vendor-$fw-$$-$RANDOM"
  mkdir -p "$tmp/files-$vendor-$fw/sub"
  echo "${files_proof[$case]}" >"$tmp/files-$vendor-$fw/sub/node-file.txt"
  node_opts+=(--node "${mac[$case]}=${args[$case]}" --node-files "${mac[$case]}=$tmp/files-$vendor-$fw")
done

mkdir -p "$tmp/store"
qemu_bg_start "$ns" "$tmp/serve.log" "$bin" serve "$iso" --http-only --http-address 127.0.0.1 \
  --http-port 0 --server-ip 10.0.2.2 --backup-dir "$tmp/store" --initrd-add "$tmp/addon.cpio.gz" \
  "${node_opts[@]}"
qemu_wait_log "$tmp/serve.log" "ready:" || fail "serve did not start: $(tail -n 5 "$tmp/serve.log")"
port=$(grep -o 'HTTP on [0-9]*;' "$tmp/serve.log" | head -n1 | tr -dc 0-9)
[[ -n $port ]] || fail "no HTTP port in serve's log"

bmc_vm_tools || fail "see above"

# Boots the case's node image ($url) with its console in $dir (inN,
# consoleN.out, bootN.err) and checks what every boot of it shows: the
# node's arguments on the kernel command line, the CD as the live medium and
# the node's file on it. Sets secs (to the shell) and cmdline; returns 1 when
# no shell came.
boot_node() {  # WHEN N
  local out=$dir/console$2.out start=$SECONDS
  bmc_vm_console_boot "$dir/in$2" "$out" "$dir/boot$2.err" --iso "$url"
  if ! bmc_vm_wait_for "$out" '^ISOBOOT-LIVE-SHELL' "$timeout" "$console_pid"; then
    problems+=("$1: no ISOBOOT-LIVE-SHELL on the SOL console within ${timeout} s")
    return 1
  fi
  secs=$((SECONDS - start))
  cmdline=$(bmc_vm_lines "$out" | grep -a '^ISOBOOT-LIVE-CMDLINE:' | head -n1)
  [[ " $cmdline " == *" ${args[$case]} "* ]] ||
    problems+=("$1: the node's arguments are not on the kernel command line: $cmdline")
  bmc_vm_lines "$out" | grep -qa '^ISOBOOT-LIVE-MEDIA: .* /run/overlay/live .* - iso9660 /dev/sr0 ' ||
    problems+=("$1: the live medium is not the CD /dev/sr0 at /run/overlay/live")
  bmc_vm_type "echo ISOBOOT-NODE-FILE: \$(cat /run/overlay/live/pitdata/sub/node-file.txt)"
  bmc_vm_wait_for "$out" '^ISOBOOT-NODE-FILE:' 60 "$console_pid" || true
  bmc_vm_lines "$out" | grep -qax "ISOBOOT-NODE-FILE: ${files_proof[$case]}" ||
    problems+=("$1: the node's file is not on its CD: $(bmc_vm_lines "$out" | grep -a 'ISOBOOT-NODE-FILE\|node-file' | tail -n 2 || true)")
}

# Ends boot_node's console; isoboot must have exited 0.
end_boot() {  # WHEN N
  bmc_vm_end_console
  ((rc == 0)) || problems+=("$1: isoboot bmc boot --console exited $rc: $(tail -n 3 "$dir/boot$2.err")")
}

status=0
for case in "${cases[@]}"; do
  vendor=${case%%:*} fw=${case#*:}
  dir=$tmp/$vendor-$fw
  problems=()
  bmc_vm_start_fake "$dir" "$vendor" "$fw" --vm-ipmi --vm-user-net --vm-mem 768 \
    --vm-mac "${mac[$case]}" || fail "see above"
  name=${mac[$case]//:/-}
  url=http://127.0.0.1:$port/nodes/$name.iso
  key=$("$bin" overlay key "${mac[$case]}" --backup-dir "$tmp/store")
  proof="node-overlay-$vendor-$fw-$$-$RANDOM"
  init_proof="node-init-proof-$vendor-$fw-$$-$RANDOM"
  made_before=$(grep -c "node $name: image made" "$tmp/serve.log" || true)

  # 1-2: the node's image with its arguments and files; a backup.
  if boot_node "first boot" 1; then
    boot1=$secs
    [[ $cmdline == *isoboot.overlay=* ]] && problems+=("first boot: isoboot.overlay= before any backup: $cmdline")
    out=$dir/console1.out
    bmc_vm_type "echo $proof >/etc/isoboot-node-file; echo $init_proof >/etc/isoboot-proof; $bmc_vm_get_tools"
    bmc_vm_wait_for "$out" '^ISOBOOT-TOOLS-42' 180 "$console_pid" ||
      problems+=("first boot: the live system did not fetch isoboot")
    bmc_vm_type "ISOBOOT_TOKEN=$key /mnt/isoboot overlay backup -o http://10.0.2.2:$port/overlay/${mac[$case]}; echo ISOBOOT-NODE-BACKUP-rc\$((\$? + 100))"
    bmc_vm_wait_for "$out" '^ISOBOOT-NODE-BACKUP-rc' 180 "$console_pid" || true
    bmc_vm_lines "$out" | grep -qa '^ISOBOOT-NODE-BACKUP-rc100' ||
      problems+=("the backup failed: $(bmc_vm_lines "$out" | grep -a 'ISOBOOT-NODE-BACKUP-rc\|error' | tail -n 3 || true)")
  fi
  end_boot "first boot" 1
  grep -q "PUT /overlay/${mac[$case]} 20[01]" "$tmp/serve.log" && grep -q "node $name: its next boots restore" "$tmp/serve.log" ||
    problems+=("the store got no backup for $name")

  # 3: the same URL again, now with the node's read key: its image carries
  # that key (in isoboot.overlay=), so serve refuses it without the key.
  # The backup is restored by the initrd's hook, before the root's
  # /sbin/init prints /etc/isoboot-proof.
  read_key=$("$bin" overlay key "${mac[$case]}" --read --backup-dir "$tmp/store")
  refused=$(ip netns exec "$ns" curl -s -o /dev/null -w '%{http_code}' "$url" || true)
  [[ $refused == 403 ]] || problems+=("the node image with its key in it was served without the key ($refused)")
  url="$url?key=$read_key"
  if ((${#problems[@]} == 0)); then
    if boot_node "second boot" 2; then
      boot2=$secs
      out=$dir/console2.out
      [[ $cmdline == *" isoboot.overlay=http://10.0.2.2:$port/overlay/$name?key="* ]] ||
        problems+=("second boot: no isoboot.overlay= for $name on the kernel command line: $cmdline")
      bmc_vm_lines "$out" | grep -qax "ISOBOOT-LIVE-PROOF: $init_proof" ||
        problems+=("second boot: /sbin/init did not see the restored /etc/isoboot-proof: $(bmc_vm_lines "$out" | grep -a '^ISOBOOT-LIVE-PROOF' || true)")
      bmc_vm_type "echo ISOBOOT-NODE-RESTORED: \$(cat /etc/isoboot-node-file 2>&1)"
      bmc_vm_wait_for "$out" '^ISOBOOT-NODE-RESTORED:' 60 "$console_pid" || true
      bmc_vm_lines "$out" | grep -qax "ISOBOOT-NODE-RESTORED: $proof" ||
        problems+=("second boot: the file written before the backup is not back: $(bmc_vm_lines "$out" | grep -a '^ISOBOOT-NODE-RESTORED' || true)")
    fi
    end_boot "second boot" 2
    grep -q "GET /overlay/$name?key=[^ ]* 200" "$tmp/serve.log" ||
      grep -q "GET /overlay/$name 200" "$tmp/serve.log" || problems+=("the node never fetched its backup from serve")
    made=$(grep -c "node $name: image made" "$tmp/serve.log" || true)
    ((made - made_before == 2)) || problems+=("serve made $name's image $((made - made_before)) times, not 2 (once per boot's inputs)")
  fi

  if ((${#problems[@]} == 0)); then
    echo "$vendor $fw: the node image to the live shell on SOL in ${boot1} s (its arguments and file there);" \
      "after the backup, again in ${boot2} s with the overlay restored at boot"
  else
    status=1
    echo "FAIL $vendor $fw: ${problems[*]}"
    bmc_vm_show_failure "$dir"
    echo "--- serve (node, overlay)"; grep -a "node $name\|/overlay/" "$tmp/serve.log" | tail -n 20 || true
  fi
  qemu_stop_pid "$fake_pid"  # the fake stops its VM and ipmi_sim on SIGTERM
done

((status == 0)) && echo "node_image: passed" || echo "node_image: failed"
exit $status
