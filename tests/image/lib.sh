# shellcheck shell=bash
# What the test image builders (build-kiwi-live.sh, build-live-build.sh)
# share: the mirror, the package versions their cache keys hash, and the
# build-once cache. Sourced; the caller defines log and die first.

# Prints the mirror to build from: $1 if set, else the first Debian
# repository apt is configured with (only Debian's are reachable here), else
# deb.debian.org.
image_mirror() {  # [MIRROR]
  local mirror=${1:-}
  if [[ -z $mirror ]]; then
    mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
      2>/dev/null | grep -oE 'https?://[^ ]*/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ' || true)
  fi
  echo "${mirror:-http://deb.debian.org/debian}"
}

# Prints "package candidate-version" for each PACKAGE, as apt sees them; dies
# when apt does not know one or has no candidate for it.
image_versions() {  # PACKAGE...
  local versions
  versions=$(apt-cache policy "$@" 2>/dev/null | awk '/^[^ ]/{p=$1} /Candidate:/{print p, $2}')
  [[ $(wc -l <<<"$versions") -ge $# ]] || die "apt-cache policy does not know all of $* (apt-get update?)"
  if grep -q '(none)' <<<"$versions"; then
    die "packages without a candidate: $(grep '(none)' <<<"$versions" | tr '\n' ' ')"
  fi
  echo "$versions"
}

# Prints ISO and exits when it is built already. Otherwise takes OUT_DIR's
# lock (fd 9, held until the caller exits: one build at a time per OUT_DIR)
# and checks again, so a run that waited finds the ISO another one built.
image_reuse_or_lock() {  # ISO OUT_DIR
  if [[ -s $1 ]]; then
    echo "$1"
    exit 0
  fi
  exec 9>"$2/.lock"
  flock 9
  if [[ -s $1 ]]; then
    echo "$1"
    exit 0
  fi
}
