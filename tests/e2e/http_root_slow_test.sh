#!/usr/bin/env bash
# End to end: every live layout isoboot claims boots in QEMU (SeaBIOS + iPXE
# ROM, isoboot full DHCP, kernel/initrd over HTTP) with its root over HTTP
# from `isoboot serve IMAGE --root http` alone, to the ISOBOOT-LIVE-OK marker
# its live root prints with the facts proving where the root came from
# (tests/image/live-init.sh). Paths:
#   dracut-http         Fedora-style dracut live ISO (tests/image/build-dracut-
#                       live.sh): dracut's livenet downloads the image named
#                       by root=live:URL, dmsquash-live mounts it
#   kiwi-dmsquash-http  KIWI's layout with dracut's dmsquash-live/livenet
#                       initrd (KIWI's flags="dmsquash" way)
#   live-build-http     Debian live-boot ISO made by live-build (tests/image/
#                       build-live-build.sh): live-boot's fetch= downloads
#                       live/filesystem.squashfs
#   dracut-nbd-peer     the dracut live ISO with its root over NBD from a peer
#                       server (nbdkit, read-only, beside isoboot serve's
#                       DHCP/TFTP/HTTP): root=live:CDLABEL=VOLID rd.live.image
#                       netroot=nbd:SERVER:PORT given by --append (dracut
#                       and systemd take the last root=)
#   kiwi-aoe            the KIWI image over AoE (boot_slow_test.sh's
#                       bios-ipxe), for comparison
# By default the two layouts that tests/e2e/routed_slow_test.sh does not
# boot: it boots the dracut live ISO over HTTP and over serve's own NBD
# export through a router (dracut-http and dracut-nbd-peer stay here for
# checks by hand), and boot_slow_test.sh boots KIWI over AoE in the same run.
# For each the serve log's HTTP requests (path, bytes) are printed: what the
# initrd downloaded. Prints seconds from QEMU start to the marker per path.
# E2E_PATHS selects paths. The images are cached outside the checkout
# (KIWI_CACHE, default /var/cache/isoboot/kiwi, shared with the KIWI image;
# LB_CACHE, default /var/cache/isoboot/live-build).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
# shellcheck source=tests/qemu/lib.sh
source "$src/tests/qemu/lib.sh"
bin=${ISOBOOT_BIN:?ISOBOOT_BIN must name the isoboot binary}
paths=${E2E_PATHS:-kiwi-dmsquash-http live-build-http}
timeout=${E2E_TIMEOUT:-420}
# livenet and live-boot download their image into RAM (tmpfs).
export QEMU_MEM=${QEMU_MEM:-1024}
kiwi_cache=${KIWI_CACHE:-/var/cache/isoboot/kiwi}
lb_cache=${LB_CACHE:-/var/cache/isoboot/live-build}

image() {  # PATH: prints the ISO the path boots (building it if needed)
  case $1 in
    dracut-http | dracut-nbd-peer) "$src/tests/image/build-dracut-live.sh" "$kiwi_cache" ;;
    kiwi-dmsquash-http) "$src/tests/image/build-kiwi-live.sh" "$kiwi_cache" kiwi-dmsquash ;;
    kiwi-aoe) "$src/tests/image/build-kiwi-live.sh" "$kiwi_cache" ;;
    live-build-http) "$src/tests/image/build-live-build.sh" "$lb_cache" ;;
    *) echo "unknown path $1" >&2; return 2 ;;
  esac
}
declare -A isos=()
for path in $paths; do
  isos[$path]=$(image "$path")
done

tmp=$(mktemp -d "${ISOBOOT_TEST_TMP:-/tmp}/e2e-http.XXXXXX")
ns=isbhttp$$
br=br0
tap=tap0
mac=52:54:00:12:34:57
QEMU_PID=""
trap 'qemu_test_cleanup "$ns" "$tmp"' EXIT

qemu_netns_setup "$ns" "$br" "$tap"
ip -n "$ns" addr add 10.88.0.1/24 dev "$br"

serve() {  # ISO LOG ARGS... : isoboot serve on the bridge, full DHCP
  local iso=$1 log=$2
  shift 2
  qemu_bg_start "$ns" "$log" "$bin" serve "$iso" --interface "$br" --dhcp full --dhcp-range 10.88.0.100,10.88.0.150 \
    --lease-file "$tmp/leases" --announce 2 "$@"
  qemu_wait_log "$log" "ready:"
}

