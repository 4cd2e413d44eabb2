#!/usr/bin/env bash
# The Debian package, installed as an operator would (CTest deb_install):
#   1. `cpack -G DEB` in the build directory builds readmodel_*.deb;
#   2. its control file declares the runtime dependencies (every shared
#      library of the binary, by dpkg-shlibdeps) and it holds the binary,
#      readmodel(1), the bash completion, the alert rules, the dashboard and
#      the contract;
#   3. in a fresh minimal Debian bookworm root (debootstrap, cached by
#      scripts/setup.d/50-debian-root.sh) `apt-get install ./readmodel.deb`
#      pulls exactly those dependencies from the Debian mirror, and there
#      `readmodel --version`, `readmodel serve --check-config`, the man page
#      (rendered by groff from the package's file, when the host has it) and
#      the completion work.
# What it does not cover: a service unit (the package has none; readmodel
# runs as a container or under the operator's supervisor) and upgrades.
#   usage: deb_install_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
cache=${READMODEL_CACHE:-$HOME/.cache/readmodel}
base=$cache/debian-bookworm-root.tar
fail() { echo "deb_install: FAIL: $*" >&2; exit 1; }

[ -s "$base" ] || fail "no Debian root at $base: run bash scripts/setup.sh --real"
[ "$(id -u)" = 0 ] || fail "needs root (chroot into the Debian root)"
command -v cpack >/dev/null || fail "cpack missing (Debian package cmake)"

work=$(mktemp -d /tmp/rm-deb.XXXXXX)
root=$work/root
cleanup() {
  umount "$root/dev" 2>/dev/null || true
  umount "$root/proc" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
start=$(date +%s)

# 1. the package
(cd "$build" && cpack -G DEB -B "$work/pkg" >"$work/cpack.log" 2>&1) ||
  { cat "$work/cpack.log" >&2; fail "cpack -G DEB failed"; }
deb=$(ls "$work"/pkg/readmodel_*.deb)
echo "package: $(basename "$deb") ($(stat -c %s "$deb") bytes, cpack $(($(date +%s) - start)) s)"

# 2. what it declares and holds
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
for lib in libc6 librdkafka1 libhiredis libcurl4 libjansson4 libroaring libmicrohttpd12 ca-certificates; do
  grep -q "$lib" <<<"$depends" || fail "Depends lacks $lib"
done
contents=$(dpkg-deb -c "$deb")
for f in ./usr/bin/readmodel ./usr/share/man/man1/readmodel.1.gz \
  ./usr/share/bash-completion/completions/readmodel \
  ./usr/share/readmodel/prometheus/readmodel-rules.yaml \
  ./usr/share/readmodel/grafana/readmodel-dashboard.json \
  ./usr/share/doc/readmodel/contract.md ./usr/share/doc/readmodel/examples/read_model.py; do
  grep -q " $f\$" <<<"$contents" || fail "the package lacks $f"
done

# 3. a fresh Debian root: nothing of readmodel's libraries is there before
mkdir -p "$root"
tar -C "$root" -xf "$base"
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
in_root() { chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
if in_root dpkg-query -W librdkafka1 >/dev/null 2>&1; then fail "the fresh root already has librdkafka1"; fi
cp "$deb" "$root/tmp/"
t0=$(date +%s)
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o APT::Sandbox::User=root \
  "/tmp/$(basename "$deb")" >"$work/apt.log" 2>&1 || { tail -30 "$work/apt.log" >&2; fail "apt-get install"; }
echo "installed with its dependencies in $(($(date +%s) - t0)) s"

version=$(in_root readmodel --version) || fail "readmodel --version"
echo "$version"
[[ "$version" =~ ^readmodel\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "unexpected version line '$version'"
config=$(in_root readmodel serve --check-config --brokers kafka-1:9092 --redis redis://redis:6379/0 \
  --metrics-addr off) || fail "readmodel serve --check-config"
grep -qx "brokers=kafka-1:9092" <<<"$config" || fail "--check-config did not show the brokers: $config"
grep -q "^workers=[1-9]" <<<"$config" || fail "--check-config did not show workers: $config"
# a bad option is still refused there (exit 2): the installed binary parses
set +e
in_root readmodel serve --check-config --brokers b:1 --workers 0 2>/dev/null
rc=$?
set -e
[ "$rc" = 2 ] || fail "--workers 0 gave exit $rc, not 2"
in_root bash -c 'source /usr/share/bash-completion/completions/readmodel &&
  COMP_WORDS=(readmodel verify --tar); COMP_CWORD=2; _readmodel; [ "${COMPREPLY[*]}" = --target ]' ||
  fail "bash completion of 'readmodel verify --tar'"
# The man page: the package's file, rendered on the host (minbase has no groff).
if command -v groff >/dev/null; then
  page=$(zcat "$root/usr/share/man/man1/readmodel.1.gz" | groff -man -Tutf8 -P-cbou -ww 2>"$work/groff.err")
  [ ! -s "$work/groff.err" ] || { cat "$work/groff.err" >&2; fail "groff warnings in readmodel(1)"; }
  grep -q "readmodel serve" <<<"$page" || fail "readmodel(1) has no serve section"
  grep -q -- "--check-config" <<<"$page" || fail "readmodel(1) lacks --check-config"
fi
echo "deb_install: ok in $(($(date +%s) - start)) s"
