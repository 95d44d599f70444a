#!/usr/bin/env bash
# Bad images: each must give exactly one error line naming the problem and a
# non-zero exit, never a crash, a hang or a partial listing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp iso-bad

mkdir -p "$tmp/tree/dir/sub"
head -c 20000 /dev/urandom >"$tmp/tree/afile"
echo hello >"$tmp/tree/dir/sub/f"
xorriso -as mkisofs -quiet -R -o "$tmp/good.iso" "$tmp/tree" 2>/dev/null
python3 "$here/corrupt_iso.py" "$tmp/good.iso" "$tmp"

# name of the damaged image -> words the error must contain
declare -A expect=(
  [empty]="file is empty"
  [random]="not"
  [truncated]="truncated"
  [truncated-content]="truncated"
  [no-pvd]="not"
  [dir-past-end]="past its end"
  [dir-loop]="directory loop"
  [absurd-size]="runs past the end"
  [absurd-volume-size]="truncated"
)
failures=0
run() {  # name, what, command...
  local name=$1 what=$2 rc
  shift 2
  set +e
  timeout 60 "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
  rc=$?
  set -e
  local lines
  lines=$(wc -l <"$tmp/err")
  if [[ $rc != 1 || $lines != 1 || -s $tmp/out ]] || ! grep -q "^isoboot: error: .*${expect[$name]}" "$tmp/err"; then
    echo "FAIL $name ($what): exit $rc, $lines stderr lines, $(wc -c <"$tmp/out") stdout bytes:"
    head -5 "$tmp/err"
    failures=$((failures + 1))
  else
    echo "ok   $name ($what): $(cat "$tmp/err")"
  fi
}
for name in "${!expect[@]}"; do
  img=$tmp/$name.iso
  run "$name" info "$ISOBOOT_BIN" iso info "$img"
  run "$name" ls "$ISOBOOT_BIN" iso ls -R "$img"
  run "$name" extract "$ISOBOOT_BIN" iso extract "$img" -C "$tmp/out-$name"
  if [[ -n $(ls -A "$tmp/out-$name" 2>/dev/null) ]]; then
    echo "FAIL $name: extract wrote files from a bad image"
    failures=$((failures + 1))
  fi
done
# The good image still reads.
"$ISOBOOT_BIN" iso ls -R "$tmp/good.iso" | grep -qx /dir/sub/f
echo "$((${#expect[@]} * 3 - failures)) passed, $failures failed"
((failures == 0))
