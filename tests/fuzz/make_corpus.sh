#!/usr/bin/env bash
# Seed corpora of the fuzz targets (tests/fuzz/fuzz_*.c), written afresh:
#
#   tests/fuzz/make_corpus.sh READMODEL_BIN [OUTDIR]    (default build-fuzz/corpus)
#
#   OUTDIR/decode     every message of a small `readmodel gen` log (valid,
#                     invalid of every kind the generator makes, unknown
#                     types), in fuzz_decode's format: one byte key length,
#                     the key, the value; plus hand-written edge cases (no key,
#                     tombstone, key mismatch, broken JSON and UTF-8, escapes,
#                     duplicates, numbers and ranges at their limits)
#   OUTDIR/redis_url  URLs of every form redis_url.h accepts and refuses
#   OUTDIR/config     argv of each command (byte 0: the command, then the
#                     arguments separated by NUL bytes)
#   OUTDIR/config.dict  libFuzzer dictionary of fuzz_config: every flag that
#                     some command's --help lists, and choice values
# File names are the SHA-1 of the content, as libFuzzer names its own.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:?usage: make_corpus.sh READMODEL_BIN [OUTDIR]}
out=${2:-build-fuzz/corpus}
rm -rf "$out"
mkdir -p "$out/decode" "$out/redis_url" "$out/config" "$out/state"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Same seed, same log: the corpus is the same on every machine.
"$bin" gen --output "$log" --seed 7 --practitioners 14 --days 2 --invalid-ratio 0.2 \
  --ignored-ratio 0.05 2>/dev/null

# getopt compares inside glibc, where libFuzzer does not see the compared
# strings: the flag names come from a dictionary.
{
  for c in serve rebuild verify status gen dev-kafka; do
    "$bin" "$c" --help 2>/dev/null || true
  done | grep -o -- '--[a-z][a-z0-9-]*' | sort -u
  printf '%s\n' redis opensearch all text json debug info warn error off =
} | sed 's/.*/"&"/' >"$out/config.dict"

python3 - "$log" "$out" <<'PY'
import hashlib, os, sys

log, out = sys.argv[1], sys.argv[2]

