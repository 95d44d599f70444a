#!/usr/bin/env bash
# Builds the Debian package (debian/) from this checkout and lints it.
# Usage: scripts/package.sh [OUTDIR]   (default build/package; run as root
# when build dependencies are missing, so scripts/deps.sh installs them)
#
# The checkout is never built in: the files git lists (tracked ones as they
# are in the work tree, and untracked ones that are not ignored, so
# uncommitted work is packaged too) are copied to OUTDIR/isoboot-VERSION/,
# dpkg-buildpackage -us -uc -b runs there and writes the .deb files, the
# .buildinfo and the .changes beside it, in OUTDIR; then the copy is removed.
# `git status` is the same afterwards (OUTDIR under build/ is ignored).
# Then lintian --pedantic on the .changes, its output printed; exit 1 when
# the build fails or lintian reports an error (E:).
# CMAKE_CXX_COMPILER_LAUNCHER=ccache in the environment reaches CMake
# through dpkg-buildpackage; DEB_BUILD_OPTIONS=parallel=N overrides -j.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
out=${1:-build/package}
mkdir -p "$out"
out=$(cd "$out" && pwd)

scripts/deps.sh build package
git -C "$src" rev-parse --is-inside-work-tree >/dev/null ||
  { echo "package.sh: $src is not a git work tree" >&2; exit 1; }

version=$(dpkg-parsechangelog -l debian/changelog -S Version)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
tree=$out/isoboot-$version
# Only what this script makes; OUTDIR may hold other files.
rm -rf "$tree"
rm -f "$out"/isoboot_"$version"_* "$out"/isoboot-dbgsym_"$version"_*

start=$SECONDS
mkdir "$tree"
# Tracked files deleted in the work tree are listed too: skip them.
git -C "$src" ls-files -z -co --exclude-standard |
  while IFS= read -r -d '' f; do [[ -e $f || -L $f ]] && printf '%s\0' "$f"; done |
  tar -C "$src" --null -T - -cf - | tar -C "$tree" -xf -
echo "package.sh: building isoboot $version ($arch) in $tree"

jobs=()
[[ ${DEB_BUILD_OPTIONS:-} == *parallel=* ]] || jobs=(-j"$(nproc)")
log=$out/build.log
if ! (cd "$tree" && dpkg-buildpackage -us -uc -b "${jobs[@]}") >"$log" 2>&1; then
  tail -40 "$log" | cut -c1-300 >&2
  echo "package.sh: dpkg-buildpackage failed (whole log: $log; tree kept: $tree)" >&2
  exit 1
fi
rm -rf "$tree"
echo "package.sh: built in $((SECONDS - start)) s:"
(cd "$out" && ls -l isoboot*_"$version"_*)

changes=$out/isoboot_${version}_${arch}.changes
echo "== lintian --info --display-info --pedantic $(basename "$changes")"
status=0
lint=$(lintian --info --display-info --pedantic --fail-on error "$changes" 2>&1) || status=$?
[[ -n $lint ]] && echo "$lint" || echo "(no tags)"
if ((status != 0)) || grep -q '^E: ' <<<"$lint"; then
  echo "package.sh: lintian reported errors (exit $status)" >&2
  exit 1
fi
echo "package.sh: $out/isoboot_${version}_${arch}.deb"
