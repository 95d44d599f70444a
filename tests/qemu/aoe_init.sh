#!/bin/sh
# /init of the AoE test guest (busybox sh, PID 1): loads the NIC modules, brings
# eth0 up, loads the Linux aoe driver on it, waits (bounded) for
# /dev/etherd/<dev>, reads it end to end with sha256sum and prints one marker
# line on the console: "AOE-TEST: PASS ..." or "AOE-TEST: FAIL <why>", then
# powers off. Parameters come from the kernel command line:
#   aoe_test.dev=e0.1 aoe_test.sha256=HEX aoe_test.size=BYTES aoe_test.wait=SECONDS
#   aoe_test.mtu=BYTES (eth0's MTU; 1500 unless given)
#   aoe_test.poke=0 (never ask the driver for a discovery: only the driver's
#     own Query Config at load, and the target's announcements, find it)
#   aoe_test.nic_late=1 (load aoe.ko before bringing eth0 up)
# Module files and their load order come from /etc/modules.order (written by
# qemu_build_initramfs); aoe.ko is loaded last, once the NIC is up (unless
# nic_late=1), so its first broadcast Query Config goes out on a live link.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

dev=e0.1 want_sha='' want_size='' wait=90 mtu=1500 poke=1 nic_late=0
for arg in $(cat /proc/cmdline); do
  case $arg in
    aoe_test.dev=*) dev=${arg#*=} ;;
    aoe_test.sha256=*) want_sha=${arg#*=} ;;
    aoe_test.size=*) want_size=${arg#*=} ;;
    aoe_test.wait=*) wait=${arg#*=} ;;
    aoe_test.mtu=*) mtu=${arg#*=} ;;
    aoe_test.poke=*) poke=${arg#*=} ;;
    aoe_test.nic_late=*) nic_late=${arg#*=} ;;
  esac
done

up() { cut -d' ' -f1 /proc/uptime; }
finish() {
  dmesg | grep -i 'aoe:' | sed 's/^/aoe-init: dmesg: /'
  echo "AOE-TEST: $*"
  sync
  poweroff -f
  sleep 5
  echo o >/proc/sysrq-trigger
}

echo "aoe-init: init started at $(up) s"
for m in $(cat /etc/modules.order); do
  [ "$m" = aoe.ko ] && continue
  insmod "/lib/modules/$m" || finish "FAIL insmod $m"
done

# The NIC appears asynchronously once virtio_net binds; wait for it.
i=0
while [ ! -e /sys/class/net/eth0 ]; do
  i=$((i + 1))
  [ $i -gt 100 ] && finish "FAIL no eth0"
  sleep 0.1
done
load_aoe() {
  insmod /lib/modules/aoe.ko aoe_iflist=eth0 || finish "FAIL insmod aoe.ko"
  echo "aoe-init: aoe.ko loaded at $(up) s"
}
# With nic_late=1 the driver loads while eth0 is still down, so its one
# Query Config at load is lost (as in an initrd whose NIC comes up late).
[ "$nic_late" = 1 ] && load_aoe
ip link set lo up
ip link set eth0 mtu "$mtu" up || finish "FAIL ip link set eth0 mtu $mtu up"
i=0
while [ "$(cat /sys/class/net/eth0/carrier 2>/dev/null)" != 1 ]; do
  i=$((i + 1))
  [ $i -gt 100 ] && finish "FAIL eth0 has no carrier"
  sleep 0.1
done
echo "aoe-init: eth0 up ($(cat /sys/class/net/eth0/address), mtu $(cat /sys/class/net/eth0/mtu)) at $(up) s"
[ "$nic_late" = 1 ] || load_aoe

# Wait for the block device with a non-zero size (set after the target's
# ATA IDENTIFY reply); ask for a new discovery every 2 s meanwhile (unless
# poke=0), since the driver otherwise re-discovers only every 60 s.
node=/dev/etherd/$dev
sysdir=/sys/block/etherd!$dev
deadline=$(($(cut -d. -f1 /proc/uptime) + wait))
n=0
while :; do
  if [ -b "$node" ] && [ "$(cat "$sysdir/size" 2>/dev/null || echo 0)" != 0 ]; then
    break
  fi
  [ "$(cut -d. -f1 /proc/uptime)" -ge $deadline ] && finish "FAIL $node did not appear within ${wait}s"
  n=$((n + 1))
  [ "$poke" = 1 ] && [ $((n % 20)) = 0 ] && [ -c /dev/etherd/discover ] && echo >/dev/etherd/discover
  sleep 0.1
done
t_found=$(up)
size=$(($(cat "$sysdir/size") * 512))
echo "aoe-init: $node is $size bytes at $t_found s"
[ -n "$want_size" ] && [ "$size" != "$want_size" ] && finish "FAIL size $size, expected $want_size"

got_sha=$(sha256sum "$node" | cut -d' ' -f1)
[ -n "$got_sha" ] || finish "FAIL reading $node"
t_read=$(up)
if [ "$got_sha" = "$want_sha" ]; then
  finish "PASS dev=$dev size=$size sha256=$got_sha found_at=${t_found}s read_done_at=${t_read}s"
fi
finish "FAIL sha256 $got_sha, expected $want_sha"
