# shellcheck shell=bash
# Helpers for tests that boot a QEMU guest on a private network, sourced by
# tests/*/*_slow_test.sh (bash, set -euo pipefail, run as root):
#   - the host kernel (Debian's linux-image-amd64) and a tiny busybox
#     initramfs around it with chosen modules and a test's /init, cached under
#     build/qemu-cache/ keyed by kernel version and content;
#   - a network namespace with a bridge and a tap for the guest's NIC, so
#     servers under test run on the bridge and nothing leaves the namespace;
#   - QEMU started inside that namespace, its serial console read until a
#     marker line or a deadline, then stopped by PID.
# Every wait is bounded. Only processes started here are ever killed, by PID.
# No KVM in CI: guests run under TCG, so keep them small (-m 256, no disks).

QEMU_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
QEMU_SOURCE_DIR=${ISOBOOT_SOURCE_DIR:-$(cd "$QEMU_LIB_DIR/../.." && pwd)}
QEMU_CACHE_DIR=${QEMU_CACHE_DIR:-$QEMU_SOURCE_DIR/build/qemu-cache}

qemu_log() { echo "qemu-lib: $*" >&2; }

# Prints the version of the newest installed kernel that has both
# /boot/vmlinuz-VER and /lib/modules/VER (Debian's linux-image-amd64).
qemu_kernel_version() {
  local best="" v
  for f in /boot/vmlinuz-*; do
    [[ -e $f ]] || continue
    v=${f#/boot/vmlinuz-}
    [[ -d /lib/modules/$v/kernel ]] || continue
    if [[ -z $best ]] || [[ $(printf '%s\n%s\n' "$best" "$v" | sort -V | tail -n1) == "$v" ]]; then
      best=$v
    fi
  done
  [[ -n $best ]] || { qemu_log "no /boot/vmlinuz-* with /lib/modules (apt-get install linux-image-amd64)"; return 1; }
  echo "$best"
}

# Prints the kernel image to boot for KVER. Under TCG most of a small guest's
# boot is the bzImage decompressing itself (~25 of ~40 s on a loaded 2-core
# machine), so when the kernel supports PVH entry (CONFIG_PVH=y, as Debian's
# does) and is xz-compressed, the uncompressed ELF vmlinux is extracted once
# into the cache and booted directly (QEMU loads ELF kernels via PVH).
# Otherwise, or if extraction fails, /boot/vmlinuz-KVER itself.
qemu_kernel_image() {  # KVER
  local kver=$1 vmlinuz=/boot/vmlinuz-$1
  local out=$QEMU_CACHE_DIR/$kver/vmlinux
  if [[ ${QEMU_KERNEL_PVH:-1} == 1 ]] && grep -qx 'CONFIG_PVH=y' "/boot/config-$kver" 2>/dev/null; then
    if [[ -s $out ]]; then
      echo "$out"
      return 0
    fi
    local off
    off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$vmlinuz" 2>/dev/null | head -n1 | cut -d: -f1 || true)
    if [[ -n $off ]]; then
      mkdir -p "$QEMU_CACHE_DIR/$kver"
      local tmp=$out.tmp.$$
      # xz stops after the first stream, so tail may die of SIGPIPE: only
      # xz's status counts.
      if { tail -c +$((off + 1)) "$vmlinuz" || true; } | xz -dc --single-stream >"$tmp" 2>/dev/null &&
        [[ $(head -c4 "$tmp" | od -An -tx1 | tr -d ' ') == 7f454c46 ]]; then
        mv -f "$tmp" "$out"
        echo "$out"
        return 0
      fi
      rm -f "$tmp"
    fi
    qemu_log "could not extract an ELF vmlinux from $vmlinuz; booting it compressed (slower)"
  fi
  echo "$vmlinuz"
}

# Prints the module files needed to load MODULE... on kernel KVER, dependencies
# first, each once; built-in modules print nothing.
qemu_module_files() {  # KVER MODULE...
  local kver=$1 m line
  shift
  declare -A seen=()
  for m in "$@"; do
    while read -r line; do
      [[ $line == insmod\ * ]] || continue
      line=${line#insmod }
      line=${line%% *}
      [[ -n ${seen[$line]+x} ]] && continue
      seen[$line]=1
      echo "$line"
    done < <(modprobe -S "$kver" --show-depends "$m")
  done
}

# Builds (or reuses) a gzip'd newc initramfs holding busybox (static), the
# modules MODULE... of kernel KVER with their dependencies (decompressed, in
# load order, listed in /etc/modules.order) and INIT as /init. Prints its
# path. The cache key covers the kernel version, INIT, the module list and this
# file, so editing any of them rebuilds.
qemu_build_initramfs() {  # KVER INIT MODULE...
  local kver=$1 init=$2
  shift 2
  local busybox=/bin/busybox
  [[ -x $busybox ]] || { qemu_log "$busybox missing (apt-get install busybox-static)"; return 1; }
  if ldd "$busybox" >/dev/null 2>&1; then
    qemu_log "$busybox is dynamically linked (apt-get install busybox-static)"
    return 1
  fi
  local key
  key=$( { echo "$kver $*"; cat "$init" "${BASH_SOURCE[0]}"; sha256sum "$busybox"; } | sha256sum | cut -c1-16)
  local out=$QEMU_CACHE_DIR/$kver/initramfs-$key.cpio.gz
  if [[ -s $out ]]; then
    echo "$out"
    return 0
  fi
  mkdir -p "$QEMU_CACHE_DIR/$kver"
  local root
  root=$(mktemp -d "$QEMU_CACHE_DIR/$kver/root.XXXXXX")
  mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,etc,lib/modules,mnt}
  cp "$busybox" "$root/bin/busybox"
  local applet
  for applet in $("$busybox" --list); do
    [[ $applet == busybox ]] || ln -sf busybox "$root/bin/$applet"
  done
  local f name
  : >"$root/etc/modules.order"
  while read -r f; do
    name=$(basename "$f")
    case $f in
      *.ko) cp "$f" "$root/lib/modules/$name" ;;
      *.ko.xz) xz -dc "$f" >"$root/lib/modules/${name%.xz}"; name=${name%.xz} ;;
      *.ko.zst) zstd -qdc "$f" >"$root/lib/modules/${name%.zst}"; name=${name%.zst} ;;
      *.ko.gz) gzip -dc "$f" >"$root/lib/modules/${name%.gz}"; name=${name%.gz} ;;
      *) qemu_log "unknown module file $f"; rm -rf "$root"; return 1 ;;
    esac
    echo "$name" >>"$root/etc/modules.order"
  done < <(qemu_module_files "$kver" "$@")
  install -m 0755 "$init" "$root/init"
  local tmp=$out.tmp.$$
  (cd "$root" && find . -print0 | sort -z | cpio --null -o -H newc --quiet -R 0:0) | gzip -1 >"$tmp"
  rm -rf "$root"
  mv -f "$tmp" "$out"  # atomic: parallel tests never see a partial file
  echo "$out"
}

