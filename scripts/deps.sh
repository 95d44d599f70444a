#!/usr/bin/env bash
# Installs the Debian packages a task needs, only those missing; quiet when
# everything is there. Servers the tests run (dnsmasq, vblade) come as plain
# binaries started by the tests, never as system services. Usage: scripts/deps.sh GROUP... (build, test, fuzz, bench, qemu, kiwi, package)
set -euo pipefail

declare -A groups=(
  [build]="cmake ninja-build g++ pkg-config clang-format libisofs-dev libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev libarchive-dev libssl-dev libcurl4-openssl-dev libboost-dev libboost-system-dev libtomlplusplus-dev libssh-dev libseccomp-dev scdoc man-db groff-base"
  [test]="xorriso genisoimage cpio lz4 xz-utils bzip2 squashfs-tools iproute2 vblade aoetools tcpdump procps python3 curl libarchive-tools attr acl openssl ipmitool tftp-hpa atftp isc-dhcp-client isc-dhcp-relay dnsmasq-base busybox-static zstd bc nftables ndisc6 openssh-server openssh-client libnbd-bin nbd-client nbdkit qemu-utils gnutls-bin prometheus nginx-light"
  [fuzz]="clang libclang-rt-14-dev"
  [bench]="time bc hyperfine nginx-light wrk tftpd-hpa nbdkit libnbd-bin qemu-utils"
  [qemu]="qemu-system-x86 qemu-block-extra busybox-static linux-image-amd64 kmod xz-utils cpio ipxe-qemu ovmf pxelinux syslinux-common ipxe chromium openipmi ipmitool binutils"
  # kiwi: also the other test images (tests/image/build-live-build.sh: live-build)
  # and the NBD peer of tests/e2e/http_root_slow_test.sh (nbdkit, nbdinfo);
  # isolinux, GRUB (EFI), mtools and dosfstools make the KIWI ISO bootable as a CD.
  [kiwi]="debootstrap xorriso squashfs-tools e2fsprogs busybox-static qemu-system-x86 vblade dnsmasq-base iproute2 live-build nbdkit libnbd-bin util-linux isolinux syslinux-common grub-efi-amd64-bin grub-common mtools dosfstools"
  # The Debian package (scripts/package.sh, with build) and its test
  # (tests/package/deb_slow_test.sh, with qemu and kiwi).
  [package]="dpkg-dev debhelper lintian scdoc systemd mmdebstrap man-db"
)

wanted=()
for g in "$@"; do
  [[ -n "${groups[$g]+x}" ]] || { echo "deps.sh: unknown group $g" >&2; exit 2; }
  for p in ${groups[$g]}; do wanted+=("$p"); done
done

missing=()
for p in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
((${#missing[@]} == 0)) && exit 0

if [[ $(id -u) != 0 ]]; then
  echo "deps.sh: missing packages (${missing[*]}); run as root or install them" >&2
  exit 1
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
# Servers some packages bring (prometheus, nginx, tftpd-hpa) must not start as
# system services: policy-rc.d 101 tells invoke-rc.d not to start them
# (unless the machine already has its own policy).
policy=/usr/sbin/policy-rc.d
own_policy=
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  own_policy=1
fi
trap 'rm -f "$log"; [[ -z $own_policy ]] || rm -f "$policy"' EXIT
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  exit 1
fi
