#!/usr/bin/env bash
# End to end: a real KIWI live ISO (tests/image/build-kiwi-live.sh) boots in
# QEMU from `isoboot serve` alone, in a private network namespace with a
# bridge and a tap, until the live root prints ISOBOOT-LIVE-OK with proof it
# runs from the AoE-backed image. Paths:
#   bios-ipxe      SeaBIOS + iPXE ROM, isoboot full DHCP, kernel/initrd over HTTP
#   bios-pxelinux  SeaBIOS, pxelinux.0 over TFTP, kernel/initrd over TFTP
#   uefi-ipxe      OVMF, ipxe.efi, kernel/initrd over HTTP
#   proxy-dnsmasq  isoboot ProxyDHCP beside dnsmasq as the site's DHCP server
#   uefi-proxy     the same with OVMF (UEFI firmware, port 4011 allowed)
#   uefi-native-proxy  the same with OVMF's own PXE client (no iPXE ROM)
#   reference      KIWI's documented stack: dnsmasq DHCP+TFTP, vblade, a
#                  hand-written pxelinux.cfg (no isoboot at all)
# and faults, each of which must still reach the marker:
#   fault-restart  the server is killed (SIGKILL) and restarted while the
#                  client reads its root over AoE
#   fault-loss     5% of frames dropped on the bridge, both directions
#                  (nftables, bridge family, numgen random)
#   two-servers    a second isoboot exports the same image as the same
#                  shelf.slot from another namespace on the bridge; both
#                  must have served AoE reads
# and the boot-time overlay restore:
#   overlay-restore  a backup stored in serve's --backup-dir for the client's
#                  MAC is restored by the hook (contrib/dracut, loaded with
#                  --initrd-add) before the live root's /sbin/init runs
# Prints seconds from QEMU start to the marker for each and the ratio to the
# reference stack. E2E_PATHS selects paths (space separated). The ISO is
# cached outside the checkout (KIWI_CACHE, default /var/cache/isoboot/kiwi),
# keyed by its inputs, so a kept machine builds it once.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
# shellcheck source=tests/qemu/lib.sh
source "$src/tests/qemu/lib.sh"
bin=${ISOBOOT_BIN:?ISOBOOT_BIN must name the isoboot binary}
paths=${E2E_PATHS:-bios-ipxe bios-pxelinux uefi-ipxe proxy-dnsmasq uefi-proxy uefi-native-proxy reference fault-restart fault-loss two-servers overlay-restore}
timeout=${E2E_TIMEOUT:-420}
export QEMU_MEM=${QEMU_MEM:-512}

iso=$("$src/tests/image/build-kiwi-live.sh" "${KIWI_CACHE:-/var/cache/isoboot/kiwi}")
tmp=$(mktemp -d "${ISOBOOT_TEST_TMP:-/tmp}/e2e.XXXXXX")
ns=isbe2e$$
br=br0
tap=tap0
mac=52:54:00:12:34:56
QEMU_PID=""
trap 'qemu_test_cleanup "$ns" "$tmp"' EXIT

qemu_netns_setup "$ns" "$br" "$tap"
ip -n "$ns" addr add 10.88.0.1/24 dev "$br"

declare -A seconds=()
failures=0
boot() {  # NAME FIRMWARE [HOOK]: HOOK runs once QEMU is up (faults)
  local name=$1 fw=$2 hook=${3:-} console=$tmp/$1.console
  local -a args=()
  mkdir -p "$tmp/$name.vars"
  qemu_netboot_args args "$tap" "$mac" "$fw" "$tmp/$name.vars"
  local t0=$SECONDS
  qemu_start "$ns" "$console" "${args[@]}"
  [[ -n $hook ]] && $hook
  if qemu_wait_marker "$console" "ISOBOOT-LIVE-(OK|FAIL)" "$timeout" && grep -qa "ISOBOOT-LIVE-OK" "$console" \
      && grep -qa "etherd/e0.1" "$console"; then
    seconds[$name]=$((SECONDS - t0))
    echo "PASS $name: marker after ${seconds[$name]} s"
    grep -a -A4 "ISOBOOT-LIVE-OK" "$console" | head -6
  else
    echo "FAIL $name: no ISOBOOT-LIVE-OK from /dev/etherd/e0.1 within ${timeout}s; console tail:"
    tail -30 "$console" | cut -c1-200
    failures=$((failures + 1))
  fi
  QEMU_PID=""
}