# Creates network namespace NS holding bridge BR and tap TAP (enslaved to BR),
# all up with MTU (default 1500), and lo up. Servers under test then run with
# `ip netns exec NS` on BR; QEMU attaches to TAP. Undo with qemu_netns_teardown.
qemu_netns_setup() {  # NS BR TAP [MTU]
  local ns=$1 br=$2 tap=$3 mtu=${4:-1500}
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip -n "$ns" link add "$br" type bridge
  # No STP/forward delay: the port forwards as soon as the guest's NIC is up.
  ip -n "$ns" link set "$br" type bridge stp_state 0 forward_delay 0
  qemu_netns_add_tap "$ns" "$br" "$tap" "$mtu"
  ip -n "$ns" link set "$br" mtu "$mtu"
  ip -n "$ns" link set "$br" up
}

# Adds one more tap TAP to bridge BR in NS (made by qemu_netns_setup), up,
# with MTU (default 1500): one per further guest on the same network.
qemu_netns_add_tap() {  # NS BR TAP [MTU]
  local ns=$1 br=$2 tap=$3 mtu=${4:-1500}
  ip -n "$ns" tuntap add dev "$tap" mode tap
  ip -n "$ns" link set "$tap" mtu "$mtu" master "$br"
  ip -n "$ns" link set "$tap" up
}

# Fails unless QEMU's HTTP (curl) block driver is installed: a virtual CD
# read over HTTP, as a BMC's virtual media reads it.
qemu_need_http_driver() {
  dpkg-query -W -f='${Status}' qemu-block-extra 2>/dev/null | grep -q "install ok installed" || {
    echo "FAIL: qemu-block-extra (QEMU's HTTP block driver) missing: scripts/deps.sh qemu"
    exit 1
  }
}

