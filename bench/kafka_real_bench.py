#!/usr/bin/env python3
"""Replay and live-latency benchmark on a real Apache Kafka broker (issue
17), in one run:

1. three topics on one KRaft broker (build/rm_bench_kafka): `small` and
   `large` written by `readmodel gen` with large message sets (zstd,
   linger.ms=200, as bench/replay_bench.py does on the mock) and `tiny`
   written by a low-latency producer (linger.ms=0, at most 10 messages
   per set); the messages per set
   of each are counted from the broker's segment files;
2. for each topic, a bare librdkafka consumer (build/rm_bench_bare_consumer,
   the floor) and `readmodel rebuild --target redis` alternate --runs times;
   medians, the whole-run ratio (bare s / rebuild s) and the ratio at the
   margin: extra seconds per extra million events between `small` and
   `large`, for each, and their quotient (the bare consumer's fixed
   start-up cost flatters the whole-run ratio on small topics);
3. `readmodel serve` on a fourth topic while build/rm_bench_latency
   produces at --rate events/s: p50/p99 produce-to-visible latency
   (visible: the partition's checkpoint in Redis passed the event).

Usage: bench/kafka_real_bench.py [--practitioners N] [--days N]
[--partitions N] [--workers N] [--runs N] [--rate N] [--seconds N]"""
import argparse, os, statistics, struct, subprocess, sys, tempfile, time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
B = os.path.join(root, "build")
RM, BARE = os.path.join(B, "readmodel"), os.path.join(B, "rm_bench_bare_consumer")
BROKER, LATENCY = os.path.join(B, "rm_bench_kafka"), os.path.join(B, "rm_bench_latency")


def run(cmd, **kw):
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd[:2])} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return p.stdout, time.monotonic() - t0


