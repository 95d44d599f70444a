#!/usr/bin/env bash
# `isoboot bmc boot --serve live.iso --data DIR --console` on a VM that really
# boots: the data medium the PITDATA way. isoboot builds an ISO 9660 image of
# DIR labelled PITDATA, serves it beside the live ISO and inserts it into the
# BMC's second virtual-media slot (iLO 5's Floppy/USBStick slot, behind the
# fake BMC with the real iLO 5 tree, tests/bmc/fake_bmc.py --vm-dir); the
# fake makes that slot a USB stick of the VM (qemu-xhci + usb-storage) read
# by QEMU's HTTP block driver from the URL isoboot gave the BMC. The VM
# (SeaBIOS) boots the CD; on the live system's shell (read and typed on over
# isoboot's SOL console, through ipmi_sim as in seed_flow_slow_test.sh) the
# filesystem labelled PITDATA must be found by label (busybox findfs: the
# test root has no udev, so no /dev/disk/by-label) and, mounted, give back
# DIR's files byte for byte.
#
# The test root has no kernel modules of its own and its initrd only those
# for the CD, so the live system first fetches xhci-pci, usb-storage and
# sd_mod (with their dependencies, in load order) of its own kernel from the
# chroot the test image was built in, over QEMU's user network (10.0.2.2 is
# this namespace's loopback), and loads them with insmod; a real live image
# has them.
#
# Everything runs in a network namespace holding only loopback, made and
# removed here. E2E_TIMEOUT bounds the boot (default 420 s).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
# shellcheck source=tests/qemu/lib.sh
source "$src/tests/qemu/lib.sh"
# shellcheck source=tests/bmc/vm_lib.sh
source "$src/tests/bmc/vm_lib.sh"
bin=${ISOBOOT_BIN:?ISOBOOT_BIN must name the isoboot binary}
timeout=${E2E_TIMEOUT:-420}
kiwi_cache=${KIWI_CACHE:-/var/cache/isoboot/kiwi}
fail() { echo "FAIL: $*"; exit 1; }

for tool in ipmi_sim ipmitool; do
  command -v "$tool" >/dev/null || fail "$tool missing: scripts/deps.sh qemu"
done
qemu_need_http_driver
iso=$("$src/tests/image/build-kiwi-live.sh" "$kiwi_cache")
tmp=$(mktemp -d "${ISOBOOT_TEST_TMP:-/tmp}/bmcdata.XXXXXX")
ns=isbdata$$
console_pid=""
trap bmc_vm_cleanup EXIT
# IPMI passwords are at most 20 bytes.
export BMC_PW="Pw-$$-noargv"

# The USB modules for the live system, per kernel the build chroots hold:
# mods/KVER/*.ko and mods/KVER/order (load order).
mkdir -p "$tmp/mods" "$tmp/www"
for moddir in "$kiwi_cache"/chroot-*/lib/modules/*/; do
  [[ -d $moddir ]] || continue
  kver=$(basename "$moddir")
  root=${moddir%/lib/modules/*}
  mkdir -p "$tmp/mods/$kver"
  for mod in xhci_pci usb_storage sd_mod; do  # --show-depends takes one module
    while read -r verb path _; do
      [[ $verb == insmod ]] || continue
      grep -qxF "$(basename "$path")" "$tmp/mods/$kver/order" 2>/dev/null && continue
      cp "$path" "$tmp/mods/$kver/"
      basename "$path" >>"$tmp/mods/$kver/order"
    done < <(modprobe -d "$root" -S "$kver" --show-depends "$mod")
  done
done
[[ -n $(ls "$tmp/mods") ]] || fail "no kernel modules under $kiwi_cache/chroot-*/lib/modules"
tar -C "$tmp/mods" -cf "$tmp/www/usb.tar" .
bmc_vm_cert
ip netns add "$ns"
ip -n "$ns" link set lo up
bmc_vm_www || fail "see above"
www_port=$bmc_vm_www_port

# DIR: PIT-like configs, one of them binary, one in a subdirectory.
data=$tmp/pitdata
proof="pit-proof-$$-$RANDOM"
mkdir -p "$data/prep/site-init"
echo "$proof" >"$data/system_config.yaml"
head -c 100000 /dev/urandom >"$data/prep/site-init/customizations.bin"
want_sum=$(sha256sum <"$data/prep/site-init/customizations.bin" | cut -d' ' -f1)

dir=$tmp/ilo5-bios
bmc_vm_start_fake "$dir" ilo5 bios --vm-ipmi --vm-user-net --vm-mem 768 || fail "see above"

start=$SECONDS
bmc_vm_console_boot "$dir/in" "$dir/console.out" "$dir/boot.err" --serve "$iso" --data "$data" \
  --http-address 127.0.0.1 --http-port 0 --json
