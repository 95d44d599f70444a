#!/usr/bin/env bash
# Makes (or reuses) a tarball of a fresh Debian 12 root (mmdebstrap
# --variant=minbase) and prints its path. Usage: tests/package/base-root.sh
# CACHE_DIR (run as root). The mirror is the one apt is configured with: the
# Debian stanzas of /etc/apt/sources.list.d/*.sources (and deb lines of
# *.list), copied into the root as its sources. The tarball is keyed by the
# day and those sources, so a kept machine makes it once a day; older ones
# are removed.
set -euo pipefail
log() { echo "base-root: $*" >&2; }
die() { log "error: $*"; exit 1; }

(($# == 1)) || die "usage: $0 CACHE_DIR"
[[ $(id -u) == 0 ]] || die "needs root (mmdebstrap)"
command -v mmdebstrap >/dev/null || die "mmdebstrap missing: scripts/deps.sh package"
mkdir -p "$1"
cache=$(cd "$1" && pwd)

# deb822 stanzas that sign with Debian's archive key or name a .../debian
# or .../debian-security URI; one-line "deb URI bookworm..." entries become
# stanzas of their own.
sources=$(mktemp --suffix=.sources)
trap 'rm -f "$sources"' EXIT
shopt -s nullglob
for f in /etc/apt/sources.list.d/*.sources; do
  awk 'BEGIN { RS = ""; ORS = "\n\n" }
       { keep = ($0 ~ /Signed-By:[^\n]*debian-archive-keyring/ ||
                 $0 ~ /URIs:[^\n]*\/debian(-security)?\/?([ \n]|$)/) }
       keep && $0 ~ /Suites:[^\n]*bookworm/ {
         n = split($0, lines, "\n"); out = ""
         for (i = 1; i <= n; i++) if (lines[i] !~ /^#/) out = out lines[i] "\n"
         printf "%s\n", out }' "$f" >>"$sources"
done
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  [[ -f $f ]] || continue
  grep -E '^deb +(\[[^]]*\] +)?https?://[^ ]*/debian(-security)?/? +bookworm' "$f" |
    while read -r _ uri suite comps; do
      printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: %s\n\n' "$uri" "$suite" "$comps"
    done >>"$sources" || true
done
if ! grep -q '^URIs:' "$sources"; then
  log "no Debian bookworm source in /etc/apt; using deb.debian.org"
  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n' >"$sources"
fi

key=$(date -u +%Y%m%d)-$( { cat "$sources"; echo minbase; } | sha256sum | cut -c1-12)
out=$cache/bookworm-minbase-$key.tar
exec 9>"$cache/.lock"
flock -w 1800 9 || die "another base-root.sh holds $cache/.lock"
if [[ ! -s $out ]]; then
  log "making $out (mmdebstrap --variant=minbase bookworm)"
  t0=$SECONDS
  # mmdebstrap picks the format by the name's extension: .tar.
  partial=$cache/partial-$key.tar
  if ! mmdebstrap --quiet --variant=minbase --mode=root bookworm "$partial" "$sources" \
      >"$cache/mmdebstrap.log" 2>&1; then
    tail -30 "$cache/mmdebstrap.log" >&2
    rm -f "$partial"
    die "mmdebstrap failed (log: $cache/mmdebstrap.log)"
  fi
  mv -f "$partial" "$out"
  log "made in $((SECONDS - t0)) s"
  for old in "$cache"/bookworm-minbase-*.tar; do
    [[ $old == "$out" ]] || rm -f "$old"
  done
fi
echo "$out"
