#!/usr/bin/env bash
# README command 2 (and CI): install what is missing, check formatting, build
# with warnings as errors and run the tests.
#
#   scripts/test.sh         the complete run, what CI runs (.ci/run): the
#                           whole suite on the plain build, then a Debug
#                           build with AddressSanitizer and
#                           UndefinedBehaviorSanitizer and the whole suite
#                           again under it.
#   scripts/test.sh --fast  the inner loop: format check, plain build and
#                           every test without the e2e, slow or real label (unit tests,
#                           the sink tests against a real redis-server and
#                           the in-process OpenSearch test server, deploy
#                           checks). No sanitizer build, no e2e run.
#
# Tests run in parallel (ctest -j; every test process has its own Kafka
# mock, its own redis-server on a Unix socket in a fresh directory and ports
# chosen by the kernel, so none shares a port or a file with another).
# Environment: RM_TEST_JOBS overrides the parallelism (default 2: on a
# 2-core machine -j4 was faster, but when the CPUs were also busy with other
# work it made e2e tests time out);
# RM_TEST_SEED=N replays test_serve's kill -9 schedule (its seed is printed
# in every run). Extra arguments go to every ctest call (e.g. -R test_serve).
set -euo pipefail
cd "$(dirname "$0")/.."

fast=0
if [ "${1:-}" = --fast ]; then
  fast=1
  shift
fi
jobs=${RM_TEST_JOBS:-2}

if [ "$fast" = 1 ]; then
  bash scripts/setup.sh
else
  # --real: the real servers (Kafka, OpenSearch) and helm the `real` label needs.
  bash scripts/setup.sh --real
fi
if [ "$fast" = 0 ]; then
  # Without promtool CMake leaves the deploy rule tests out and disables the
  # promtool tests; the complete run must not pass by skipping them.
  command -v promtool >/dev/null || { echo "test.sh: promtool missing (package prometheus)" >&2; exit 1; }
fi

echo "== format check (clang-format)"
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find src include tests -name '*.[ch]')
clang-format --dry-run -Werror $files

echo "== build (warnings are errors)"
bash scripts/build.sh build

if [ "$fast" = 1 ]; then
  echo "== tests without the e2e, slow and real labels (ctest -j$jobs)"
  (cd build && ctest -j"$jobs" --label-exclude 'e2e|slow|real' --output-on-failure --timeout 900 "$@")
  echo "== fuzzing skipped (--fast; scripts/fuzz.sh SECONDS runs it)"
  exit 0
fi

# The slow label (allocation-failure injection, whose value is the leak and
# memory checks) runs in the sanitizer build only; the real label (tests
# against real Kafka, OpenSearch, Redis Cluster servers and the real helm,
# whose value is the servers' behaviour, not our memory errors) runs in the
# plain build only.
echo "== tests (ctest -j$jobs; the slow label runs under ASan below)"
(cd build && ctest -j"$jobs" --label-exclude slow --output-on-failure --timeout 900 "$@")

echo "== build with ASan/UBSan"
bash scripts/build.sh build-asan -DRM_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
echo "== tests under ASan/UBSan (ctest -j$jobs)"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest -j"$jobs" --label-exclude real --output-on-failure --timeout 900 "$@")

# Last in the complete run: each libFuzzer target for 60 s under ASan/UBSan
# (clang build in build-fuzz/; RM_TEST_FAST=1 skips it).
if [ "$fast" = 1 ] || [ "${RM_TEST_FAST:-0}" != 0 ]; then
  echo "== fuzzing skipped (fast mode; scripts/fuzz.sh SECONDS runs it)"
else
  echo "== fuzzing (60 s per target)"
  bash scripts/fuzz.sh 60
fi
