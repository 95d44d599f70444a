#!/usr/bin/env bash
# Builds (or reuses) a Fedora-style dracut live ISO and prints its path.
# Usage: tests/image/build-dracut-live.sh OUT_DIR (run as root).
#
# images/pxeboot/{vmlinuz,initrd.img} (what Fedora's ISOs have and
# src/iso/layout.cc detects as dracut live) and LiveOS/squashfs.img holding
# LiveOS/rootfs.img; the initrd is made by Debian's dracut 059 with
# dmsquash-live and livenet (dracut-live: root=live:http://... downloads the
# image) and nbd (root=live:/dev/nbd0 netroot=nbd:...). The chroot, the root
# and the cache are build-kiwi-live.sh's (flavor "dracut"): OUT_DIR is best
# the KIWI image's cache, so all the test images share one debootstrap.
set -euo pipefail
(($# == 1)) || { echo "usage: $0 OUT_DIR" >&2; exit 1; }
exec "$(dirname "${BASH_SOURCE[0]}")/build-kiwi-live.sh" "$1" dracut
