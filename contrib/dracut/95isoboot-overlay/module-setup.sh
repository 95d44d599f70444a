#!/bin/bash
# dracut module: restore an `isoboot overlay backup` into a live system's
# overlay upper dir at boot, before anything runs from the merged root.
# Enabled by the kernel argument isoboot.overlay=URL (see
# isoboot-overlay-restore.sh). Install: copy this directory to
# /usr/lib/dracut/modules.d/ and rebuild the initrd with
# `dracut --add isoboot-overlay` (KIWI: add it to the image's dracut config).

check() {
    require_binaries isoboot mount || return 1
    return 255  # only when asked for
}

depends() {
    return 0  # the live image's own module brings the network up (AoE/PXE boots)
}

install() {
    inst_multiple isoboot mount grep ls rm tail
    inst_hook pre-pivot 50 "$moddir/isoboot-overlay-restore.sh"
}
