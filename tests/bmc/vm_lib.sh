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