serve() {  # LOG ARGS... : isoboot serve on the bridge
  local log=$1
  shift
  qemu_bg_start "$ns" "$log" "$bin" serve "$iso" --interface "$br" --append "console=ttyS0" --announce 2 "$@"
  serve_pid=${QEMU_BG_PIDS[-1]}
  qemu_wait_log "$log" "ready:"
}
full_dhcp=(--dhcp full --dhcp-range 10.88.0.100,10.88.0.150 --lease-file "$tmp/leases")

# fault-restart: once the client reads its root over AoE, kill the server
# outright and start a new one; the Linux aoe driver retransmits meanwhile.
restart_during_aoe() {
  for _ in $(seq 3000); do grep -q "first AoE reads" "$tmp/serve.log" && break; sleep 0.1; done
  grep -q "first AoE reads" "$tmp/serve.log" || { echo "no AoE reads to interrupt"; return 0; }
  kill -KILL "$serve_pid"
  wait "$serve_pid" 2>/dev/null || true
  echo "killed the server during AoE reads; restarting it in 2 s"
  sleep 2
  mv "$tmp/serve.log" "$tmp/serve-killed.log"
  serve "$tmp/serve.log" "${full_dhcp[@]}"
}

for path in $paths; do
  echo "== $path"
  # E2E_PCAP_DIR=DIR keeps each path's bridge traffic and logs for debugging.
  if [[ -n ${E2E_PCAP_DIR:-} ]]; then
    mkdir -p "$E2E_PCAP_DIR"
    qemu_bg_start "$ns" "$tmp/tcpdump.log" tcpdump -i "$br" -U -s 512 -w "$E2E_PCAP_DIR/$path.pcap" not port 8080
  fi
  case $path in
    bios-ipxe)
      serve "$tmp/serve.log" "${full_dhcp[@]}"
      boot "$path" bios
      ;;
    bios-pxelinux)
      serve "$tmp/serve.log" "${full_dhcp[@]}" --bios-loader pxelinux
      boot "$path" bios
      ;;
    uefi-ipxe)
      serve "$tmp/serve.log" "${full_dhcp[@]}"
      boot "$path" uefi
      ;;
    fault-restart)
      serve "$tmp/serve.log" "${full_dhcp[@]}"
      boot "$path" bios restart_during_aoe
      grep -q "first AoE reads" "$tmp/serve.log" || { echo "FAIL $path: the restarted server served no AoE reads"; failures=$((failures + 1)); }
      ;;
    fault-loss)
      ip netns exec "$ns" nft -f - <<'NFT'
