#!/usr/bin/env bash
# README command 2 (and CI): install what is missing, build with warnings as
# errors, check formatting, run the whole suite, then build and run it again
# under AddressSanitizer and UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "== format check (clang-format)"
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find src include tests -name '*.[ch]')
clang-format --dry-run -Werror $files

echo "== build (warnings are errors)"
bash scripts/build.sh build
echo "== tests"
(cd build && ctest --output-on-failure --timeout 900)

echo "== build with ASan/UBSan"
bash scripts/build.sh build-asan -DRM_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
echo "== tests under ASan/UBSan"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure --timeout 900)