out=$dir/console.out err=$dir/boot.err

problems=()
if bmc_vm_wait_for "$out" '^ISOBOOT-LIVE-SHELL' "$timeout" "$console_pid"; then
  boot=$((SECONDS - start))
  # The NIC on QEMU's user network, the USB modules, then the labelled filesystem.
  bmc_vm_type "$bmc_vm_guest_net; mkdir -p /run/mods /run/pit; mount -t tmpfs mods /run/mods && wget -q -O - http://10.0.2.2:$www_port/usb.tar | tar -x -C /run/mods && k=\$(uname -r) && for m in \$(cat /run/mods/\$k/order); do insmod /run/mods/\$k/\$m 2>/dev/null || echo ISOBOOT-DATA-NOT-LOADED: \$m; done; echo ISOBOOT-DATA-MODS-\$((40 + 2))"
  bmc_vm_wait_for "$out" '^ISOBOOT-DATA-MODS-42' 180 "$console_pid" ||
    problems+=("the live system did not load the USB modules")
  # The stick shows up a moment after usb-storage loads: wait (bounded) for its label.
  bmc_vm_type "i=0; until d=\$(findfs LABEL=PITDATA 2>/dev/null) || [ \$i -ge 60 ]; do sleep 1; i=\$((i + 1)); done; echo ISOBOOT-DATA-DEV: \$d; echo ISOBOOT-DATA-DISKS: \$(grep -o ' [hsv]d[a-z]*\$' /proc/partitions); mount -t iso9660 -o ro \$d /run/pit && echo ISOBOOT-DATA-FILE: \$(cat /run/pit/system_config.yaml) && echo ISOBOOT-DATA-SUM: \$(sha256sum </run/pit/prep/site-init/customizations.bin); echo ISOBOOT-DATA-DONE-\$((40 + 2))"
  bmc_vm_wait_for "$out" '^ISOBOOT-DATA-DONE-42' 120 "$console_pid" ||
    problems+=("the live system did not finish looking for PITDATA")
  bmc_vm_has "$out" -aE '^ISOBOOT-DATA-DEV: /dev/sd[a-z]+$' ||
    problems+=("findfs LABEL=PITDATA found no USB disk: $(bmc_vm_lines "$out" | grep -a 'ISOBOOT-DATA-DEV' | tail -n 1 || true)")
  bmc_vm_has "$out" -ax "ISOBOOT-DATA-FILE: $proof" ||
    problems+=("system_config.yaml did not read back: $(bmc_vm_lines "$out" | grep -a 'ISOBOOT-DATA-FILE' | tail -n 1 || true)")
  bmc_vm_has "$out" -a "^ISOBOOT-DATA-SUM: $want_sum" ||
    problems+=("customizations.bin did not read back: $(bmc_vm_lines "$out" | grep -a 'ISOBOOT-DATA-SUM' | tail -n 1 || true)")
else
  problems+=("no ISOBOOT-LIVE-SHELL on the SOL console within ${timeout} s")
fi
bmc_vm_end_console
((rc == 0)) || problems+=("isoboot bmc boot --console exited $rc: $(tail -n 3 "$err" || true)")
# What isoboot reported, and what the VM was given: the URL isoboot served.
data_url=$(bmc_vm_lines "$out" | grep -ao '"data_image": "[^"]*"' | head -n1 | cut -d'"' -f4 || true)
[[ $data_url == http://127.0.0.1:*/PITDATA.iso ]] || problems+=("no data_image URL in --json: $data_url")
bmc_vm_has "$out" -a '"data_slot": "/redfish/v1/Managers/1/VirtualMedia/1"' ||
  problems+=("the data image did not go to iLO's USBStick slot 1")
grep -qaF "\"data\": \"$data_url\"" "$dir/vm/vm.log" 2>/dev/null ||
  problems+=("the VM was not started with the data image as its USB stick: $(tail -n 1 "$dir/vm/vm.log" 2>/dev/null || true)")

if ((${#problems[@]} == 0)); then
  echo "ilo5 bios: isoboot bmc boot --data to the live shell in ${boot} s; PITDATA found by label on the USB stick and its files read back"
  echo "data_medium: passed"
  exit 0
fi
echo "FAIL ilo5 bios: ${problems[*]}"
for f in "$err" "$out"; do
  [[ -e $f ]] && { echo "--- $f (last 30 lines)"; bmc_vm_lines "$f" | tail -n 30; }
done
echo "--- the VM's serial console (last 15 lines)"; bmc_vm_lines "$dir/vm/console.log" | tail -n 15 || true
echo "--- qemu"; cat "$dir/vm/qemu.out" 2>/dev/null || true
echo "data_medium: failed"
exit 1
