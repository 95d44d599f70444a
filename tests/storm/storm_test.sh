#!/usr/bin/env bash
# The boot-storm generator (bench/storm) checked against the servers it
# measures, so that a failure it counts is one a real client would have had:
#   1. KIWI's documented stack (dnsmasq DHCP+TFTP with --no-ping, vblade,
#      nginx): 20 nodes,
#      half BIOS and half UEFI, every one reaches its root, every AoE byte
#      compared with the ISO;
#   2. isoboot serve with full DHCP: the same 20 nodes, 0 failures;
#   3. the reference stack broken (undionly.kpxe and the initrd missing):
#      every BIOS node fails in its TFTP phase with the server's error and
#      every UEFI node in its HTTP phase with a 404, and nothing else.
# Correctness only: no timing thresholds. Needs scripts/deps.sh test qemu kiwi
# (dnsmasq, vblade, nginx, the ipxe loaders).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
bin=${ISOBOOT_BIN:?ISOBOOT_BIN must name the isoboot binary}
# shellcheck source=bench/storm/lib.sh
source "$src/bench/storm/lib.sh"
n=${STORM_TEST_NODES:-20}
# dnsmasq pings each new address before offering it (about 3 s, few at a
# time); on a loaded machine that alone can pass the PXE ROM's 60 s for the
# last of 20 nodes. The storm's counting is what is tested here, not that.
STORM_DNSMASQ_ARGS=${STORM_DNSMASQ_ARGS---no-ping}
iso=$("$src/tests/image/build-kiwi-live.sh" "${KIWI_CACHE:-/var/cache/isoboot/kiwi}")
mkdir -p "${ISOBOOT_TEST_TMP:-/tmp}"
STORM_DIR=$(mktemp -d "${ISOBOOT_TEST_TMP:-/tmp}/storm.XXXXXX")
trap 'storm_cleanup; rm -rf "$STORM_DIR"' EXIT
storm_build "$STORM_DIR"
storm=$STORM_DIR/storm
blocks=$src/bench/storm/kiwi-blocks.txt
storm_net_up
failures=0
check() {  # NAME: the storm's RESULT and table of run NAME
  local name=$1 out=$STORM_DIR/$1.out
  echo "== $name: $(tail -1 "$out")"
  grep "^failure" "$out" || true
  head -5 "$out.err"
}
expect_ok() {  # NAME STORM_RC
  local name=$1 rc=$2 out=$STORM_DIR/$1.out tsv=$STORM_DIR/$1.tsv
  check "$name"
  if ((rc != 0)) || ! grep -q "^RESULT nodes=$n ok=$n failed=0 " "$out" \
      || (($(awk -F'\t' 'NR > 1 && $NF == "ok"' "$tsv" | wc -l) != n)); then
    echo "FAIL $name: expected $n nodes at their root and no failure (storm exit $rc)"
    failures=$((failures + 1))
    return 0
  fi
  grep -Eq "aoe_baddata=0 " "$out" || { echo "FAIL $name: AoE data differed"; failures=$((failures + 1)); }
  echo "PASS $name"
}

# 1. The reference stack.
storm_start_reference "$iso" "$STORM_DIR"
rc=0
storm_run "$storm" "$STORM_DIR/reference.out" -n "$n" -b "$blocks" -f "$iso" -o "$STORM_DIR/reference.tsv" -T 240 -q || rc=$?
storm_stop_servers
expect_ok reference "$rc"

# 2. isoboot.
storm_start_isoboot "$bin" "$iso" "$STORM_DIR"
rc=0
storm_run "$storm" "$STORM_DIR/isoboot.out" -n "$n" -b "$blocks" -f "$iso" -o "$STORM_DIR/isoboot.tsv" -T 240 -q || rc=$?
storm_stop_servers
expect_ok isoboot "$rc"
if grep -q "^RESULT .* failed=[1-9]" "$STORM_DIR/isoboot.out"; then
  echo "isoboot's log, last lines:"
  tail -20 "$STORM_DIR/isoboot.log"
fi

# 3. The reference stack with two files missing: every node fails, each
#    where and why it really would.
rm "$STORM_DIR/ref/tftp/undionly.kpxe" "$STORM_DIR/ref/www/boot/initrd"
rm -f "$STORM_DIR/dnsmasq.leases"
storm_start_reference "$iso" "$STORM_DIR"
rc=0
storm_run "$storm" "$STORM_DIR/broken.out" -n "$n" -b "$blocks" -f "$iso" -o "$STORM_DIR/broken.tsv" -T 120 -q || rc=$?
storm_stop_servers
check broken
tsv=$STORM_DIR/broken.tsv
bios=$(awk -F'\t' 'NR > 1 && $3 == "bios"' "$tsv" | wc -l)
bios_tftp=$(awk -F'\t' 'NR > 1 && $3 == "bios" && $NF ~ /^tftp: TFTP error 1 .*undionly.kpxe/' "$tsv" | wc -l)
uefi_404=$(awk -F'\t' 'NR > 1 && $3 == "uefi" && $NF ~ /^http: HTTP 404 for http:.*\/boot\/initrd$/' "$tsv" | wc -l)
echo "broken: $bios BIOS nodes, $bios_tftp failed in TFTP (file not found); $uefi_404 UEFI nodes failed with HTTP 404 for the initrd"
if ((rc != 1)) || ! grep -q "^RESULT nodes=$n ok=0 failed=$n " "$STORM_DIR/broken.out" \
    || ((bios == 0 || bios == n || bios_tftp != bios || uefi_404 != n - bios)); then
  echo "FAIL broken: expected all $n nodes counted as failed, each in its real phase (storm exit $rc)"
  failures=$((failures + 1))
else
  echo "PASS broken"
fi
((failures == 0))