declare -A seconds=()
failures=0
fail() {  # PATH MESSAGE
  echo "FAIL $1: $2"
  failures=$((failures + 1))
}
boot() {  # PATH PROOF_REGEX: boots, waits for the marker and the proof line
  local name=$1 proof=$2 console=$tmp/$1.console
  local -a args=()
  qemu_netboot_args args "$tap" "$mac" bios
  local t0=$SECONDS
  qemu_start "$ns" "$console" "${args[@]}"
  if qemu_wait_marker "$console" "ISOBOOT-LIVE-(OK|FAIL)" "$timeout" && grep -qa "ISOBOOT-LIVE-OK" "$console" \
      && grep -qaE "$proof" "$console"; then
    seconds[$name]=$((SECONDS - t0))
    echo "PASS $name: marker after ${seconds[$name]} s"
    grep -a "^ISOBOOT-LIVE-" "$console" | cut -c1-220
  else
    fail "$name" "no ISOBOOT-LIVE-OK with proof /$proof/ within ${timeout}s; console tail:"
    tail -40 "$console" | cut -c1-200
  fi
  QEMU_PID=""
}
# The HTTP requests serve logged: path, status, bytes (what the initrd fetched).
requests() {  # LOG
  grep -aE ' (GET|HEAD) [^ ]+ [0-9]+: [0-9]+ of [0-9]+ bytes' "$1" | sed -E 's/.* ((GET|HEAD) .*)/  \1/' || true
}
expect_request() {  # PATH LOG URL_PATH: URL_PATH was served in full (200)
  local line
  line=$(grep -aE " GET $3 200: [0-9]+ of [0-9]+ bytes" "$2" | tail -n1 || true)
  if [[ -z $line ]]; then
    fail "$1" "the initrd never fetched $3 (HTTP requests: $(requests "$2" | tr '\n' ';'))"
    return
  fi
  local sent total
  sent=$(sed -E 's/.*: ([0-9]+) of ([0-9]+) bytes.*/\1/' <<<"$line")
  total=$(sed -E 's/.*: ([0-9]+) of ([0-9]+) bytes.*/\2/' <<<"$line")
  [[ $sent == "$total" ]] || fail "$1" "$3 was cut short: $sent of $total bytes"
}
# No request for the whole ISO: the initrd fetched only what it needs.
expect_no_request() {  # PATH LOG URL_PATH
  if grep -qaE " GET $3 " "$2"; then fail "$1" "the initrd fetched $3, more than it needs"; fi
}

for path in $paths; do
  echo "== $path (${isos[$path]})"
  iso=${isos[$path]}
  log=$tmp/$path.serve.log
  case $path in
    dracut-http)
      serve "$iso" "$log" --root http --append console=ttyS0
      # livenet's curl writes the squashfs to /tmp in the initrd; dmsquash-
      # live loops it: the backing file is the downloaded image.
      boot "$path" "ISOBOOT-LIVE-LOOP: loop[0-9]+/loop/backing_file /.*squashfs\.img"
      expect_request "$path" "$log" /LiveOS/squashfs.img
      expect_no_request "$path" "$log" /live.iso
      ;;
    kiwi-dmsquash-http)
      # The initrd, not the KIWI layout, decides the command line: dracut's,
      # and the squashfs alone is fetched.
      serve "$iso" "$log" --root http --append console=ttyS0
      boot "$path" "ISOBOOT-LIVE-LOOP: loop[0-9]+/loop/backing_file /.*squashfs\.img"
      expect_request "$path" "$log" /LiveOS/squashfs.img
      expect_no_request "$path" "$log" /live.iso
      ;;
    live-build-http)
      # The image has no init system: its init is live-init.sh (the ISO's own
      # boot menu names it too; isoboot's entry gets it from --append).
      serve "$iso" "$log" --root http --append "console=ttyS0 init=/sbin/isoboot-init"
      # live-boot mounts the fetched squashfs from a loop device.
      boot "$path" "ISOBOOT-LIVE-LOOP: loop[0-9]+/loop/backing_file /.*filesystem\.squashfs"
      expect_request "$path" "$log" /live/filesystem.squashfs
      expect_no_request "$path" "$log" /live.iso
      ;;
    dracut-nbd-peer)
      # The log filter writes one line per request as it goes: what the
      # guest read over NBD.
      qemu_bg_start "$ns" "$tmp/nbdkit.log" nbdkit --foreground --readonly --exit-with-parent -i 10.88.0.1 -p 10809 \
        --filter=log file "$iso" logfile="$tmp/nbdkit.requests"
      nbd_pid=${QEMU_BG_PIDS[-1]}
      for _ in $(seq 50); do
        ip netns exec "$ns" nbdinfo --size nbd://10.88.0.1:10809 >/dev/null 2>&1 && break
        sleep 0.1
      done
      # dmsquash-live waits for the ISO's label, which appears only once
      # nbd-client has connected /dev/nbd0 (root=live:/dev/nbd0 races it: the
      # device exists, empty, as soon as the module is loaded).
      volid=$(blkid -o value -s LABEL "$iso")
      serve "$iso" "$log" --root http \
        --append "root=live:CDLABEL=$volid rd.live.image netroot=nbd:10.88.0.1:10809 console=ttyS0"
      boot "$path" "ISOBOOT-LIVE-NBD: nbd0 $(stat -c %s "$iso") bytes"
      expect_no_request "$path" "$log" /LiveOS/squashfs.img
      expect_no_request "$path" "$log" /live.iso
      qemu_stop_pid "$nbd_pid"
      reads=0 read_bytes=0
      while read -r count; do
        reads=$((reads + 1))
        read_bytes=$((read_bytes + count))
      done < <(grep -Eo ' Read id=[0-9]+ offset=0x[0-9a-f]+ count=0x[0-9a-f]+' "$tmp/nbdkit.requests" 2>/dev/null |
        sed -E 's/.*count=0x/16#/')
      echo "  nbdkit served $reads reads, $read_bytes bytes of $(stat -c %s "$iso")"
      ((reads > 0)) || fail "$path" "nbdkit served no reads"
      ;;
    kiwi-aoe)
      serve "$iso" "$log" --append console=ttyS0
      boot "$path" "ISOBOOT-LIVE-ETHERD: .*etherd/e0\.1"
      ;;
  esac
  echo "  HTTP requests served:"
  requests "$log"
  qemu_bg_stop_all
done

echo "== boot times (QEMU start to marker, software emulation, BIOS + iPXE)"
for path in $paths; do
  t=${seconds[$path]:-}
  if [[ -z $t ]]; then
    printf '%-20s failed\n' "$path"
  else
    printf '%-20s %4d s\n' "$path" "$t"
  fi
done
echo "$failures failure(s)"
((failures == 0))
