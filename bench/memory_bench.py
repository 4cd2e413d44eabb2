#!/usr/bin/env python3
"""Memory per practitioner-day, for sizing Kubernetes requests and limits
(issue 16): builds the model of two log sizes and measures the peak RSS of
each process that holds it:

  serve   --until-caught-up: every practitioner of its partitions stays in
          memory up to --cache-practitioners per worker (default 100,000),
          so below that bound serve's memory grows with the log like this;
  rebuild and verify: the replay holds the whole model in memory.

The slope between the two sizes is the memory per practitioner-day; the
intercept is the fixed part (libraries, Kafka fetch queues, buffers).
Everything is local: redis-server on a Unix socket, the local Kafka.
Usage: bench/memory_bench.py [--sizes 2000,6000] [--days 30] [--partitions 32]
[--workers 2]"""
import argparse, os, subprocess, sys, tempfile, time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RM = os.path.join(root, "build", "readmodel")


def peak_rss_mib(cmd):
    """Runs cmd; returns its own peak RSS in MiB (wait4, not the children's max)."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"bench: {' '.join(cmd[:2])} exited {code}:\n{p.stderr.read().decode()[-2000:]}")
    return ru.ru_maxrss / 1024.0


def measure(practitioners, days, partitions, workers):
    work = tempfile.mkdtemp(prefix="rm-mem-")
    sock = os.path.join(work, "redis.sock")
    redis = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", sock, "--save", "",
                              "--appendonly", "no", "--dir", work],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kafka = subprocess.Popen([RM, "dev-kafka", "--topic", f"booking.events:{partitions}"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        brokers = kafka.stdout.readline().strip()
        for _ in range(100):
            if subprocess.run(["redis-cli", "-s", sock, "ping"], capture_output=True).returncode == 0:
                break
            time.sleep(0.05)
        url = f"unix://{sock}"
        subprocess.run([RM, "gen", "--brokers", brokers, "--practitioners", str(practitioners),
                        "--days", str(days), "--kafka", "compression.codec=zstd",
                        "--kafka", "linger.ms=200", "--kafka", "batch.num.messages=100000"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        plan = subprocess.run([RM, "rebuild", "--dry-run", "--target", "redis", "--brokers",
                               brokers, "--redis", url], capture_output=True, text=True).stdout
        if "TRUNCATED" in plan:
            sys.exit("bench: the local Kafka dropped part of the log; use more --partitions")
        conn = ["--brokers", brokers, "--redis", url, "--workers", str(workers),
                "--log-level", "warn"]
        serve = peak_rss_mib([RM, "serve", *conn, "--until-caught-up", "--metrics-addr", "off"])
        rebuild = peak_rss_mib([RM, "rebuild", "--target", "redis", "--from-beginning", *conn])
        verify = peak_rss_mib([RM, "verify", "--target", "redis", *conn])
        return {"serve": serve, "rebuild": rebuild, "verify": verify}
    finally:
        for p in (kafka, redis):
            p.terminate()
            p.wait()
        subprocess.run(["rm", "-rf", work])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="2000,6000", help="two practitioner counts")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--partitions", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    small, large = (int(x) for x in a.sizes.split(","))
    res = {}
    for n in (small, large):
        print(f"{n} practitioners x {a.days} days ...", flush=True)
        res[n] = measure(n, a.days, a.partitions, a.workers)
        print("  peak RSS MiB: " + ", ".join(f"{k} {v:.0f}" for k, v in res[n].items()), flush=True)
    pd_small, pd_large = small * a.days, large * a.days
    print(f"\nper practitioner-day (slope between {pd_small} and {pd_large} practitioner-days), "
          f"and the fixed part:")
    for k in ("serve", "rebuild", "verify"):
        slope = (res[large][k] - res[small][k]) * 1024 * 1024 / (pd_large - pd_small)
        fixed = res[small][k] - slope * pd_small / (1024 * 1024)
        print(f"  {k:8s} {slope:6.0f} bytes/practitioner-day + {fixed:4.0f} MiB")


if __name__ == "__main__":
    main()
