#!/usr/bin/env bash
# A manual experiment, not a test (ctest does not run it): isoboot's HTTP
# server is stopped and started again while a VM boots from its ISO as the
# virtual CD of a fake iLO 5 (tests/bmc/fake_bmc.py --vm-dir), and the guest's
# console shows whether the boot survived. The outage starts when the console
# shows FAULT_AT (default "loop: module loaded"), or once serve has answered
# FAULT_AT_RANGES Range requests, and lasts FAULT_GAP seconds (default 3).
# Results are in docs/bmc.md ("Faults seen on the VM"). ISOBOOT_BIN names the
# binary. Runs in a network namespace holding only loopback, removed after.
set -uo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${ISOBOOT_BIN:?ISOBOOT_BIN must name the isoboot binary}
source "$src/tests/qemu/lib.sh"
iso=$($src/tests/image/build-kiwi-live.sh /var/cache/isoboot/kiwi)
tmp=$(mktemp -d /tmp/fault.XXXXXX); ns=isbfault$$
trap 'qemu_test_cleanup "$ns" "$tmp"' EXIT
export BMC_PW=Pw-fault
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1
ip netns add $ns; ip -n $ns link set lo up
qemu_bg_start $ns $tmp/serve1.log $bin serve $iso --http-only --http-address 127.0.0.1 --http-port 18080
qemu_wait_log $tmp/serve1.log ready: || exit 1
serve_pid=${QEMU_BG_PIDS[-1]}
qemu_bg_start $ns $tmp/fake.out python3 $src/tests/bmc/fake_bmc.py --mockups $src/tests/bmc/redfish-mockups --profile ilo5 --cert $tmp/cert.pem --key $tmp/key.pem --port-file $tmp/port --log $tmp/requests --password-env BMC_PW --power Off --vm-dir $tmp/vm --vm-firmware bios
for i in $(seq 100); do [[ -s $tmp/port ]] && break; sleep 0.1; done
start=$SECONDS
ip netns exec $ns $bin bmc boot --bmc 127.0.0.1:$(cat $tmp/port) --user admin --password-env BMC_PW --ca $tmp/cert.pem --iso http://127.0.0.1:18080/live.iso --poll-interval 0.5 > $tmp/boot.out 2>&1; echo "bmc boot rc=$?"
# wait until the initrd starts reading the squashfs (kiwi-live mounts the CD)
if [[ -n ${FAULT_AT_RANGES:-} ]]; then for i in $(seq 3000); do (( $(grep -c "GET /live.iso 206" $tmp/serve1.log) >= FAULT_AT_RANGES )) && break; sleep 0.05; done; else for i in $(seq 600); do grep -qa "${FAULT_AT:-loop: module loaded}" $tmp/vm/console.log && break; sleep 0.2; done; fi
echo "at $((SECONDS-start)) s: $(grep -c 'GET /live.iso 206' $tmp/serve1.log) ranges served; stopping serve"
qemu_stop_pid $serve_pid
sleep ${FAULT_GAP:-3}
qemu_bg_start $ns $tmp/serve2.log $bin serve $iso --http-only --http-address 127.0.0.1 --http-port 18080
qemu_wait_log $tmp/serve2.log ready: && echo "serve restarted after ${FAULT_GAP:-3} s"
for i in $(seq 300); do grep -qa 'ISOBOOT-LIVE-END\|Kernel panic\|emergency\|I/O error' $tmp/vm/console.log && break; sleep 1; done
echo "after $((SECONDS-start)) s:"; grep -a 'ISOBOOT-LIVE-OK\|I/O error\|SQUASHFS error\|Kernel panic\|emergency\|curl' $tmp/vm/console.log | head -10
echo "served after restart: $(grep -c 'GET /live.iso 206' $tmp/serve2.log) ranges"; grep -a curl $tmp/vm/qemu.out | head -5
