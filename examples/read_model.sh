#!/usr/bin/env bash
# How an application reads readmodel's Redis availability bitmaps with
# redis-cli (docs/contract.md, section 5.1). Three questions about one
# practitioner:
#   1. is the slot at TIME (UTC) on DATE free?           GETBIT key slot
#   2. the first free slot of DATE                       BITPOS key 1
#   3. the free days of DATE's week (Monday..Sunday)     EXISTS key, per day
#
#   usage: read_model.sh PRACTITIONER DATE [HH:MM]     (HH:MM default 10:30)
#   connection: REDIS_SOCKET=/path.sock, or REDIS_HOST / REDIS_PORT
#               (default 127.0.0.1:6379); key prefix READMODEL_PREFIX (rm:)
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  echo "usage: $0 PRACTITIONER YYYY-MM-DD [HH:MM]" >&2
  exit 2
fi
pid=$1 day=$2 at=${3:-10:30}
prefix=${READMODEL_PREFIX-rm:}
if [ -n "${REDIS_SOCKET:-}" ]; then
  conn=(-s "$REDIS_SOCKET")
else
  conn=(-h "${REDIS_HOST:-127.0.0.1}" -p "${REDIS_PORT:-6379}")
fi
rcli() { redis-cli "${conn[@]}" "$@"; }

# The key of one practitioner-day; the braces are part of the name.
key() { printf '%savail:{%s}:%s' "$prefix" "$pid" "$1"; }

# Slot i starts i*5 minutes after 00:00 UTC.
hh=${at%%:*} mm=${at##*:}
slot=$(( (10#$hh * 60 + 10#$mm) / 5 ))
slot_time() { printf '%02d:%02d' $(( $1 * 5 / 60 )) $(( $1 * 5 % 60 )); }

# 1. A missing key is a day without a free slot: GETBIT answers 0.
bit=$(rcli GETBIT "$(key "$day")" "$slot")
echo "free at $at: $([ "$bit" = 1 ] && echo yes || echo no)"

# 2. BITPOS answers -1 when no bit is set (also for a missing key).
first=$(rcli BITPOS "$(key "$day")" 1)
echo "first free slot: $([ "$first" -ge 0 ] && slot_time "$first" || echo none)"

# 3. A day has a key if and only if it has a free slot.
monday=$(date -u -d "$day - $(( $(date -u -d "$day" +%u) - 1 )) days" +%F)
free=()
for i in 0 1 2 3 4 5 6; do
  d=$(date -u -d "$monday + $i days" +%F)
  [ "$(rcli EXISTS "$(key "$d")")" = 1 ] && free+=("$d")
done
echo "free days in week $monday..$(date -u -d "$monday + 6 days" +%F): ${free[*]:-none}"
