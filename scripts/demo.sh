#!/usr/bin/env bash
# The README's demo: builds isoboot and a small KIWI-layout live ISO (with
# xorriso, no root filesystem inside yet), then shows what isoboot reads from
# it without mounting: `iso info` and `iso ls`. Later this becomes a real
# network boot of the ISO in QEMU.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build test
scripts/build.sh release isoboot >/dev/null
work=build/demo
mkdir -p "$work"
scripts/make-layout-iso.sh kiwi "$work/live.iso" >/dev/null
bin=build/release/src/cli/isoboot
set -x
"$bin" iso info "$work/live.iso"
"$bin" iso ls -l "$work/live.iso" /boot/x86_64/loader
