#!/usr/bin/env bash
# Issue 17, "Install it like any Debian service": the .deb that
# scripts/package.sh builds from this source (uncommitted files included;
# the checkout's `git status` must not change) is installed with apt into a
# fresh Debian 12 root (mmdebstrap minbase, cached per day by
# tests/package/base-root.sh), Depends and Recommends coming from the
# archive. Then, from the installed files alone:
#   version     `isoboot --version` in the root
#   user        the package's user isoboot exists, with no login shell
#   man         one installed page per docs/man/*.scd, each rendering with
#               `man --warnings -l` silently; the bash completion loads
#   verify      `systemd-analyze verify` accepts isoboot-serve@test.service
#   security    `systemd-analyze security --offline` rates its exposure at
#               most 2.0
#   boot        the installed binary, as the unit runs it (user isoboot, only
#               CAP_NET_RAW and CAP_NET_BIND_SERVICE, ambient, no new
#               privileges, UMask 077, LimitNOFILE 65536 or the hard limit
#               when that cannot be raised here, --config
#               /etc/isoboot/test.toml), chrooted into the root, in a network
#               namespace, boots the KIWI test image in QEMU until the live
#               root prints ISOBOOT-LIVE-OK from /dev/etherd/e0.1; the boot
#               loaders are the ones the root's ipxe / pxelinux /
#               syslinux-common packages installed (serve's default paths)
#   purge       reinstall (the upgrade path of the maintainer scripts), then
#               purge: the files are gone, the user stays
# Prints the seconds each phase took. PKG_BOOTS picks the boots (space
# separated): uefi (OVMF's own PXE client fetches the ipxe package's
# ipxe.efi over TFTP, then iPXE HTTP) and bios-pxelinux (SeaBIOS' iPXE ROM
# fetches pxelinux.0 and ldlinux.c32 over TFTP); default both.
# PKG_ROOT_CACHE (default /var/cache/isoboot/debian-root) and KIWI_CACHE
# (/var/cache/isoboot/kiwi) hold the cached root tarball and ISO.
# Not tested here: systemd as PID 1 running the unit (this machine has none).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${ISOBOOT_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
# shellcheck source=tests/lib.sh
source "$src/tests/lib.sh"
# shellcheck source=tests/qemu/lib.sh
source "$src/tests/qemu/lib.sh"
boots=${PKG_BOOTS:-uefi bios-pxelinux}
timeout=${PKG_BOOT_TIMEOUT:-420}
export QEMU_MEM=${QEMU_MEM:-512}

test_tmp package
root=$tmp/root
ns=isbpkg$$
mac=52:54:00:12:34:57
mounts=()  # mount points under $root, unmounted in reverse by cleanup
serve_pid=""
QEMU_PID=""
fail_logs=("$tmp/serve.log")