table bridge isoboot_loss {
  chain loss_in { type filter hook input priority 0; numgen random mod 100 < 5 counter drop; }
  chain loss_out { type filter hook output priority 0; numgen random mod 100 < 5 counter drop; }
  chain loss_fwd { type filter hook forward priority 0; numgen random mod 100 < 5 counter drop; }
}
NFT
      serve "$tmp/serve.log" "${full_dhcp[@]}"
      boot "$path" bios
      dropped=$(ip netns exec "$ns" nft list table bridge isoboot_loss | grep -Eo "packets [0-9]+" | awk '{s+=$2} END {print s+0}')
      echo "frames dropped on the bridge: $dropped"
      ((dropped > 0)) || { echo "FAIL $path: the loss rules dropped nothing"; failures=$((failures + 1)); }
      ip netns exec "$ns" nft delete table bridge isoboot_loss
      ;;
    two-servers)
      # The second server lives in its own namespace, joined to the bridge
      # by a veth, so it has its own MAC: the driver sees two paths to e0.1.
      ns2=${ns}b
      ip netns add "$ns2"
      ip link add veth2 netns "$ns2" type veth peer name veth2br netns "$ns"
      ip -n "$ns" link set veth2br master "$br" up
      ip -n "$ns2" link set veth2 up
      ip netns exec "$ns2" "$bin" aoe export 0 1 veth2 "$iso" --announce 2 --stats-file "$tmp/aoe2.stats" \
        >"$tmp/aoe2.log" 2>&1 &
      QEMU_BG_PIDS+=($!)
      serve "$tmp/serve.log" "${full_dhcp[@]}"
      boot "$path" bios
      qemu_bg_stop_all
      grep -q "first AoE reads" "$tmp/serve.log" || { echo "FAIL $path: serve had no AoE reads"; failures=$((failures + 1)); }
      second=$(grep -Eo "^total frames=[0-9]+ bytes=[0-9]+" "$tmp/aoe2.stats" | grep -Eo "bytes=[0-9]+" | cut -d= -f2)
      echo "second server: ${second:-0} bytes read"
      ((${second:-0} > 0)) || { echo "FAIL $path: the second server served no AoE reads"; failures=$((failures + 1)); }
      ip netns del "$ns2"
      ;;
    overlay-restore)
      # Issue 7's boot-time restore: a backup PUT to serve's store under the
      # client's MAC; serve gives that node isoboot.overlay=URL?key= and loads
      # the restore hook after the image's initrd (the KIWI image has no
      # such module); the hook restores before the switch to the live root.
      # The backup replaces /sbin/init with one that also prints a proof
      # found only in the backup, so the marker shows the restore happened
      # before anything ran from the overlay.
      "$src/contrib/dracut/make-initrd-addon.sh" "$tmp/addon.cpio.gz" "$bin"
      serve "$tmp/serve.log" "${full_dhcp[@]}" --backup-dir "$tmp/store" --initrd-add "$tmp/addon.cpio.gz"
      proof="overlay-backup-$$-$RANDOM"
      mkdir -p "$tmp/upper/sbin" "$tmp/upper/etc"
      echo "$proof" >"$tmp/upper/etc/isoboot-overlay-proof"
      sed 's|^echo "ISOBOOT-LIVE-OK"$|&\necho "ISOBOOT-OVERLAY-RESTORED: $(cat /etc/isoboot-overlay-proof)"|' \
        "$src/tests/image/live-init.sh" >"$tmp/upper/sbin/init"
      chmod 0755 "$tmp/upper/sbin/init"
      grep -q ISOBOOT-OVERLAY-RESTORED "$tmp/upper/sbin/init"
      ip netns exec "$ns" "$bin" overlay backup --upper "$tmp/upper" --token-file "$tmp/store/.token" \
        -o "http://10.88.0.1:8080/overlay/$mac"
      boot "$path" bios
      if grep -qa "ISOBOOT-OVERLAY-RESTORED: $proof" "$tmp/$path.console"; then
        echo "the live root ran the restored /sbin/init: $(grep -a ISOBOOT-OVERLAY-RESTORED "$tmp/$path.console" | head -1)"
      else
        echo "FAIL $path: the backup was not restored before the live root started"
        grep -a -i "isoboot-overlay\|overlay" "$tmp/$path.console" | head -10 || true
        failures=$((failures + 1))
      fi
      grep -q "GET /overlay/${mac//:/-} 200" "$tmp/serve.log" || { echo "FAIL $path: the node never fetched its backup"; failures=$((failures + 1)); }
      ;;
    proxy-dnsmasq | uefi-proxy)
      qemu_bg_start "$ns" "$tmp/dnsmasq.log" dnsmasq --no-daemon --port=0 --interface="$br" --bind-interfaces \
        --dhcp-range=10.88.0.50,10.88.0.60,12h --dhcp-leasefile="$tmp/dnsmasq.leases" --log-dhcp
      serve "$tmp/serve.log" --dhcp proxy
      boot "$path" "$([[ $path == uefi-proxy ]] && echo uefi || echo bios)"
      ;;
    uefi-native-proxy)
      # OVMF's own PXE client (EDK2 PxeBcDxe; the NIC has no iPXE ROM), with
      # dnsmasq as the site DHCP server on the same host (same server id) and
      # isoboot as ProxyDHCP: EDK2 takes ipxe.efi from the proxy offer and
      # fetches it over TFTP (tsize, windowsize), then iPXE takes over.
      qemu_bg_start "$ns" "$tmp/dnsmasq.log" dnsmasq --no-daemon --port=0 --interface="$br" --bind-interfaces \
        --dhcp-range=10.88.0.50,10.88.0.60,12h --dhcp-leasefile="$tmp/dnsmasq.leases" --log-dhcp
      serve "$tmp/serve.log" --dhcp proxy
      QEMU_NIC_ROMFILE="" boot "$path" uefi
      grep -E "port 4011|4011|ipxe.efi" "$tmp/serve.log" | head -5 || true
      ;;
    reference)
      # KIWI's documented procedure, by hand: kernel and initrd copied out of
      # the ISO into a TFTP root, vblade exporting the ISO, pxelinux.cfg
      # written by hand, dnsmasq for DHCP and TFTP.
      root=$tmp/tftproot
      mkdir -p "$root/boot" "$root/pxelinux.cfg"
      "$bin" iso cat "$iso" /boot/x86_64/loader/linux >"$root/boot/linux"
      "$bin" iso cat "$iso" /boot/x86_64/loader/initrd >"$root/boot/initrd"
      cp /usr/lib/PXELINUX/pxelinux.0 /usr/lib/syslinux/modules/bios/ldlinux.c32 "$root/"
      printf 'DEFAULT live\nLABEL live\n  KERNEL boot/linux\n  APPEND initrd=boot/initrd rd.kiwi.live.pxe root=live:AOEINTERFACE=e0.1 console=ttyS0\n' \
        >"$root/pxelinux.cfg/default"
      qemu_bg_start "$ns" "$tmp/vblade.log" vblade 0 1 "$br" "$iso"
      qemu_bg_start "$ns" "$tmp/dnsmasq.log" dnsmasq --no-daemon --port=0 --interface="$br" --bind-interfaces \
        --dhcp-range=10.88.0.50,10.88.0.60,12h --dhcp-leasefile="$tmp/dnsmasq.leases" \
        --dhcp-boot=pxelinux.0 --enable-tftp --tftp-root="$root"
      sleep 1
      boot "$path" bios
      ;;
    *)
      echo "unknown path $path"
      exit 2
      ;;
  esac
  [[ -f $tmp/serve.log ]] && { grep -E "sent|GET|first AoE|ACK|OFFER" "$tmp/serve.log" | cut -c1-160 | head -12 || true; }
  [[ -n ${E2E_PCAP_DIR:-} ]] && cp "$tmp"/*.log "$tmp/$path.console" "$E2E_PCAP_DIR/" 2>/dev/null
  qemu_bg_stop_all
  rm -f "$tmp/serve.log"
done

echo "== boot times (QEMU start to marker, software emulation)"
ref=${seconds[reference]:-}
for path in $paths; do
  t=${seconds[$path]:-}
  if [[ -z $t ]]; then
    printf '%-14s failed\n' "$path"
  elif [[ -n $ref && $path != reference ]]; then
    printf '%-14s %4d s  %.2fx the reference stack\n' "$path" "$t" "$(echo "$t / $ref" | bc -l)"
  else
    printf '%-14s %4d s\n' "$path" "$t"
  fi
done
n=$(wc -w <<<"$paths")
echo "$((n - failures)) passed, $failures failed"
((failures == 0))
