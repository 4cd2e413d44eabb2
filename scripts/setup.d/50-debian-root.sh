#!/usr/bin/env bash
# A fresh, minimal Debian bookworm root for the .deb install test
# (tests/deploy/deb_install_test.sh, CTest deb_install): debootstrap
# --variant=minbase, then `apt-get update` inside it, packed as
# ~/.cache/readmodel/debian-bookworm-root.tar. The test unpacks a copy per
# run and installs the package with apt, which fetches the runtime
# dependencies the package declares. Idempotent: a second run does nothing.
# Needs root (debootstrap, chroot) and the Debian mirror the machine's apt
# uses; takes about 2 minutes the first time.
set -euo pipefail

cache=${READMODEL_CACHE:-$HOME/.cache/readmodel}
tarball=$cache/debian-bookworm-root.tar
if [ -s "$tarball" ]; then
  echo "50-debian-root: $tarball (cached)"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "50-debian-root: needs root (debootstrap, chroot)" >&2; exit 1; }
command -v debootstrap >/dev/null || {
  echo "50-debian-root: debootstrap missing (scripts/setup.sh installs it)" >&2
  exit 1
}
mkdir -p "$cache"
start=$(date +%s)
mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
root=$(mktemp -d "$cache/debian-root.XXXXXX")
cleanup() {
  umount "$root/proc" 2>/dev/null || true
  rm -rf "$root"
}
trap cleanup EXIT
debootstrap --variant=minbase bookworm "$root" ${mirror:+"$mirror"} >"$root.log" 2>&1 || {
  tail -20 "$root.log" >&2
  echo "50-debian-root: debootstrap failed (log above)" >&2
  exit 1
}
rm -f "$root.log"
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin apt-get -qq -o APT::Sandbox::User=root update
umount "$root/proc"
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin apt-get -qq clean
tar -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
echo "50-debian-root: built $tarball in $(($(date +%s) - start)) s"