def sets_and_records(data, topic):
    """Record batches and records of topic in the broker's segment files
    (record batch format v2: base offset, length, ..., record count at
    byte 57)."""
    sets = records = 0
    for d in os.listdir(data):
        if not d.startswith(topic + "-"):
            continue
        for f in os.listdir(os.path.join(data, d)):
            if not f.endswith(".log"):
                continue
            buf = open(os.path.join(data, d, f), "rb").read()
            pos = 0
            while pos + 61 <= len(buf):
                length = struct.unpack_from(">i", buf, pos + 8)[0]
                attrs = struct.unpack_from(">h", buf, pos + 21)[0]
                if not attrs & 0x20:  # not a control batch
                    sets += 1
                    records += struct.unpack_from(">i", buf, pos + 57)[0]
                pos += 12 + length
    return sets, records


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--practitioners", type=int, default=4000, help="of the large topic")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--partitions", type=int, default=32)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rate", type=int, default=5000, help="events/s of the latency run")
    ap.add_argument("--seconds", type=int, default=20, help="of the latency run")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="rm-kbench-")
    sock = os.path.join(work, "redis.sock")
    redis = f"unix://{sock}"
    procs = []
    env = dict(os.environ)
    # The broker as in production: the server compiler and G1, 1 GiB heap.
    env.setdefault("RM_KAFKA_JVM_OPTS", "-Xms1g -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 "
                   "-XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true")
    try:
        procs.append(subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly",
             "no", "--dir", work], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        p = a.partitions
        broker = subprocess.Popen([BROKER, f"small:{p}", f"large:{p}", f"tiny:{p}", f"live:{p}"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        procs.append(broker)
        brokers = broker.stdout.readline().strip()
        data = broker.stdout.readline().strip()
        print(broker.stdout.readline().strip(), flush=True)
        if not brokers:
            sys.exit("bench: the broker did not start (bash scripts/setup.sh --real)")
        small = max(1, a.practitioners // 4)
        shapes = [("small", small, ["linger.ms=200", "compression.codec=zstd",
                                    "batch.num.messages=100000"]),
                  ("large", a.practitioners, ["linger.ms=200", "compression.codec=zstd",
                                              "batch.num.messages=100000"]),
                  # A low-latency producer: no lingering, and sets as small as
                  # those of a producer whose events trickle in.
                  ("tiny", small, ["linger.ms=0", "batch.num.messages=10",
                                   "compression.codec=zstd"])]
        events, per_set = {}, {}
        for topic, prac, props in shapes:
            kafka = sum((["--kafka", x] for x in props), [])
            _, secs = run([RM, "gen", "--brokers", brokers, "--topic", topic, "--practitioners",
                           str(prac), "--days", str(a.days), "--invalid-ratio", "0.01"] + kafka)
            time.sleep(1)
            sets, recs = sets_and_records(data, topic)
            events[topic], per_set[topic] = recs, recs / max(sets, 1)
            print(f"{topic}: {recs} events in {sets} message sets ({per_set[topic]:.0f} per set; "
                  f"{' '.join(props)}), produced in {secs:.1f} s", flush=True)
        res = {t: {"bare": [], "rebuild": []} for t, _, _ in shapes}
        for r in range(a.runs):
            for topic, _, _ in shapes:
                out, wall = run([BARE, brokers, topic, str(a.workers)])
                kv = dict(x.split("=") for x in out.split())
                res[topic]["bare"].append(float(kv["seconds"]))
                subprocess.run(["redis-cli", "-s", sock, "FLUSHALL"], capture_output=True)
                run([RM, "rebuild", "--target", "redis", "--from-beginning", "--workers",
                     str(a.workers), "--brokers", brokers, "--topic", topic, "--redis", redis,
                     "--log-level", "warn"])
                rec = subprocess.run(["redis-cli", "-s", sock, "--raw", "HGETALL",
                                      "rm:rebuild:last:redis"], capture_output=True,
                                     text=True).stdout.split("\n")
                rec = dict(zip(rec[0::2], rec[1::2]))
                res[topic]["rebuild"].append(float(rec["duration_s"]))
                print(f"run {r + 1} {topic}: bare {res[topic]['bare'][-1]:.2f} s, rebuild "
                      f"{res[topic]['rebuild'][-1]:.2f} s", flush=True)
        med = statistics.median
        print()
        print(f"{'topic':8} {'events':>9} {'per set':>8} {'bare s':>8} {'rebuild s':>10} "
              f"{'rebuild Mev/s':>14} {'ratio':>6}")
        for topic, _, _ in shapes:
            b, rb = med(res[topic]["bare"]), med(res[topic]["rebuild"])
            print(f"{topic:8} {events[topic]:>9} {per_set[topic]:>8.0f} {b:>8.2f} {rb:>10.2f} "
                  f"{events[topic] / rb / 1e6:>14.2f} {b / rb:>6.2f}")
        dm = (events["large"] - events["small"]) / 1e6
        mb = (med(res["large"]["bare"]) - med(res["small"]["bare"])) / dm
        mr = (med(res["large"]["rebuild"]) - med(res["small"]["rebuild"])) / dm
        print(f"at the margin (small -> large, {dm:.2f} M more events): bare {mb:.2f} s per M, "
              f"rebuild {mr:.2f} s per M, ratio {mb / mr:.2f}")
        print(f"tiny sets vs large sets (same events as small): rebuild "
              f"{med(res['tiny']['rebuild']):.2f} s vs {med(res['small']['rebuild']):.2f} s")

        serve = subprocess.Popen([RM, "serve", "--brokers", brokers, "--topic", "live", "--redis",
                                  redis, "--workers", str(a.workers), "--metrics-addr", "off",
                                  "--log-level", "warn"])
        procs.append(serve)
        time.sleep(3)
        out, _ = run([LATENCY, brokers, "live", str(p), sock, str(a.rate), str(a.seconds)])
        print(f"live at {a.rate} events/s for {a.seconds} s (serve defaults): {out.strip()}")
        broker.stdin.write("rss\n")
        broker.stdin.flush()
        print(f"broker RSS after the run: {broker.stdout.readline().strip()} MiB")
    finally:
        for pr in reversed(procs):  # serve, then the broker, then Redis
            if pr.stdin:
                pr.stdin.close()
            else:
                pr.terminate()
            pr.wait()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
