#!/usr/bin/env bash
# Checks that every C++ file is formatted with the project's .clang-format
# (Debian 12's clang-format 14); with --fix, formats them in place.
# Usage: scripts/format.sh [--fix]
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cc' '*.h')
if [[ ${1:-} == --fix ]]; then
  clang-format -i "${files[@]}"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
((${#bad[@]} == 0)) || { echo "not clang-formatted (scripts/format.sh --fix): ${bad[*]}" >&2; exit 1; }
echo "format: ${#files[@]} files ok"
