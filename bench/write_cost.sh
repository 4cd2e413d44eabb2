#!/usr/bin/env bash
# Write cost and state memory per practitioner, per-day state against the
# layout before it (the whole state in one field or document, rewritten on
# every flush), for Redis and for OpenSearch.
# Builds bench/write_cost.c (Redis) and bench/write_cost_os.c (OpenSearch,
# against the in-process test server of tests/support/os_server.c, which
# counts the bytes of _bulk bodies) against this tree and against each
# sink's baseline commit (by default the parent of the commit that
# introduced its per-day state; --baseline REV and --os-baseline REV to
# choose), runs them, and prints both and their ratio. Needs what
# scripts/setup.sh installs; takes about three minutes on 2 cores the first
# time (most of it the baselines' library builds, cached under
# ~/.cache/readmodel/write-cost-baseline).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
base=""
os_base=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --baseline) base=$2; shift 2 ;;
    --os-baseline) os_base=$2; shift 2 ;;
    *) echo "usage: $0 [--baseline REV] [--os-baseline REV]" >&2; exit 2 ;;
  esac
done
if [[ -z $base ]]; then
  intro=$(git log --reverse --format=%H -S rm_avail_encode_days -- include/readmodel/availability.h | head -1)
  base=$(git rev-parse "$intro^")
fi
if [[ -z $os_base ]]; then
  intro=$(git log --reverse --format=%H -- src/sinks/opensearch_state.c | head -1)
  os_base=$(git rev-parse "$intro^")
fi
tmp=$(mktemp -d)
redis_pid=""
cleanup() {
  [[ -n $redis_pid ]] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null || true
  git -C "$root" worktree remove --force "$tmp/old" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

bash scripts/build.sh build >/dev/null
libs="$(pkg-config --libs rdkafka hiredis libcurl jansson libmicrohttpd openssl) -lroaring -lpthread -lm"
cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -Iinclude bench/write_cost.c build/librmcore.a $libs -o "$tmp/new"

# The library and headers of commit $1, built once and cached; prints the
# cache directory.
baseline() {
  local cache=~/.cache/readmodel/write-cost-baseline/$1
  if [[ ! -f $cache/librmcore.a ]]; then
    echo "building the baseline's library ($1)" >&2
    git worktree add --detach "$tmp/old" "$1" >/dev/null 2>&1
    cmake -S "$tmp/old" -B "$tmp/old/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$tmp/old/build" --target rmcore -j2 >/dev/null
    mkdir -p "$cache"
    cp "$tmp/old/build/librmcore.a" "$cache/"
    cp -r "$tmp/old/include" "$cache/"
    git -C "$root" worktree remove --force "$tmp/old"
  fi
  echo "$cache"
}
cache=$(baseline "$base")
cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -I"$cache/include" bench/write_cost.c "$cache/librmcore.a" $libs -o "$tmp/old-bin"
# OpenSearch: the test server is this tree's (it counts _bulk bytes) for both.
os_cc() {
  cc -O2 -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -I"$1" -Itests/support \
    bench/write_cost_os.c tests/support/os_server.c "$2" $libs -o "$3"
}
os_cc include build/librmcore.a "$tmp/os-new"
os_cache=$(baseline "$os_base")
os_cc "$os_cache/include" "$os_cache/librmcore.a" "$tmp/os-old"

redis-server --port 0 --unixsocket "$tmp/redis.sock" --save "" --appendonly no \
  --dir "$tmp" >/dev/null &
redis_pid=$!
for _ in $(seq 100); do [[ -S $tmp/redis.sock ]] && break; sleep 0.1; done
url="unix://$tmp/redis.sock"
"$tmp/old-bin" "$url" old >"$tmp/old.txt"
"$tmp/new" "$url" new >"$tmp/new.txt"
"$tmp/os-old" old >"$tmp/os-old.txt"
"$tmp/os-new" new >"$tmp/os-new.txt"
echo "Redis: baseline $base; per-day state at $(git rev-parse --short HEAD)"
python3 - "$tmp/old.txt" "$tmp/new.txt" <<'PY'
import sys
def load(p):
    rows = {}
    for line in open(p):
        kv = dict(x.split("=", 1) for x in line.split())
        rows[kv["case"]] = kv
    return rows
old, new = load(sys.argv[1]), load(sys.argv[2])
cols = [("per_event_B", "bytes/event"), ("max_event_B", "max bytes/event"),
        ("flush_ms", "ms/flush"), ("load_ms", "ms/load"), ("redis_state_B", "Redis state B"),
        ("process_state_B", "process state B")]
print(f"{'case':20} {'live':>7} {'days':>5}  " +
      "  ".join(f"{t:>30}" for _, t in cols))
print(f"{'':20} {'':>7} {'':>5}  " + "  ".join(f"{'old':>9} {'new':>9} {'new/old':>9}" for _ in cols))
for case, o in old.items():
    n = new[case]
    cells = []
    for k, _ in cols:
        a, b = float(o[k]), float(n[k])
        fmt = "{:>9.3f}" if k.endswith("_ms") else "{:>9.0f}"
        cells.append(fmt.format(a) + " " + fmt.format(b) + f" {b / a if a else 0:>9.4f}")
    print(f"{case:20} {n['live']:>7} {n['days']:>5}  " + "  ".join(cells))
per_live = {c: float(r["redis_state_B"]) / max(1, int(r["live"])) for c, r in new.items()}
print("Redis state bytes per live booking (new): " +
      ", ".join(f"{c} {v:.1f}" for c, v in per_live.items()))
PY
echo
echo "OpenSearch (bytes of _bulk bodies; all = state + the practitioner document): baseline $os_base; per-day state at $(git rev-parse --short HEAD)"
python3 - "$tmp/os-old.txt" "$tmp/os-new.txt" <<'PY'
import sys
def load(p):
    return {kv["case"]: kv for kv in (dict(x.split("=", 1) for x in line.split()) for line in open(p))}
old, new = load(sys.argv[1]), load(sys.argv[2])
cols = [("state_per_event_B", "state bytes/event"), ("max_state_event_B", "max state bytes/event"),
        ("per_event_B", "all bytes/event"), ("first_state_B", "first state write B"),
        ("flush_ms", "ms/flush"), ("load_ms", "ms/load")]
print(f"{'case':20} {'live':>7} {'days':>5}  " + "  ".join(f"{t:>30}" for _, t in cols))
print(f"{'':20} {'':>7} {'':>5}  " + "  ".join(f"{'old':>9} {'new':>9} {'new/old':>9}" for _ in cols))
for case, o in old.items():
    n = new[case]
    cells = []
    for k, _ in cols:
        a, b = float(o[k]), float(n[k])
        fmt = "{:>9.3f}" if k.endswith("_ms") else "{:>9.0f}"
        cells.append(fmt.format(a) + " " + fmt.format(b) + f" {b / a if a else 0:>9.4f}")
    print(f"{case:20} {n['live']:>7} {n['days']:>5}  " + "  ".join(cells))
PY
