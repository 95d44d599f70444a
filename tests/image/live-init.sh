#!/bin/sh
# /sbin/init of the KIWI live test root (busybox sh). systemd's switch-root
# starts it with output on /dev/null, so it reopens the console first, then
# prints ISOBOOT-LIVE-OK and the facts proving where its root comes from (a
# file only in the root image, the kernel command line, the mounted
# /dev/etherd device for AoE, the medium kiwi-live mounted (/dev/sr0 from a
# CD), the files behind loop devices for a root downloaded over HTTP, the
# size of /dev/nbd0 for NBD), and powers off.
# With isoboot.shell (the CD's own menu entries) it then prints
# ISOBOOT-LIVE-SHELL and runs a shell on the console instead, as a live
# system's console gives its operator a login, and powers off when the shell
# ends.
# With isoboot.up=URL on the kernel command line it first tells the boot
# server it is up by fetching URL (bounded, and never failing the boot).
export PATH=/bin:/sbin
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec >/dev/console 2>&1 </dev/console
up="" shell=""
read -r cmdline </proc/cmdline
for arg in $cmdline; do
  case $arg in
    isoboot.up=*) up=${arg#isoboot.up=} ;;
    isoboot.shell) shell=1 ;;
  esac
done
# Bounded by timeout, not wget -T: bookworm's busybox 1.35 wget segfaults
# with -T.
if [ -n "$up" ]; then
  if timeout 10 wget -q -O /dev/null "$up"; then up="$up fetched"; else up="$up failed"; fi
fi
echo "ISOBOOT-LIVE-OK"
echo "ISOBOOT-LIVE-PROOF: $(cat /etc/isoboot-proof)"
echo "ISOBOOT-LIVE-CMDLINE: $(cat /proc/cmdline)"
echo "ISOBOOT-LIVE-IP: $(ip -4 addr show scope global | grep -o 'inet [0-9./]*' | cut -d' ' -f2 | tr '\n' ' ')"
[ -n "$up" ] && echo "ISOBOOT-LIVE-UP: $up"
echo "ISOBOOT-LIVE-ETHERD: $(grep /dev/etherd/ /proc/self/mountinfo | head -n1)"
echo "ISOBOOT-LIVE-MEDIA: $(grep ' /run/overlay/live ' /proc/self/mountinfo | head -n1)"
for f in /sys/block/loop*/loop/backing_file; do
  [ -r "$f" ] && echo "ISOBOOT-LIVE-LOOP: ${f#/sys/block/} $(cat "$f") $(($(cat "${f%/loop/backing_file}/size") * 512))"
done
[ -r /sys/block/nbd0/size ] && echo "ISOBOOT-LIVE-NBD: nbd0 $(($(cat /sys/block/nbd0/size) * 512)) bytes, pid $(cat /sys/block/nbd0/pid 2>/dev/null)"
echo "ISOBOOT-LIVE-ROOT: $(grep ' / / ' /proc/self/mountinfo | head -n1)"
echo "ISOBOOT-LIVE-UPTIME: $(cut -d' ' -f1 /proc/uptime)"
echo "ISOBOOT-LIVE-END"
if [ -n "$shell" ]; then
  echo "ISOBOOT-LIVE-SHELL"
  PS1='live# ' sh -i
fi
sync
poweroff -f
echo o >/proc/sysrq-trigger
sleep 10
