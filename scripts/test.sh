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
# chosen by the kernel, so none shares a port or a file with another). Each
# case of the e2e programs is a test of its own: they spend their time
# waiting (the mock's group joins, restarts), not computing, so on 2 cores
# -j4 runs them side by side. The tests against real servers (label real)
# run in a phase of their own with RM_TEST_REAL_JOBS (default 2): a Java
# broker or node does compute.
# Environment: RM_TEST_JOBS overrides the parallelism (default 4);
# RM_TEST_SEED=N replays test_serve's kill -9 schedule (its seed is printed
# in every run). Extra arguments go to every ctest call (e.g. -R test_serve).
set -euo pipefail
cd "$(dirname "$0")/.."

fast=0
if [ "${1:-}" = --fast ]; then
  fast=1
  shift
fi
jobs=${RM_TEST_JOBS:-4}
real_jobs=${RM_TEST_REAL_JOBS:-2}

# Each phase says how long it took, so a slow phase is visible in CI's log.
phase_start=$SECONDS
phase() {
  if [ -n "${phase_name:-}" ]; then echo "== $phase_name: $((SECONDS - phase_start)) s"; fi
  phase_name=$1
  phase_start=$SECONDS
  echo "== $1"
}

phase "setup (packages; with --real the real servers and helm)"
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

phase "format check (clang-format)"
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find src include tests -name '*.[ch]')
clang-format --dry-run -Werror $files

phase "build (warnings are errors)"
bash scripts/build.sh build

if [ "$fast" = 1 ]; then
  phase "tests without the e2e, slow and real labels (ctest -j$jobs)"
  (cd build && ctest -j"$jobs" --label-exclude 'e2e|slow|real' --output-on-failure --timeout 900 "$@")
  phase "fuzzing skipped (--fast; scripts/fuzz.sh SECONDS runs it)"
  exit 0
fi

# The slow label (allocation-failure injection, whose value is the leak and
# memory checks) runs in the sanitizer build only; the real label (tests
# against real Kafka, OpenSearch, Redis Cluster servers and the real helm,
# whose value is the servers' behaviour, not our memory errors) runs in the
# plain build only.
phase "tests (ctest -j$jobs; slow runs under ASan, real in its own phase below)"
(cd build && ctest -j"$jobs" --label-exclude 'slow|real' --output-on-failure --timeout 900 "$@")

# The container image builds with -DCMAKE_BUILD_TYPE=Release (-O3), which
# warns (maybe-uninitialized) where -O2 does not: build the binary that way
# too, warnings as errors, so the image build cannot break unseen.
phase "Release build of readmodel (the Dockerfile's flags)"
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build build-release --target readmodel -j"$(nproc)" >/dev/null

phase "build with ASan/UBSan"
bash scripts/build.sh build-asan -DRM_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
phase "tests under ASan/UBSan (ctest -j$jobs)"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest -j"$jobs" --label-exclude real --output-on-failure --timeout 900 "$@")

phase "tests against real servers and the real helm (plain build, ctest -j$real_jobs)"
# --no-tests=ignore: a filter given on the command line may select none here.
(cd build && ctest -j"$real_jobs" -L real --no-tests=ignore --output-on-failure --timeout 1800 "$@")

# Last in the complete run: each libFuzzer target for 60 s under ASan/UBSan
# (clang build in build-fuzz/; RM_TEST_FAST=1 skips it).
if [ "$fast" = 1 ] || [ "${RM_TEST_FAST:-0}" != 0 ]; then
  phase "fuzzing skipped (fast mode; scripts/fuzz.sh SECONDS runs it)"
else
  phase "fuzzing (60 s per target)"
  bash scripts/fuzz.sh 60
fi
phase "done"
