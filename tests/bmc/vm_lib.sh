# shellcheck shell=bash
# Shared by the tests (and bench/bmc_boot_bench.sh) that put a QEMU VM behind
# tests/bmc/fake_bmc.py. Source after tests/qemu/lib.sh; they use the
# caller's ns (the network namespace), tmp (the scratch directory) and
# BMC_PW (the password, read by the fake from the environment).

BMC_VM_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# A self-signed certificate for 127.0.0.1: $tmp/cert.pem and $tmp/key.pem.
bmc_vm_cert() {
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1
}

# Starts a fake BMC of VENDOR for a powered-off VM with FIRMWARE in DIR
# (DIR/vm; the request log DIR/requests), with fake_bmc.py's EXTRA options,
# and waits (15 s at most) for its port. Sets bmc (host:port) and fake_pid.
# Returns 1, with the fake's output on stdout, when it did not start.
bmc_vm_start_fake() {  # DIR VENDOR FIRMWARE [EXTRA...]
  local dir=$1 vendor=$2 fw=$3 i
  shift 3
  mkdir -p "$dir"
  qemu_bg_start "$ns" "$dir/fake.out" python3 "$BMC_VM_LIB_DIR/fake_bmc.py" \
    --mockups "$BMC_VM_LIB_DIR/redfish-mockups" --profile "$vendor" --cert "$tmp/cert.pem" \
    --key "$tmp/key.pem" --port-file "$dir/port" --log "$dir/requests" --password-env BMC_PW \
    --power Off --vm-dir "$dir/vm" --vm-firmware "$fw" "$@"
  fake_pid=${QEMU_BG_PIDS[-1]}
  for ((i = 0; i < 150; i++)); do
    [[ -s $dir/port ]] && break
    sleep 0.1
  done
  [[ -s $dir/port ]] || { echo "the fake BMC did not start: $(cat "$dir/fake.out")"; return 1; }
  bmc=127.0.0.1:$(cat "$dir/port")
}

# For the tests that type on the VM's console over SOL (fake_bmc.py
# --vm-ipmi): checks for ipmi_sim, ipmitool and QEMU's HTTP driver; sets iso
# (the KIWI test image), tmp (a new scratch directory bmcNAME.XXXXXX), ns (a
# new network namespace isbNAME<pid> holding only loopback) and BMC_PW
# (exported); makes the certificate. On exit, bmc_vm_cleanup stops the
# console and what qemu_bg_start started and removes ns and tmp. Returns 1,
# with a reason on stdout, when something is missing.
bmc_vm_sol_setup() {  # NAME
  local tool
  for tool in ipmi_sim ipmitool; do
    command -v "$tool" >/dev/null || { echo "$tool missing: scripts/deps.sh qemu"; return 1; }
  done
  qemu_need_http_driver
  iso=$("$BMC_VM_LIB_DIR/../image/build-kiwi-live.sh" "${KIWI_CACHE:-/var/cache/isoboot/kiwi}") ||
    { echo "no test image"; return 1; }
  tmp=$(mktemp -d "${ISOBOOT_TEST_TMP:-/tmp}/bmc$1.XXXXXX") || return 1
  ns=isb$1$$
  console_pid=""
  trap bmc_vm_cleanup EXIT
  # IPMI passwords are at most 20 bytes.
  export BMC_PW="Pw-$$-noargv"
  bmc_vm_cert || { echo "openssl could not make a certificate"; return 1; }
  if ! ip netns add "$ns" || ! ip -n "$ns" link set lo up; then echo "no network namespace $ns"; return 1; fi
}

bmc_vm_cleanup() {
  if [[ -n ${console_pid:-} ]]; then qemu_stop_pid "$console_pid"; fi
  qemu_test_cleanup "$ns" "$tmp"
}

# FILE without carriage returns; nothing while it does not exist yet.
# Always status 0: piped into `grep -q`, which exits at the first match, tr
# may die of SIGPIPE, and under pipefail that would fail the pipeline
# although the line was there.
bmc_vm_lines() {
  [[ -e $1 ]] || return 0
  tr -d '\r' <"$1" || true
}

# Whether FILE (carriage returns dropped) has a line grep's ARGS match.
bmc_vm_has() { bmc_vm_lines "$1" | grep "${@:2}" >/dev/null; }

# Waits up to TIMEOUT s for a line matching REGEX in FILE (carriage returns
# dropped), while PID lives.
bmc_vm_wait_for() {  # FILE REGEX TIMEOUT PID
  local deadline=$((SECONDS + $3))
  while ((SECONDS < deadline)); do
    bmc_vm_has "$1" -aE "$2" && return 0
    kill -0 "$4" 2>/dev/null || { bmc_vm_has "$1" -aE "$2"; return; }
    sleep 0.5
  done
  return 1
}