def put(kind, data):
    with open(os.path.join(out, kind, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)

def msg(key, value):
    """fuzz_decode's format; key None: no key; value None: tombstone."""
    if value is None:
        return b"\xff"
    if key is None:
        return b"\xfe" + value
    assert len(key) < 254
    return bytes([len(key)]) + key + value

n = 0
with open(log, "rb") as f:
    for line in f:
        key, sep, value = line.rstrip(b"\n").partition(b"\t")
        if sep:
            put("decode", msg(key, value))
            n += 1

ENV = (b'"event_id":"e1","schema_version":1,"occurred_at":"2026-11-20T10:15:00Z",'
       b'"practitioner_id":"p-42"')
def ev(body):
    return b"{" + ENV + b"," + body + b"}"

edge = [
    (b"p-42", None), (None, b""), (b"p-42", b""), (b"", b"{}"),
    (b"p-42", b"null"), (b"p-42", b"[]"), (b"p-42", b"42"), (b"p-42", b'"x"'),
    (b"p-42", b"{"), (b"p-42", b'{"a":}'), (b"p-42", b'{"a":1,}'), (b"p-42", b"{} {}"),
    (b"p-42", b"[" * 200 + b"]" * 200), (b"p-42", b'{"a":' * 100 + b"1" + b"}" * 100),
    (b"p-42", b'{"a":"\xc0\xaf"}'), (b"p-42", b'{"a":"\xed\xa0\x80"}'),
    (b"p-42", b'{"a":"\xf4\x90\x80\x80"}'), (b"p-42", b'{"a":"\xe2\x82"}'),
    (b"p-42", b'{"a":"\\ud800"}'), (b"p-42", b'{"a":"\\udc00\\ud800"}'),
    (b"p-42", b'{"a":"\\u0000"}'), (b"p-42", b'{"a":"\\x"}'), (b"p-42", b'{"a":"\x01"}'),
    (b"p-42", ev(b'"type":"SlotsPublished","date":"2026-11-20","start_slot":0,"slot_count":288')),
    (b"p-42", ev(b'"type":"SlotsPublished","date":"2026-11-20","start_slot":287,"slot_count":2')),
    (b"p-42", ev(b'"type":"SlotsWithdrawn","date":"2099-12-31","start_slot":1e2,"slot_count":-0')),
    (b"p-42", ev(b'"type":"SlotsPublished","date":"2026-02-29","start_slot":9223372036854775808,"slot_count":1')),
    (b"p-42", ev(b'"type":"BookingCreated","booking_id":"b\\u00e9","patient_id":"","date":"2000-01-01","start_slot":3,"slot_count":1')),
    (b"p-42", ev(b'"type":"BookingRescheduled","booking_id":"b1","from":{"date":"2026-11-20","start_slot":1,"slot_count":1},"to":{"date":"2026-11-21","start_slot":2,"slot_count":1}')),
    (b"p-42", ev(b'"type":"AvailabilitySnapshot","date":"2026-11-20","published":[{"start_slot":0,"slot_count":288}],"bookings":[{"booking_id":"b1","start_slot":0,"slot_count":1},{"booking_id":"b2","start_slot":287,"slot_count":1}]')),
    (b"p-42", ev(b'"type":"PractitionerUpdated","name":"\\"\\\\\\/\\b\\f\\n\\r\\t","location":{"lat":90,"lon":-180.0}')),
    (b"p-42", ev(b'"type":"PractitionerUpdated"')),
    (b"p-42", ev(b'"type":"PractitionerDeactivated","type":"PractitionerDeactivated"')),
    (b"p-42", ev(b'"\\u0074ype":"PractitionerDeactivated"')),
    (b"p-43", ev(b'"type":"PractitionerDeactivated"')),
    (None, ev(b'"type":"PractitionerDeactivated"')),
    (b"p-42", b'{"event_id":"e1","schema_version":2,"occurred_at":"2026-11-20T10:15:00Z","practitioner_id":"p-42","type":"X"}'),
    (b"p-42", b'{"event_id":"e1","schema_version":1,"occurred_at":"2026-13-40T25:61:61Z","practitioner_id":"p-42","type":"X"}'),
    (b"x" * 64, b'{"event_id":"e1","schema_version":1,"occurred_at":"2026-11-20T10:15:00Z","practitioner_id":"' + b"x" * 65 + b'","type":"X"}'),
]
for key, value in edge:
    put("decode", msg(key, value))

urls = [
    b"redis://localhost", b"redis://127.0.0.1:6380/3", b"redis://:secret@host",
    b"redis://user:p%40ss%3Aword@cache.example:6379/15", b"redis://user@host/",
    b"redis://[::1]:6379/0", b"redis://[fe80::1%25eth0]/1", b"unix:///run/redis.sock",
    b"unix:///tmp/r.sock?db=2", b"unix://relative.sock", b"unix:///s?db=x",
    b"rediss://host", b"redis://", b"redis://host:0", b"redis://host:65536",
    b"redis://host/x", b"redis://host/1?x=1", b"redis://host#frag", b"http://host",
    b"redis://h\xc3\xa9st/2", b"redis://%00@host", b"redis://host:6379/1048577",
]
for u in urls:
    put("redis_url", u)

cmds = {"serve": 0, "rebuild": 1, "verify": 2, "status": 3, "gen": 4, "dev-kafka": 5}
argvs = [
    ("serve", ["--brokers", "localhost:9092", "--redis", "redis://localhost/1"]),
    ("serve", ["--brokers=k1:9092,k2:9092", "--topic", "booking.events", "--workers", "4",
               "--dlq-topic", "booking.dlq", "--kafka", "fetch.wait.max.ms=10",
               "--until-caught-up", "--check-config", "--log-format", "json"]),
    ("serve", ["--broker", "k:1", "--metrics-addr", "127.0.0.1:0", "--log-level", "debug",
               "--redis-prefix", "rm:", "--max-batch", "1", "--cache-practitioners", "1"]),
    ("serve", ["--brokers", "k:1", "--opensearch", "https://os:9200", "--opensearch-index-prefix",
               "t1-", "--opensearch-ca-file", "/nonexistent/ca.pem"]),
    ("serve", ["--brokers", "k:1", "--workers", "0", "--kafka", "no.such.property=1"]),
    ("serve", ["--help"]),
    ("serve", ["--target", "redis"]),
    ("rebuild", ["--brokers", "k:1", "--target", "all", "--from-beginning", "--flush", "--yes",
                 "--opensearch", "http://os:9200", "--keep-previous", "--dry-run"]),
    ("rebuild", ["--brokers", "k:1", "--target", "redis"]),
    ("verify", ["--brokers", "k:1", "--target", "opensearch", "--allow-truncated"]),
    ("status", ["--brokers", "k:1", "--redis", "unix:///tmp/r.sock?db=1", "extra"]),
    ("gen", ["--output", "-", "--seed", "42", "--practitioners", "3", "--days", "1",
             "--start-date", "2099-12-31", "--invalid-ratio", "0.5", "--ignored-ratio", "1"]),
    ("gen", ["--brokers", "k:1", "--invalid-ratio", "nan"]),
    ("dev-kafka", ["--partitions", "3", "--brokers-count", "2", "--topic", "a:2", "--topic", "b"]),
    ("dev-kafka", ["--brokers", "3", "--topic", ":1"]),
]
for cmd, args in argvs:
    put("config", bytes([cmds[cmd]]) + b"\0".join(a.encode() for a in args))

# Per-day stored state (fuzz_state): a head, then u16 day, u16 length, value.
def day_value(published, bookings):
    bits = bytearray(36)
    for s in published:
        bits[s // 8] |= 1 << (s % 8)
    v = bytes(bits) + len(bookings).to_bytes(2, "little")
    for bid, start, count in bookings:
        v += len(bid).to_bytes(2, "little") + bid + start.to_bytes(2, "little") + \
            count.to_bytes(2, "little")
    return v
def record(day, value):
    return day.to_bytes(2, "little") + len(value).to_bytes(2, "little") + value
states = [
    b"RMH2\x03" + record(9823, day_value(range(0, 20), [(b"b1", 2, 3)])),
    b"RMH2\x01" + record(9823, day_value(range(280, 288), [])) +
    record(9824, day_value([], [(b"b2", 0, 288), (b"b3", 10, 1)])),
    b"RMH2\x03" + record(36524, day_value(range(0, 288), [(b"x" * 60, 100, 8)])),
    b"RMH2\x03",
]
for v in states:
    put("state", v)

print("make_corpus: %d decode seeds (%d from readmodel gen), %d URL seeds, %d config seeds, "
      "%d state seeds" % (len(os.listdir(os.path.join(out, "decode"))), n, len(urls), len(argvs),
                          len(states)))
PY
