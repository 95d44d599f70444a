#!/usr/bin/env bash
# Configures and builds one CMake preset (default: release) into build/PRESET.
# Usage: scripts/build.sh [PRESET] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-release}
shift || true
if [[ ! -f build/$preset/build.ninja ]]; then
  cmake --preset "$preset" >/dev/null
fi
cmake --build "build/$preset" ${1:+--target "$@"}