# Removes NS and everything in it; harmless if it does not exist.
qemu_netns_teardown() {  # NS
  ip netns del "$1" 2>/dev/null || true
}

# Sends SIGTERM to PID, waits up to 5 s, then SIGKILL. Only for PIDs the
# caller started itself.
qemu_stop_pid() {  # PID
  local pid=$1 i
  [[ -n $pid ]] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# Servers a boot test runs beside its VM: started in a namespace in the
# background, their PIDs kept in QEMU_BG_PIDS, stopped together.
QEMU_BG_PIDS=()
qemu_bg_start() {  # NS LOG CMD... : CMD inside NS, output to LOG
  local ns=$1 log=$2
  shift 2
  # The background shell truncates LOG only once it runs: a qemu_wait_log
  # right after would otherwise read a previous run's lines.
  rm -f "$log"
  ip netns exec "$ns" "$@" >"$log" 2>&1 &
  QEMU_BG_PIDS+=($!)
}
qemu_bg_stop_all() {
  local p
  for p in "${QEMU_BG_PIDS[@]}"; do qemu_stop_pid "$p"; done
  QEMU_BG_PIDS=()
}

# Waits up to 10 s for PATTERN (grep) in LOG; prints LOG's tail if not.
qemu_wait_log() {  # LOG PATTERN
  local i
  for ((i = 0; i < 100; i++)); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "did not see '$2' in $1:"
  tail -20 "$1"
  return 1
}

# A boot test's EXIT trap: the VM (QEMU_PID), the servers, NS, then DIR.
qemu_test_cleanup() {  # NS DIR
  qemu_stop_pid "${QEMU_PID:-}"
  qemu_bg_stop_all
  qemu_netns_teardown "$1"
  rm -rf "$2"
}

# Starts `qemu-system-x86_64 -nographic -no-reboot ARGS...` inside NS (or on
# the host when NS is empty) in the background, its console (serial on
# stdio) going to LOG. Sets QEMU_PID. The guest's serial console is the only
# output channel, so LOG is what a test inspects.
qemu_start() {  # NS LOG ARGS...
  local ns=$1 log=$2
  shift 2
  local -a cmd=(qemu-system-x86_64 -nographic -no-reboot "$@")
  [[ -n $ns ]] && cmd=(ip netns exec "$ns" "${cmd[@]}")
  # ip netns exec execs qemu, so $! is QEMU's own PID.
  "${cmd[@]}" </dev/null >"$log" 2>&1 &
  QEMU_PID=$!
}

# Waits until a line of LOG matches the extended regex MARKER, QEMU_PID exits
# or TIMEOUT seconds pass, leaving QEMU running. Returns 0 when the marker
# was seen, 1 when QEMU exited without it, 2 on timeout. For progress lines
# the host reacts to while the guest keeps going.
qemu_wait_line() {  # LOG MARKER TIMEOUT
  local log=$1 marker=$2 timeout=$3
  local deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    grep -qaE "$marker" "$log" 2>/dev/null && return 0
    if ! kill -0 "$QEMU_PID" 2>/dev/null; then
      wait "$QEMU_PID" 2>/dev/null || true
      grep -qaE "$marker" "$log" 2>/dev/null && return 0
      return 1
    fi
    sleep 0.2
  done
  qemu_log "no line matching '$marker' within ${timeout}s"
  return 2
}

# qemu_wait_line for several guests at once, each a PID and its console LOG:
# waits until every LOG has a line matching MARKER or its PID has exited, or
# TIMEOUT seconds pass, leaving the guests running. Prints one line per guest,
# "LOG SECONDS" (seconds from the call to its marker), "LOG exited" or
# "LOG timeout". Returns 0 when every guest showed the marker.
qemu_wait_lines() {  # MARKER TIMEOUT PID LOG [PID LOG]...
  local marker=$1 timeout=$2 start=$SECONDS i pending
  shift 2
  local -a pids=() logs=() result=()
  while (($# >= 2)); do
    pids+=("$1") logs+=("$2") result+=("")
    shift 2
  done
  while :; do
    pending=0
    for i in "${!pids[@]}"; do
      [[ -n ${result[i]} ]] && continue
      if grep -qaE "$marker" "${logs[i]}" 2>/dev/null; then
        result[i]=$((SECONDS - start))
      elif ! kill -0 "${pids[i]}" 2>/dev/null; then
        grep -qaE "$marker" "${logs[i]}" 2>/dev/null && result[i]=$((SECONDS - start)) || result[i]=exited
      else
        pending=1
      fi
    done
    ((pending && SECONDS - start < timeout)) || break
    sleep 0.5
  done
  local status=0
  for i in "${!pids[@]}"; do
    echo "${logs[i]} ${result[i]:-timeout}"
    [[ ${result[i]:-timeout} =~ ^[0-9]+$ ]] || status=1
  done
  return $status
}

# Like qemu_wait_line, for the guest's final verdict: once the marker is seen
# the guest gets up to 10 s to power off by itself, and QEMU is stopped in any
# case (also on timeout) before returning.
qemu_wait_marker() {  # LOG MARKER TIMEOUT
  local status=0 i
  qemu_wait_line "$@" || status=$?
  if ((status == 0)); then
    for ((i = 0; i < 100; i++)); do
      kill -0 "$QEMU_PID" 2>/dev/null || break
      sleep 0.1
    done
  fi
  ((status == 2)) && qemu_log "stopping QEMU (pid $QEMU_PID)"
  qemu_stop_pid "$QEMU_PID"
  return $status
}

# The common QEMU arguments for a small guest with one virtio NIC on TAP with
# MAC, direct kernel boot of KERNEL with INITRD and command line APPEND.
# Prints nothing; appends to the array named by the first argument.
qemu_direct_boot_args() {  # ARRAY_NAME KERNEL INITRD APPEND TAP MAC
  local -n qemu_args_out_=$1
  qemu_args_out_+=(-machine "${QEMU_MACHINE:-pc}" -m "${QEMU_MEM:-256}" -smp 1
    -accel "${QEMU_ACCEL:-tcg}"
    -kernel "$2" -initrd "$3" -append "$4"
    -netdev "tap,id=n0,ifname=$5,script=no,downscript=no"
    -device "virtio-net-pci,netdev=n0,mac=$6,romfile="
    -nodefaults -serial stdio)
}

# QEMU arguments for a network (PXE) boot from the NIC on TAP with MAC and no
# disks: FIRMWARE bios (SeaBIOS + iPXE ROM, -machine pc) or uefi (OVMF + its
# own PXE/HTTP boot, -machine q35; needs a writable copy of the variable store,
# made in VARS_DIR). Appends to the array named by the first argument.
# QEMU_NIC_ROMFILE, when set, replaces the NIC's option ROM (QEMU's iPXE);
# empty: none, so OVMF boots with its own virtio-net driver and PXE client.
qemu_netboot_args() {  # ARRAY_NAME TAP MAC FIRMWARE [VARS_DIR]
  local -n qemu_netboot_out_=$1
  local tap=$2 mac=$3 fw=$4 vars_dir=${5:-}
  case $fw in
    bios)
      qemu_netboot_out_+=(-machine "${QEMU_MACHINE:-pc}")
      ;;
    uefi)
      local code=/usr/share/OVMF/OVMF_CODE_4M.fd vars=/usr/share/OVMF/OVMF_VARS_4M.fd
      [[ -r $code && -r $vars ]] || { qemu_log "OVMF missing (apt-get install ovmf)"; return 1; }
      [[ -n $vars_dir ]] || { qemu_log "qemu_netboot_args uefi needs VARS_DIR"; return 1; }
      cp "$vars" "$vars_dir/OVMF_VARS.fd"
      qemu_netboot_out_+=(-machine "${QEMU_MACHINE:-q35}"
        -drive "if=pflash,format=raw,unit=0,readonly=on,file=$code"
        -drive "if=pflash,format=raw,unit=1,file=$vars_dir/OVMF_VARS.fd")
      ;;
    *) qemu_log "unknown firmware $fw (bios or uefi)"; return 1 ;;
  esac
  qemu_netboot_out_+=(-m "${QEMU_MEM:-256}" -smp 1 -accel "${QEMU_ACCEL:-tcg}" -boot n
    -netdev "tap,id=n0,ifname=$tap,script=no,downscript=no"
    -device "virtio-net-pci,netdev=n0,mac=$mac,bootindex=1${QEMU_NIC_ROMFILE+,romfile=$QEMU_NIC_ROMFILE}"
    -nodefaults -serial stdio)
}
