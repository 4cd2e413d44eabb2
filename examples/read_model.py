#!/usr/bin/env python3
"""How an application reads readmodel's Redis availability bitmaps from
Python (docs/contract.md, section 5.1), with the standard library only: a
few lines of RESP (the Redis protocol) instead of a client library. With
redis-py the three reads are r.getbit(key, slot), r.bitpos(key, 1) and
r.exists(key).

    usage: read_model.py PRACTITIONER DATE [HH:MM]     (HH:MM default 10:30)
    connection: REDIS_SOCKET=/path.sock, or REDIS_HOST / REDIS_PORT
                (default 127.0.0.1:6379); key prefix READMODEL_PREFIX (rm:)
"""
import datetime
import os
import socket
import sys


class Redis:
    """The smallest Redis client: one command at a time, integer replies."""

    def __init__(self):
        if os.environ.get("REDIS_SOCKET"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(os.environ["REDIS_SOCKET"])
        else:
            self.sock = socket.create_connection(
                (os.environ.get("REDIS_HOST", "127.0.0.1"),
                 int(os.environ.get("REDIS_PORT", "6379"))))
        self.reader = self.sock.makefile("rb")

    def command(self, *args):
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            a = str(a).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(parts))
        line = self.reader.readline().rstrip(b"\r\n")
        if line[:1] == b":":
            return int(line[1:])
        raise RuntimeError("unexpected reply %r" % line)


def slot_time(slot):
    """Slot i starts i*5 minutes after 00:00 UTC."""
    return "%02d:%02d" % divmod(slot * 5, 60)


def main(argv):
    if len(argv) not in (3, 4):
        print("usage: %s PRACTITIONER YYYY-MM-DD [HH:MM]" % argv[0], file=sys.stderr)
        return 2
    pid, day = argv[1], datetime.date.fromisoformat(argv[2])
    at = argv[3] if len(argv) == 4 else "10:30"
    prefix = os.environ.get("READMODEL_PREFIX", "rm:")
    hours, minutes = (int(x) for x in at.split(":"))
    r = Redis()

    def key(d):
        # The braces are part of the key (a Redis Cluster hash tag).
        return "%savail:{%s}:%s" % (prefix, pid, d.isoformat())

    # 1. A missing key is a day without a free slot: GETBIT answers 0.
    free = r.command("GETBIT", key(day), (hours * 60 + minutes) // 5)
    print("free at %s: %s" % (at, "yes" if free else "no"))

    # 2. BITPOS answers -1 when no bit is set (also for a missing key).
    first = r.command("BITPOS", key(day), 1)
    print("first free slot: %s" % (slot_time(first) if first >= 0 else "none"))

    # 3. A day has a key if and only if it has a free slot.
    monday = day - datetime.timedelta(days=day.weekday())
    week = [monday + datetime.timedelta(days=i) for i in range(7)]
    days = [d.isoformat() for d in week if r.command("EXISTS", key(d))]
    print("free days in week %s..%s: %s"
          % (week[0].isoformat(), week[6].isoformat(), " ".join(days) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
