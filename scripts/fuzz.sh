#!/usr/bin/env bash
# Builds the libFuzzer targets (clang) and runs each for SECONDS from its seed
# corpus (tests/data/fuzz/<target>/), on a scratch copy so seeds stay as
# committed. A crash fails the run and leaves the input in build/fuzz/.
# Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
mkdir -p build
if ! scripts/build.sh fuzz fuzzers >build/fuzz-build.log 2>&1; then
  echo "fuzz: the clang build failed:"
  grep -E -A3 'error|FAILED' build/fuzz-build.log | head -40
  exit 1
fi
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp
status=0
for bin in build/fuzz/fuzz/*_fuzz; do
  [[ -x $bin ]] || continue
  name=$(basename "$bin")
  corpus=build/fuzz/corpus-$name
  rm -rf "$corpus" && mkdir -p "$corpus"
  if [[ -d tests/data/fuzz/$name ]]; then cp -r "tests/data/fuzz/$name/." "$corpus/"; fi
  if "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=1048576 -print_final_stats=1 \
      -artifact_prefix="build/fuzz/$name-" "$corpus" >"build/fuzz/$name.log" 2>&1; then
    echo "fuzz $name: ok ($(grep -o 'stat::number_of_executed_units: [0-9]*' "build/fuzz/$name.log" | grep -o '[0-9]*$' || echo '?') runs in ${seconds}s)"
  else
    echo "fuzz $name: FAILED, see build/fuzz/$name.log"
    tail -30 "build/fuzz/$name.log"
    status=1
  fi
done
exit $status
