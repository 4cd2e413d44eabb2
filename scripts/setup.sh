#!/usr/bin/env bash
# Installs the Debian packages readmodel needs to build, test and run its
# demo, when they are missing. Uses sudo only when not root. Idempotent.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config clang-format
  librdkafka-dev libhiredis-dev libcurl4-openssl-dev libjansson-dev libroaring-dev
  libcmocka-dev libmicrohttpd-dev
  redis-server redis-tools kcat python3 prometheus openssl universal-ctags ca-certificates
  golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v3-dev yamllint
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "setup: installing ${missing[*]}" >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
