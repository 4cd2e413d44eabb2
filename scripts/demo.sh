#!/usr/bin/env bash
# README command 1: install what is missing, build, then run the main job on
# an embedded default: a local redis-server and a local Kafka, a week of
# bookings for 300 practitioners, `readmodel serve` until it has caught up,
# and sample reads of the bitmaps. Every process it starts is stopped on exit
# or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/build.sh build
RM=./build/readmodel

work=$(mktemp -d /tmp/readmodel-demo-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== starting redis-server on $work/redis.sock"
redis-server --port 0 --unixsocket "$work/redis.sock" --save "" --appendonly no \
  --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do redis-cli -s "$work/redis.sock" ping >/dev/null 2>&1 && break; sleep 0.1; done

echo "== starting a local Kafka (librdkafka mock cluster)"
$RM dev-kafka --topic booking.events:8 --topic booking.dlq:1 >"$work/bootstrap" 2>"$work/kafka.log" &
pids+=($!)
for _ in $(seq 50); do [ -s "$work/bootstrap" ] && break; sleep 0.1; done
brokers=$(head -1 "$work/bootstrap")
echo "   bootstrap servers: $brokers"

echo "== generating a week of bookings for 300 practitioners"
$RM gen --brokers "$brokers" --practitioners 300 --days 7 --seed 1 --invalid-ratio 0.01

echo "== readmodel serve (until caught up)"
start=$(date +%s%N)
status=0
$RM serve --brokers "$brokers" --redis "unix://$work/redis.sock" --dlq-topic booking.dlq \
  --until-caught-up 2>"$work/serve.log" || status=$?
end=$(date +%s%N)
grep -E "caught up|stopped|error" "$work/serve.log" | sed 's/^/   /'
echo "   serve exited $status after $(( (end - start) / 1000000 )) ms" \
  "(most of it joining the consumer group)"
[ "$status" -eq 0 ] || exit "$status"

r() { redis-cli -s "$work/redis.sock" "$@"; }
keys=$(r --scan --pattern 'rm:avail:*' | wc -l)
echo "== Redis now holds $keys availability bitmaps; sample reads:"
for key in $(r --scan --pattern 'rm:avail:{p-0000[0-2]}:*' | sort | head -4); do
  printf '   %-36s STRLEN=%s BITCOUNT=%s first free slot (BITPOS 1)=%s GETBIT 108=%s\n' "$key" \
    "$(r STRLEN "$key")" "$(r BITCOUNT "$key")" "$(r BITPOS "$key" 1)" "$(r GETBIT "$key" 108)"
done
echo "== an application's reads (examples/read_model.sh; C and Python versions beside it)"
REDIS_SOCKET="$work/redis.sock" bash examples/read_model.sh p-00000 2026-11-23 10:30 | sed 's/^/   /'
echo "== done; stopping redis-server and Kafka"
