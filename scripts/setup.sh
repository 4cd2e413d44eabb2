#!/usr/bin/env bash
# Installs the Debian packages readmodel needs to build, test and run its
# demo, when they are missing. Uses sudo only when not root. Idempotent.
#
#   scripts/setup.sh --fuzz   also FUZZ_PACKAGES (clang and libFuzzer, for
#                             scripts/fuzz.sh), then checks that clang links
#                             a -fsanitize=fuzzer target.
#   scripts/setup.sh --real   also runs every scripts/setup.d/*.sh, which
#                             fetch and build the real servers and tools the
#                             `real`-labelled tests start (Kafka, OpenSearch
#                             from Maven Central, helm from the Go module
#                             proxy), each cached between runs. Each script
#                             is idempotent and says what it fetched.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config clang-format
  librdkafka-dev libhiredis-dev libcurl4-openssl-dev libjansson-dev libroaring-dev
  libcmocka-dev libmicrohttpd-dev
  redis-server redis-tools kcat python3 prometheus openssl universal-ctags ca-certificates
  yamllint
  debootstrap dpkg-dev file groff-base
  libssl-dev
)
# Only with --real (scripts/setup.d/): Java 17 and Maven for the Kafka broker
# and the OpenSearch node from Maven Central, curl and unzip to fetch the Go
# toolchain for helm when the machine has none new enough. Machines of the
# CI's kind have them already; a minimal bookworm gets them from Debian.
REAL_PACKAGES=(openjdk-17-jdk-headless maven curl unzip)
# Only for the fuzz run (scripts/fuzz.sh): clang 14 and its libFuzzer
# runtime (Debian bookworm ships libFuzzer in libclang-rt-14-dev).
FUZZ_PACKAGES=(clang libclang-rt-14-dev)

fuzz=0
real=0
for arg in "$@"; do
  case "$arg" in
    --fuzz)
      fuzz=1
      PACKAGES+=("${FUZZ_PACKAGES[@]}")
      ;;
    --real)
      real=1
      PACKAGES+=("${REAL_PACKAGES[@]}")
      ;;
    *) echo "setup: unknown argument $arg (--fuzz, --real)" >&2; exit 2 ;;
  esac
done

# The real servers and tools of the `real` test label (scripts/setup.d/).
setup_real() {
  local f
  for f in "$(dirname "$0")"/setup.d/*.sh; do
    [ -e "$f" ] || continue
    bash "$f"
  done
}

# clang links a trivial libFuzzer target with ASan/UBSan, or setup fails.
check_libfuzzer() {
  local dir
  dir=$(mktemp -d)
  printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
    >"$dir/t.c"
  if ! clang -fsanitize=fuzzer,address,undefined "$dir/t.c" -o "$dir/t" 2>"$dir/err" ||
    ! "$dir/t" -runs=1 >/dev/null 2>&1; then
    cat "$dir/err" >&2
    rm -rf "$dir"
    echo "setup: clang cannot build a libFuzzer target (packages: ${FUZZ_PACKAGES[*]})" >&2
    exit 1
  fi
  rm -rf "$dir"
}

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  if [ "$fuzz" = 1 ]; then check_libfuzzer; fi
  if [ "$real" = 1 ]; then setup_real; fi
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
if [ "$fuzz" = 1 ]; then check_libfuzzer; fi
if [ "$real" = 1 ]; then setup_real; fi