declare -A took=()
order=()
phase_t0=$SECONDS
phase() {  # NAME: the phase that starts now (the previous one ends)
  [[ ${#order[@]} -gt 0 ]] && took[${order[-1]}]=$((SECONDS - phase_t0))
  order+=("$1")
  phase_t0=$SECONDS
  echo "== $1"
}
print_times() {
  [[ ${#order[@]} -gt 0 ]] && took[${order[-1]}]=${took[${order[-1]}]:-$((SECONDS - phase_t0))}
  echo "== phase times"
  local p
  for p in "${order[@]}"; do printf '%-20s %5d s\n' "$p" "${took[$p]}"; done
}

cleanup() {
  qemu_stop_pid "$QEMU_PID"
  qemu_stop_pid "$serve_pid"
  qemu_netns_teardown "$ns"
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
    umount -R "${mounts[i]}" 2>/dev/null || umount -R -l "${mounts[i]}" 2>/dev/null || true
  done
  # Never remove the root while anything is still mounted in it (rm -rf
  # would walk into the host's /dev).
  if grep -qF " $root/" /proc/self/mountinfo 2>/dev/null; then
    echo "package test: still mounted under $root; keeping $tmp" >&2
    grep -F " $root/" /proc/self/mountinfo >&2
    ISOBOOT_TEST_KEEP=1
  fi
  print_times
}

in_root() {
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}
mount_in_root() {  # MOUNT-ARGS... DIR (DIR under $root)
  mount "$@"
  mounts+=("${*: -1}")
}

phase package
[[ $(id -u) == 0 ]] || fail "needs root (chroot, mounts, network namespaces)"
git_status() { git -C "$src" status --porcelain=v1 --untracked-files=all; }
before=$(git_status)
"$src/scripts/package.sh" "$tmp/deb" >"$tmp/package.log" 2>&1 || {
  fail_logs+=("$tmp/package.log")
  fail "scripts/package.sh failed"
}
sed -n '/^package.sh: built/,$p' "$tmp/package.log"
[[ $(git_status) == "$before" ]] || fail "scripts/package.sh changed the checkout: $(diff <(echo "$before") <(git_status) || true)"
deb=$(ls "$tmp"/deb/isoboot_*_*.deb)
[[ -f $deb ]] || fail "no isoboot_*.deb in $tmp/deb"

phase root
tarball=$("$here/base-root.sh" "${PKG_ROOT_CACHE:-/var/cache/isoboot/debian-root}")
mkdir "$root"
tar -C "$root" -xf "$tarball"
echo "$(basename "$tarball") unpacked"

phase install
mount_in_root -t proc proc "$root/proc"
mount_in_root -t sysfs sysfs "$root/sys"
mount_in_root --rbind /dev "$root/dev"
mount --make-rslave "$root/dev"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
cp "$deb" "$root/tmp/"
in_root apt-get -q -o Dpkg::Use-Pty=0 update >"$tmp/apt.log" 2>&1 || { fail_logs+=("$tmp/apt.log"); fail "apt-get update in the root"; }
in_root apt-get -q -y -o Dpkg::Use-Pty=0 -o APT::Install-Recommends=true \
  install "/tmp/$(basename "$deb")" man-db >>"$tmp/apt.log" 2>&1 ||
  { fail_logs+=("$tmp/apt.log"); fail "apt-get install of $(basename "$deb") in the root"; }
grep -E "^(Setting up|Creating)" "$tmp/apt.log" | grep -E "isoboot|ipxe|pxelinux|syslinux|systemd |man-db" || true
for p in isoboot ipxe pxelinux syslinux-common systemd; do
  in_root dpkg-query -W -f='${Status}' "$p" | grep -q "install ok installed" || fail "$p is not installed in the root"
done

phase checks
version=$(in_root isoboot --version) || fail "isoboot --version failed in the root"
echo "isoboot --version: $version"
[[ $version == *"$(dpkg-deb -f "$deb" Version)"* ]] || fail "--version ($version) is not the package's version"

IFS=: read -r _ _ uid gid _ home shell < <(in_root getent passwd isoboot) || fail "no user isoboot"
echo "user isoboot: uid $uid gid $gid home $home shell $shell"
in_root getent group isoboot >/dev/null || fail "no group isoboot"
case $shell in
  /usr/sbin/nologin | /sbin/nologin | /bin/false | /usr/bin/false) ;;
  *) fail "user isoboot has a login shell ($shell)" ;;
esac
((uid < 1000)) || fail "isoboot is not a system user (uid $uid)"

mapfile -t pages < <(in_root dpkg -L isoboot | grep -E '^/usr/share/man/man[1-9]/.+\.[1-9](\.gz)?$' || true)
sources=("$src"/docs/man/*.scd)
((${#pages[@]} == ${#sources[@]})) ||
  fail "the package installs ${#pages[@]} man pages, docs/man has ${#sources[@]}"
for page in "${pages[@]}"; do
  in_root env MANWIDTH=80 man --warnings -l "$page" >"$tmp/man.out" 2>"$tmp/man.err" ||
    fail "man -l $page failed: $(cat "$tmp/man.err")"
  [[ -s $tmp/man.out ]] || fail "man -l $page printed nothing"
  [[ -s $tmp/man.err ]] && fail "man -l $page warns: $(cat "$tmp/man.err")"
  echo "man -l $page: $(wc -l <"$tmp/man.out") lines"
done
man_check=--man=yes
# Bash completion, where bash-completion looks for it.
completion=/usr/share/bash-completion/completions/isoboot
in_root bash -c "source $completion && complete -p isoboot" >"$tmp/complete" ||
  fail "no bash completion for isoboot at $completion"
echo "bash completion: $(cat "$tmp/complete")"

# The template instantiated as isoboot-serve@test.service (a copy of the
# installed file under that name: verify and security read unit files).
unit=/lib/systemd/system/isoboot-serve@.service
[[ -f $root$unit ]] || unit=/usr/lib/systemd/system/isoboot-serve@.service
[[ -f $root$unit ]] || fail "the package installs no isoboot-serve@.service"
mkdir -p "$root/run/isoboot-test"
cp "$root$unit" "$root/run/isoboot-test/isoboot-serve@test.service"
in_root systemd-analyze verify "$man_check" /run/isoboot-test/isoboot-serve@test.service >"$tmp/verify.log" 2>&1 ||
  { cat "$tmp/verify.log"; fail "systemd-analyze verify rejects $unit"; }
echo "systemd-analyze verify $man_check isoboot-serve@test.service: ok$([[ -s $tmp/verify.log ]] && echo "; said: $(cat "$tmp/verify.log")")"
in_root systemd-analyze security --offline=true /run/isoboot-test/isoboot-serve@test.service >"$tmp/security.log" 2>&1 ||
  { tail -5 "$tmp/security.log"; fail "systemd-analyze security failed"; }
exposure=$(grep -oE 'Overall exposure level for [^:]+: [0-9]+\.[0-9]+' "$tmp/security.log" | grep -oE '[0-9]+\.[0-9]+$' || true)
[[ -n $exposure ]] || { tail -5 "$tmp/security.log"; fail "no exposure level in systemd-analyze security's output"; }
echo "exposure level of isoboot-serve@test.service: $exposure"
(($(echo "$exposure <= 2.0" | bc -l))) || fail "exposure $exposure is above 2.0"

phase image
iso=$("$src/tests/image/build-kiwi-live.sh" "${KIWI_CACHE:-/var/cache/isoboot/kiwi}")
mkdir -p "$root/srv/isoboot"
: >"$root/srv/isoboot/live.iso"
mount_in_root --bind -o ro "$iso" "$root/srv/isoboot/live.iso"
# What StateDirectory=isoboot/test makes.
in_root install -d -o isoboot -g isoboot -m 0700 /var/lib/isoboot/test
cat >"$root/etc/isoboot/test.toml" <<'EOF'
image = "/srv/isoboot/live.iso"
interface = "br0"
dhcp = "full"
dhcp-range = "10.88.0.100,10.88.0.150"
lease-file = "/var/lib/isoboot/test/leases"
append = "console=ttyS0"
announce = 2
EOF
qemu_netns_setup "$ns" br0 tap0
ip -n "$ns" addr add 10.88.0.1/24 dev br0

# The unit's User=, Group=, AmbientCapabilities=, CapabilityBoundingSet=,
# NoNewPrivileges=, UMask= and LimitNOFILE=, from the root's util-linux.
caps=+net_raw,+net_bind_service
nofile=65536
hard=$(ulimit -Hn)
if [[ $hard != unlimited ]] && ((hard < nofile)); then
  # Raising it needs CAP_SYS_RESOURCE, which this machine may not give.
  echo "LimitNOFILE=65536 as $hard: the hard limit here, not raisable"
  nofile=$hard
fi
start_serve() {
  rm -f "$tmp/serve.log"
  ip netns exec "$ns" chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    /bin/sh -c 'umask 077; exec prlimit --nofile="$0:$0" -- "$@"' "$nofile" \
    setpriv --reuid=isoboot --regid=isoboot --init-groups --inh-caps="$caps" --ambient-caps="$caps" \
    --bounding-set=-all,"$caps" --no-new-privs \
    /usr/bin/isoboot serve --config /etc/isoboot/test.toml >"$tmp/serve.log" 2>&1 &
  serve_pid=$!
  wait_ready "$tmp/serve.log"
  # Every exec above replaces the process, so $! is serve itself.
  local status=/proc/$serve_pid/status
  [[ $(readlink "/proc/$serve_pid/exe") == "$root/usr/bin/isoboot" ]] || fail "pid $serve_pid is not the root's isoboot"
  awk '/^(Uid|Gid|CapEff|CapPrm|CapAmb|NoNewPrivs|Seccomp):/ {printf "%s %s  ", $1, $2} END {print ""}' "$status"
  [[ $(awk '/^Uid:/ {print $2}' "$status") == "$uid" ]] || fail "serve does not run as isoboot"
  [[ $(awk '/^NoNewPrivs:/ {print $2}' "$status") == 1 ]] || fail "serve runs without no_new_privs"
  # The capabilities were for binding: none is left once serving.
  local set
  for set in CapEff CapPrm CapAmb; do
    [[ $(awk "/^$set:/ {print \$2}" "$status") == 0000000000000000 ]] ||
      fail "serve still holds capabilities once ready ($set $(awk "/^$set:/ {print \$2}" "$status"))"
  done
}

boot_one() {  # NAME
  local name=$1 console=$tmp/$1.console fw loader
  local -a args=()
  case $name in
    uefi) fw=uefi loader=ipxe.efi ;;
    bios-pxelinux) fw=bios loader=pxelinux.0 ;;
    *) fail "unknown boot $name (uefi, bios-pxelinux)" ;;
  esac
  if [[ $name == bios-pxelinux ]]; then
    echo 'bios-loader = "pxelinux"' >>"$root/etc/isoboot/test.toml"
  else
    sed -i '/^bios-loader/d' "$root/etc/isoboot/test.toml"
  fi
  start_serve
  mkdir -p "$tmp/$name.vars"
  if [[ $fw == uefi ]]; then
    # No iPXE ROM on the NIC: OVMF's own PXE client takes ipxe.efi from serve.
    QEMU_NIC_ROMFILE="" qemu_netboot_args args tap0 "$mac" uefi "$tmp/$name.vars"
  else
    qemu_netboot_args args tap0 "$mac" bios
  fi
  local t0=$SECONDS
  qemu_start "$ns" "$console" "${args[@]}"
  if qemu_wait_marker "$console" "ISOBOOT-LIVE-(OK|FAIL)" "$timeout" && grep -qa "ISOBOOT-LIVE-OK" "$console" &&
    grep -qa "etherd/e0.1" "$console"; then
    echo "PASS $name: ISOBOOT-LIVE-OK after $((SECONDS - t0)) s"
    grep -a -A4 "ISOBOOT-LIVE-OK" "$console" | head -6
  else
    tail -30 "$console" | cut -c1-200
    fail "$name: no ISOBOOT-LIVE-OK from /dev/etherd/e0.1 within ${timeout}s"
  fi
  QEMU_PID=""
  grep -qE "sent $loader " "$tmp/serve.log" || fail "$name: serve never sent $loader"
  grep -E "sent|GET|first AoE" "$tmp/serve.log" | cut -c1-160 | head -8
  kill -TERM "$serve_pid"
  local rc=0
  wait "$serve_pid" || rc=$?
  serve_pid=""
  ((rc == 0)) || fail "serve exited $rc on SIGTERM"
}
# Where serve's default loader paths point, and which package put them there.
for f in /usr/lib/ipxe/ipxe.efi /usr/lib/ipxe/undionly.kpxe /usr/lib/PXELINUX/pxelinux.0 \
  /usr/lib/syslinux/modules/bios/ldlinux.c32; do
  echo "$f: from $(in_root dpkg -S "$f" | cut -d: -f1)"
done
for b in $boots; do
  phase "boot-$b"
  boot_one "$b"
done

phase purge
in_root apt-get -q -y -o Dpkg::Use-Pty=0 install --reinstall "/tmp/$(basename "$deb")" >"$tmp/purge.log" 2>&1 ||
  { fail_logs+=("$tmp/purge.log"); fail "reinstalling the package failed"; }
rm -f "$root/etc/isoboot/test.toml"
in_root dpkg --purge isoboot >>"$tmp/purge.log" 2>&1 || { fail_logs+=("$tmp/purge.log"); fail "dpkg --purge isoboot failed"; }
for f in /usr/bin/isoboot "${unit}" /etc/isoboot /usr/lib/sysusers.d/isoboot.conf; do
  [[ ! -e $root$f ]] || fail "$f is still there after the purge"
done
in_root getent passwd isoboot >/dev/null || fail "the purge removed the user isoboot (files it owns may remain)"
echo "reinstalled and purged; the user isoboot stays (as sysusers.d users do)"

echo "PASS package.deb_slow_test: $(basename "$deb"), exposure $exposure"
