#!/usr/bin/env python3
"""Replay benchmark (issue 3): in one run on one topic, measure the floor (a
bare librdkafka consumer reading every partition to its end) and
`readmodel rebuild --target redis`, and print events/s of each and their
ratio, CPU seconds per million events, peak memory, memory per
practitioner-day and the share of the rebuild spent writing to Redis.

Everything runs locally: redis-server on a Unix socket and the local Kafka
(librdkafka mock cluster). Each measurement is repeated --runs times (bare
and rebuild alternating, Redis emptied before every rebuild) and the median
is printed with the range, since a shared machine varies by a few percent
from run to run. Usage: bench/replay_bench.py [--practitioners N] [--days N]
[--partitions N] [--workers N] [--runs N]"""
import argparse, os, resource, statistics, subprocess, sys, tempfile, time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RM = os.path.join(root, "build", "readmodel")
BARE = os.path.join(root, "build", "rm_bench_bare_consumer")


def run_measured(cmd, **kw):
    """Runs cmd to completion; returns (stdout, wall s, cpu s, max rss KiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd[:2])} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return p.stdout, wall, cpu, after.ru_maxrss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--practitioners", type=int, default=4000)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--partitions", type=int, default=32)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--runs", type=int, default=3, help="repetitions of each measurement")
    ap.add_argument("--rebuild-arg", action="append", default=[],
                    help="extra argument for readmodel rebuild (repeatable), e.g. "
                         "--rebuild-arg=--kafka --rebuild-arg=queued.max.messages.kbytes=262144")
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="rm-bench-")
    sock = os.path.join(work, "redis.sock")
    procs = []
    try:
        procs.append(subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly",
             "no", "--dir", work], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        kafka = subprocess.Popen([RM, "dev-kafka", "--topic", f"booking.events:{a.partitions}"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        procs.append(kafka)
        brokers = kafka.stdout.readline().strip()
        for _ in range(100):
            if subprocess.run(["redis-cli", "-s", sock, "ping"], capture_output=True).returncode == 0:
                break
            time.sleep(0.05)
        redis = f"unix://{sock}"

        print(f"generating {a.practitioners} practitioners x {a.days} days "
              f"into {a.partitions} partitions (zstd)...", flush=True)
        run_measured([RM, "gen", "--brokers", brokers, "--practitioners", str(a.practitioners),
                      "--days", str(a.days), "--invalid-ratio", "0.01",
                      "--kafka", "compression.codec=zstd", "--kafka", "linger.ms=200",
                      "--kafka", "batch.num.messages=100000"])
        plan, *_ = run_measured([RM, "rebuild", "--dry-run", "--target", "redis",
                                 "--brokers", brokers, "--redis", redis])
        events = int(plan.split(" event(s)")[0].split(", ")[-1])
        if "TRUNCATED" in plan:
            sys.exit("bench: the local Kafka dropped part of the log (retention); "
                     "use more --partitions or fewer events")
        print(f"log: {events} events, earliest offset 0 on every partition", flush=True)

        bare, rb = [], []
        for run in range(max(1, a.runs)):
            out, bare_wall, bare_cpu, _ = run_measured([BARE, brokers, "booking.events",
                                                        str(a.workers)])
            kv = dict(x.split("=") for x in out.split())
            bare.append({"events": int(kv["events"]), "s": float(kv["seconds"]),
                         "wall": bare_wall, "cpu": bare_cpu})
            subprocess.run(["redis-cli", "-s", sock, "FLUSHALL"], capture_output=True, check=True)
            _, rb_wall, rb_cpu, rb_rss = run_measured(
                [RM, "rebuild", "--target", "redis", "--from-beginning", "--workers",
                 str(a.workers), "--brokers", brokers, "--redis", redis, "--log-level", "warn"]
                + a.rebuild_arg)
            rec = subprocess.run(["redis-cli", "-s", sock, "--raw", "HGETALL",
                                  "rm:rebuild:last:redis"],
                                 capture_output=True, text=True).stdout.split("\n")
            rec = dict(zip(rec[0::2], rec[1::2]))
            rb.append({"s": float(rec["duration_s"]), "wall": rb_wall, "cpu": rb_cpu,
                       "rss": rb_rss, "share": float(rec["write_share"]),
                       "keys": int(rec["keys_written"]) + int(rec["keys_unchanged"])})
            print(f"run {run + 1}: bare {bare[-1]['s']:.2f} s, rebuild {rb[-1]['s']:.2f} s, "
                  f"ratio {bare[-1]['s'] / rb[-1]['s']:.2f}", flush=True)
        days = int(subprocess.run(["redis-cli", "-s", sock, "--scan", "--pattern", "rm:state:*"],
                                  capture_output=True, text=True).stdout.count("\n")) * a.days

        def med(xs):
            return statistics.median(xs)

        def rng(xs, fmt):
            return f"{fmt.format(min(xs))} .. {fmt.format(max(xs))}"

        bare_events = bare[0]["events"]
        bare_rates = [bare_events / x["s"] for x in bare]
        rb_rates = [events / x["s"] for x in rb]
        ratios = [b["s"] / r["s"] for b, r in zip(bare, rb)]
        bare_cpu = [x["cpu"] / bare_events * 1e6 for x in bare]
        rb_cpu = [x["cpu"] / events * 1e6 for x in rb]
        rss = [x["rss"] for x in rb]
        print()
        print(f"median of {len(rb)} run(s), range in brackets")
        print(f"{'':28} {'bare consumer':>24} {'rebuild redis':>24}")
        print(f"{'events':28} {bare_events:>24} {events:>24}")
        print(f"{'seconds (work only)':28} {med([x['s'] for x in bare]):>8.2f} "
              f"[{rng([x['s'] for x in bare], '{:.2f}'):>12}] "
              f"{med([x['s'] for x in rb]):>8.2f} [{rng([x['s'] for x in rb], '{:.2f}'):>12}]")
        print(f"{'events/s':28} {med(bare_rates):>24.0f} {med(rb_rates):>24.0f}")
        print(f"{'CPU s per million events':28} {med(bare_cpu):>8.2f} "
              f"[{rng(bare_cpu, '{:.2f}'):>12}] {med(rb_cpu):>8.2f} [{rng(rb_cpu, '{:.2f}'):>12}]")
        print(f"{'process wall s':28} {med([x['wall'] for x in bare]):>24.2f} "
              f"{med([x['wall'] for x in rb]):>24.2f}")
        print()
        print(f"ratio rebuild/bare (target >= 0.6): {med(ratios):.2f} "
              f"[{rng(ratios, '{:.2f}')}]")
        print(f"peak memory of rebuild: {max(rss) / 1024:.0f} MiB")
        print(f"memory per practitioner-day: {max(rss) * 1024 / max(days, 1):.0f} bytes "
              f"({days} practitioner-days, peak RSS / practitioner-days)")
        print(f"share of rebuild time writing to Redis: "
              f"{med([x['share'] for x in rb]) * 100:.0f}% ({rb[0]['keys']} keys)")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
