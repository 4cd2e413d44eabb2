#!/usr/bin/env python3
"""Redis Cluster benchmark (issue 19): in one run on one log, `readmodel
rebuild --target redis` into a single redis-server and into a Redis Cluster
of 3 masters with one replica each (every node on loopback TCP, persistence
off), alternating, the model emptied before every rebuild. Prints the
events/s of each (median and range of --runs) and the ratio cluster/single.

Everything runs locally (Debian redis-server and redis-cli, the local
Kafka). On one machine the cluster's masters share the cores with the
rebuild and with their replicas, so the ratio says what routing, per-node
pipelines and WAIT cost here, not what separate hosts would give.
Usage: bench/redis_cluster_bench.py [--practitioners N] [--days N]
[--partitions N] [--workers N] [--runs N]"""
import argparse, os, random, shutil, socket, statistics, subprocess, sys, tempfile, time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RM = os.path.join(root, "build", "readmodel")


def free_port(taken):
    while True:
        p = random.randint(20000, 39999)
        if p in taken or p + 10000 in taken:
            continue
        ok = True
        for q in (p, p + 10000):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", q))
                except OSError:
                    ok = False
        if ok:
            taken.update((p, p + 10000))
            return p


def start_node(work, port, cluster):
    d = os.path.join(work, str(port))
    os.makedirs(d)
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", d]
    if cluster:
        args += ["--cluster-enabled", "yes", "--cluster-node-timeout", "5000"]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    for _ in range(200):
        if subprocess.run(["redis-cli", "-p", str(port), "ping"],
                          capture_output=True).returncode == 0:
            return p
        time.sleep(0.05)
    sys.exit(f"bench: redis-server on port {port} did not start")


def cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True,
                          check=True).stdout


def masters(ports):
    out = cli(ports[0], "CLUSTER", "NODES")
    res = []
    for line in out.splitlines():
        f = line.split()
        if "master" in f[2] and len(f) > 8:
            res.append(int(f[1].split("@")[0].split(":")[1]))
    return res


def rebuild(brokers, url, workers):
    t0 = time.monotonic()
    p = subprocess.run([RM, "rebuild", "--target", "redis", "--from-beginning", "--workers",
                        str(workers), "--brokers", brokers, "--redis", url, "--log-level", "warn"],
                       capture_output=True, text=True)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"bench: rebuild into {url} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--practitioners", type=int, default=4000)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--partitions", type=int, default=32)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="rm-cluster-bench-")
    procs, taken = [], set()
    try:
        single = free_port(taken)
        procs.append(start_node(work, single, False))
        ports = [free_port(taken) for _ in range(6)]
        procs += [start_node(work, p, True) for p in ports]
        subprocess.run(["redis-cli", "--cluster", "create",
                        *[f"127.0.0.1:{p}" for p in ports], "--cluster-replicas", "1",
                        "--cluster-yes"], capture_output=True, check=True)
        for _ in range(300):
            if all("cluster_state:ok" in cli(p, "CLUSTER", "INFO") for p in ports):
                break
            time.sleep(0.1)
        kafka = subprocess.Popen([RM, "dev-kafka", "--topic", f"booking.events:{a.partitions}"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        procs.append(kafka)
        brokers = kafka.stdout.readline().strip()
        print(f"generating {a.practitioners} practitioners x {a.days} days into "
              f"{a.partitions} partitions...", flush=True)
        subprocess.run([RM, "gen", "--brokers", brokers, "--practitioners",
                        str(a.practitioners), "--days", str(a.days), "--invalid-ratio", "0.01",
                        "--kafka", "compression.codec=zstd", "--kafka", "linger.ms=200"],
                       capture_output=True, check=True)
        plan = subprocess.run([RM, "rebuild", "--dry-run", "--target", "redis", "--brokers",
                               brokers, "--redis", f"redis://127.0.0.1:{single}"],
                              capture_output=True, text=True, check=True).stdout
        events = int(plan.split(" event(s)")[0].split(", ")[-1])
        print(f"log: {events} events", flush=True)
        one, three = [], []
        for run in range(max(1, a.runs)):
            cli(single, "FLUSHALL")
            one.append(events / rebuild(brokers, f"redis://127.0.0.1:{single}", a.workers))
            for m in masters(ports):
                cli(m, "FLUSHALL")
            three.append(events / rebuild(brokers, f"redis://127.0.0.1:{ports[0]}", a.workers))
            print(f"run {run + 1}: single {one[-1]:,.0f} events/s, cluster {three[-1]:,.0f} "
                  f"events/s", flush=True)
        keys = sum(int(cli(m, "DBSIZE")) for m in masters(ports))
        print(f"cluster: {keys} keys over {len(masters(ports))} masters")
        ms, mc = statistics.median(one), statistics.median(three)
        print(f"{'':26} {'single redis':>22} {'3-master cluster':>22}")
        print(f"{'rebuild events/s (median)':26} {ms:>22,.0f} {mc:>22,.0f}")
        print(f"{'range':26} {min(one):>10,.0f}..{max(one):<11,.0f} "
              f"{min(three):>10,.0f}..{max(three):<11,.0f}")
        print(f"ratio cluster/single (median): {mc / ms:.2f}")
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, 9) if p.args[0] == "redis-server" else p.kill()
            except (ProcessLookupError, PermissionError):
                pass
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