# Starts `isoboot bmc boot ... --console` ($bin, the fake at $bmc) with
# isoboot's SOURCE options (--serve ISO ... or --iso URL), its console's input
# the FIFO IN, its output in OUT and ERR; sets console_pid and opens fd 5 for
# writing to IN. BMC_VM_SHOW=1 also shows isoboot's output and the console.
bmc_vm_console_boot() {  # IN OUT ERR SOURCE...
  local in=$1 out=$2 err=$3
  shift 3
  rm -f "$in"
  mkfifo "$in"
  exec 5<>"$in"
  ip netns exec "$ns" "$bin" bmc boot --bmc "$bmc" --user admin --password-env BMC_PW \
    --ca "$tmp/cert.pem" "$@" --poll-interval 0.5 --power-timeout 60 --console <"$in" >"$out" 2>"$err" &
  console_pid=$!
  if [[ ${BMC_VM_SHOW:-} == 1 ]]; then
    # The followers end with isoboot (--pid).
    tail -n +1 -F --pid="$console_pid" "$err" 2>/dev/null | sed -u 's/^/isoboot | /' &
    tail -n +1 -F --pid="$console_pid" "$out" 2>/dev/null | tr -d '\r' | sed -u 's/^/sol     | /' &
  fi
}

# Types LINE on the console of bmc_vm_console_boot.
bmc_vm_type() {
  [[ ${BMC_VM_SHOW:-} == 1 ]] && echo "demo    | typed on the console: $1"
  printf '%s\n' "$1" >&5
}

# Ends that console with ipmitool's escape and waits (30 s at most) for
# isoboot, else stops it; sets rc (124 when it had to be stopped).
bmc_vm_end_console() {
  local i
  printf '\n~.\n' >&5
  for ((i = 0; i < 300; i++)); do
    kill -0 "$console_pid" 2>/dev/null || break
    sleep 0.1
  done
  rc=0
  if kill -0 "$console_pid" 2>/dev/null; then
    rc=124
    qemu_stop_pid "$console_pid"
  else
    wait "$console_pid" || rc=$?
  fi
  console_pid=""
  exec 5>&-
}

# isoboot for a live system whose root is busybox only: the stripped $bin,
# its libraries and their loader (run through the loader, as the root has no
# /lib of its own) in $tmp/www/tools.tar, served by an HTTP server on
# 127.0.0.1 in $ns. Sets bmc_vm_get_tools: the live system's commands that
# put its NIC on QEMU's user network, unpack the tools in /mnt (/mnt/isoboot)
# and print ISOBOOT-TOOLS-42 when that worked. Returns 1, with a reason on
# stdout, when the server did not start.
bmc_vm_tools() {
  local lib
  mkdir -p "$tmp/tools/lib" "$tmp/www"
  strip -o "$tmp/tools/isoboot.bin" "$bin"
  while read -r lib; do cp -L "$lib" "$tmp/tools/lib/"; done < <(ldd "$bin" | awk '$3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
  cat >"$tmp/tools/isoboot" <<'SH'
#!/bin/sh
d=${0%/*}
exec "$d/lib/ld-linux-x86-64.so.2" --library-path "$d/lib" "$d/isoboot.bin" "$@"
SH
  chmod +x "$tmp/tools/isoboot"
  tar -C "$tmp/tools" -cf "$tmp/www/tools.tar" .
  bmc_vm_www || return 1
  bmc_vm_get_tools="$bmc_vm_guest_net; mount -t tmpfs tools /mnt && wget -q -O - http://10.0.2.2:$bmc_vm_www_port/tools.tar | tar -x -C /mnt && echo ISOBOOT-TOOLS-\$((40 + 2))"
}

# The live system's commands that put its NIC on QEMU's user network
# (10.0.2.15; the host's namespace is 10.0.2.2).
bmc_vm_guest_net="for n in /sys/class/net/*; do [ \${n##*/} = lo ] || nic=\${n##*/}; done; ip addr add 10.0.2.15/24 dev \$nic; ip link set \$nic up"

# Serves $tmp/www over HTTP on 127.0.0.1 in $ns (the guest's 10.0.2.2 on
# QEMU's user network); sets bmc_vm_www_port. Once per test: a second call
# keeps the first server. Returns 1, with a reason on stdout, when it did
# not start.
bmc_vm_www() {
  local i
  if [[ -s $tmp/www.port ]]; then
    bmc_vm_www_port=$(cat "$tmp/www.port")
    return 0
  fi
  mkdir -p "$tmp/www"
  qemu_bg_start "$ns" "$tmp/www.log" python3 -c '
import functools, http.server, os, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(server.server_port))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
server.serve_forever()' "$tmp/www" "$tmp/www.port"
  for ((i = 0; i < 100; i++)); do [[ -s $tmp/www.port ]] && break; sleep 0.1; done
  [[ -s $tmp/www.port ]] || { echo "the HTTP server of $tmp/www did not start: $(cat "$tmp/www.log")"; return 1; }
  bmc_vm_www_port=$(cat "$tmp/www.port")
}

# After a failed case: the ends of the consoles and isoboot's output in DIR
# (boot1.err console1.out boot2.err console2.out, as there are), of the VM's
# serial console, QEMU's and ipmi_sim's output.
bmc_vm_show_failure() {  # DIR
  local f
  for f in boot1.err console1.out boot2.err console2.out; do
    [[ -e $1/$f ]] && { echo "--- $f (last 25 lines)"; bmc_vm_lines "$1/$f" | tail -n 25; }
  done
  echo "--- the VM's serial console (last 15 lines)"; bmc_vm_lines "$1/vm/console.log" | tail -n 15 || true
  echo "--- qemu"; cat "$1/vm/qemu.out" 2>/dev/null || true
  echo "--- ipmi_sim"; tail -n 5 "$1/vm/ipmi_sim.out" 2>/dev/null || true
}
