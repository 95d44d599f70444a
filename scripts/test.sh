#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what it needs, checks the
# formatting (scripts/format.sh), builds twice
# (release, then AddressSanitizer + UBSan) and runs every test in both, the
# slow QEMU boots only in the first; then each libFuzzer target for a
# bounded time from its seed corpus. Needs root (network namespaces).
#   ISOBOOT_FUZZ_SECONDS  seconds per fuzz target (default 30)
#   ISOBOOT_SKIP_ASAN=1   developer shortcut: release build only
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build test fuzz qemu kiwi package

start=$SECONDS
status=0
echo "== format"
scripts/format.sh || status=1
run_ctest() {  # preset, extra ctest args...
  local preset=$1
  shift
  echo "== tests: $preset build"
  scripts/build.sh "$preset"
  (cd "build/$preset" && ctest --output-on-failure --timeout 1200 -j2 "$@") || status=1
}

run_ctest release

# What a packager runs: a plain CMake Release (-O3) build without the
# presets, tests or test dependencies, warnings as errors so it stays
# warning-free, and its install.
echo "== plain CMake build (Release, no tests) and install"
if ! (rm -rf build/plain && cmake -S . -B build/plain -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DISOBOOT_TESTS=OFF -DISOBOOT_BENCH=OFF -DISOBOOT_WERROR=ON >/dev/null &&
  cmake --build build/plain && DESTDIR=$PWD/build/plain/stage cmake --install build/plain \
  --prefix /usr >/dev/null && build/plain/stage/usr/bin/isoboot --version); then
  echo "plain CMake build: FAILED"
  status=1
fi
if [[ "${ISOBOOT_SKIP_ASAN:-0}" != 1 ]]; then
  ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_ctest asan -LE slow
fi

echo "== fuzz"
scripts/fuzz.sh "${ISOBOOT_FUZZ_SECONDS:-30}" || status=1

echo "== test suite took $((SECONDS - start)) s; $([[ $status == 0 ]] && echo passed || echo FAILED)"
exit $status
