#!/usr/bin/env bash
# Write cost and state memory per practitioner, per-day state against the
# layout before it (the whole state in one field, rewritten on every flush).
# Builds bench/write_cost.c against this tree and against the baseline
# commit (by default the parent of the commit that introduced per-day state;
# --baseline REV to choose), runs both against one redis-server on a Unix
# socket, and prints both and their ratio. Needs what scripts/setup.sh
# installs; takes about two minutes on 2 cores (most of it the baseline's
# library build, cached under ~/.cache/readmodel/write-cost-baseline).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
base=""
if [[ ${1:-} == --baseline ]]; then base=$2; fi
if [[ -z $base ]]; then
  intro=$(git log --reverse --format=%H -S rm_avail_encode_days -- include/readmodel/availability.h | head -1)
  base=$(git rev-parse "$intro^")
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
libs="$(pkg-config --libs rdkafka hiredis libcurl jansson libmicrohttpd) -lroaring -lpthread -lm"
cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -Iinclude bench/write_cost.c build/librmcore.a $libs -o "$tmp/new"

cache=~/.cache/readmodel/write-cost-baseline/$base
if [[ ! -f $cache/librmcore.a ]]; then
  echo "building the baseline's library ($base)" >&2
  git worktree add --detach "$tmp/old" "$base" >/dev/null 2>&1
  cmake -S "$tmp/old" -B "$tmp/old/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$tmp/old/build" --target rmcore -j2 >/dev/null
  mkdir -p "$cache"
  cp "$tmp/old/build/librmcore.a" "$cache/"
  cp -r "$tmp/old/include" "$cache/"
fi
cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -I"$cache/include" bench/write_cost.c "$cache/librmcore.a" $libs -o "$tmp/old-bin"

redis-server --port 0 --unixsocket "$tmp/redis.sock" --save "" --appendonly no \
  --dir "$tmp" >/dev/null &
redis_pid=$!
for _ in $(seq 100); do [[ -S $tmp/redis.sock ]] && break; sleep 0.1; done
url="unix://$tmp/redis.sock"
"$tmp/old-bin" "$url" old >"$tmp/old.txt"
"$tmp/new" "$url" new >"$tmp/new.txt"
echo "baseline $base; per-day state at $(git rev-parse --short HEAD)"
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
