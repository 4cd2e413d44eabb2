#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang, ASan and UBSan into
# build-fuzz/ and runs each for SECONDS (default 60) from a seed corpus made
# afresh (tests/fuzz/make_corpus.sh: `readmodel gen` output and edge cases):
#
#   scripts/fuzz.sh [SECONDS]
#
# Fails on any crash, leak, timeout (-timeout=10 per input), out-of-memory
# or sanitizer report. libFuzzer's seed is fixed and printed (RM_FUZZ_SEED
# overrides it, default 1); a failing input is saved as
# build-fuzz/artifacts/<target>-crash-<sha1> (or leak-, timeout-, oom-);
# reproduce with `build-fuzz/tests/fuzz/fuzz_<target> FILE`, then commit it
# under tests/fuzz/regressions/<target>/ (each run replays those first).
# Inputs that found new coverage go to build-fuzz/found/<target>/, emptied
# at each start so that a run depends only on the seed and its duration.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
seed=${RM_FUZZ_SEED:-1}
dir=build-fuzz
targets=(decode redis_url config state)
case "$secs" in '' | *[!0-9]*)
  echo "usage: scripts/fuzz.sh [SECONDS]" >&2
  exit 2
  ;;
esac

start=$(date +%s)
bash scripts/setup.sh --fuzz

echo "== fuzz build (clang, RM_FUZZ=ON, ASan/UBSan) in $dir"
cmake -S . -B "$dir" -DCMAKE_C_COMPILER=clang -DRM_FUZZ=ON -DBUILD_TESTING=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$dir" -j"$(nproc)" --target readmodel "${targets[@]/#/fuzz_}"

echo "== seed corpus"
bash tests/fuzz/make_corpus.sh "$dir/readmodel" "$dir/corpus"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
mkdir -p "$dir/artifacts" "$dir/logs"
failed=()
summary=()
for t in "${targets[@]}"; do
  bin=$dir/tests/fuzz/fuzz_$t
  log=$dir/logs/$t.log
  found=$dir/found/$t
  rm -rf "$found"
  mkdir -p "$found"

  # Committed reproducers first: each must pass on its own.
  reg=tests/fuzz/regressions/$t
  if [ -d "$reg" ] && [ -n "$(ls -A "$reg")" ]; then
    echo "== fuzz_$t: regressions ($reg)"
    if ! "$bin" "$reg"/* </dev/null >"$dir/logs/$t-regressions.log" 2>&1; then
      tail -n 40 "$dir/logs/$t-regressions.log"
      failed+=("$t (regressions)")
      continue
    fi
  fi

  dict=()
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  [ -f "$dir/corpus/$t.dict" ] && dict=(-dict="$dir/corpus/$t.dict")
  echo "== fuzz_$t: ${secs} s, seed $seed (reproduce: $bin -seed=$seed -max_total_time=$secs" \
    "${dict[*]} $found $dir/corpus/$t)"
  rc=0
  "$bin" -seed="$seed" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$dir/artifacts/$t-" "${dict[@]}" \
    "$found" "$dir/corpus/$t" </dev/null >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)
  line="fuzz_$t: ${runs:-?} executions, ${rate:-?} exec/s, ${cov:-cov: ?}, $(ls "$found" | wc -l) new inputs"
  # Any sanitizer report fails the run, even one that did not stop libFuzzer.
  if [ "$rc" -ne 0 ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|runtime error:|SUMMARY: ' "$log"; then
    echo "fuzz_$t FAILED (exit $rc); log $log:" >&2
    grep -nE 'ERROR|runtime error|SUMMARY|Test unit written|fuzz_[a-z_]+: ' "$log" | head -n 20 >&2 || true
    sed -n '/==ERROR\|runtime error/,/SUMMARY/p' "$log" | head -n 60 >&2 || true
    failed+=("$t")
    line="$line: FAILED"
  fi
  echo "$line"
  summary+=("$line")
done

echo "== fuzz summary (seed $seed, ${secs} s per target, $(($(date +%s) - start)) s in all)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in $dir/artifacts/, logs in $dir/logs/)" >&2
  exit 1
fi
