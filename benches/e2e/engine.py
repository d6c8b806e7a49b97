#!/usr/bin/env python3
"""Engine benchmark: sluice -> one real OpenSearch node vs the stand-in.

The same load (syslog-blaster, one TCP connection, RFC 5424 messages of 256
bytes, no status lines: every message is one document) goes through sluice
(benches/e2e/engine.toml: one route, one Elasticsearch sink, queue
`block`) into

  - `standin`:    the blaster's own `_bulk` endpoint (answers every item
                  201 and stores nothing: what sluice alone costs), and
  - `opensearch`: one real OpenSearch node (tests/engines/Launcher.java,
                  the integ-test zip the engine tests use, 512 MiB heap),
                  which indexes every document.

Per run: documents indexed per second (from the first byte sent until
sluice's `sluice_sink_records_sent_total` reaches the count, i.e. every
document acknowledged by the engine) and sluice's CPU per document (utime +
stime of the sluice process over the same window). For OpenSearch the
node's `_count` is checked to equal the count afterwards, and the node's
own CPU over the window is printed too (what the engine costs).

    cargo build --release --bins
    mvn -q -f tests/engines/pom.xml dependency:resolve
    python3 benches/e2e/engine.py                     # both, 200,000 docs
    python3 benches/e2e/engine.py --count 100000 --repeat 3 opensearch
    SLUICE_ENGINE_OPENSEARCH=127.0.0.1:9200 python3 benches/e2e/engine.py
                                          # a node already running

Every run is bounded in count and time (600 s) and stops by itself.
"""
import argparse
import glob
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLUICE = os.path.join(ROOT, "target", "release", "sluice")
BLASTER = os.path.join(ROOT, "target", "release", "syslog-blaster")
CONFIG = os.path.join(ROOT, "benches", "e2e", "engine.toml")
LAUNCHER = os.path.join(ROOT, "tests", "engines", "Launcher.java")
OPENSEARCH_VERSION = "3.6.0"  # as tests/engines/pom.xml
TICK = os.sysconf("SC_CLK_TCK")
DEADLINE_S = 600


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def listening_pid(addr):
    """The process with a socket listening on `addr` (HOST:PORT), or None."""
    port = int(addr.rsplit(":", 1)[1])
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for row in f.readlines()[1:]:
                cols = row.split()
                if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == "0A":
                    inodes.add(f"socket:[{cols[9]}]")
    for d in glob.glob("/proc/[0-9]*"):
        try:
            for fd in os.listdir(f"{d}/fd"):
                if os.readlink(f"{d}/fd/{fd}") in inodes:
                    return int(d.rsplit("/", 1)[1])
        except OSError:
            pass
    return None


def http(method, url, body=None):
    req = urllib.request.Request(url, data=body.encode() if body else None, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"null")


def records_sent(admin):
    text = urllib.request.urlopen(f"http://{admin}/metrics", timeout=5).read().decode()
    return sum(int(float(l.rsplit(" ", 1)[1])) for l in text.splitlines()
               if l.startswith("sluice_sink_records_sent_total{"))


def start_opensearch():
    """(launcher process or None, 'host:port')."""
    if os.environ.get("SLUICE_ENGINE_OPENSEARCH"):
        return None, os.environ["SLUICE_ENGINE_OPENSEARCH"].split(",")[0].strip()
    m2 = os.environ.get("SLUICE_M2_REPO", os.path.expanduser("~/.m2/repository"))
    zip_ = (f"{m2}/org/opensearch/distribution/integ-test-zip/opensearch/{OPENSEARCH_VERSION}/"
            f"opensearch-{OPENSEARCH_VERSION}.zip")
    java_home = os.environ.get("SLUICE_OPENSEARCH_JAVA_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64")
    cache = os.environ.get("SLUICE_ENGINE_CACHE", "/tmp/sluice-engines")
    t0 = time.monotonic()
    p = subprocess.Popen(["java", LAUNCHER, "--zip", zip_, "--cache", cache, "--java-home", java_home,
                          "--nodes", "1", "--heap", "512m"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ready = json.loads(p.stdout.readline())
    addr = ready["nodes"][0]["http"]
    print(f"# OpenSearch {OPENSEARCH_VERSION} node {addr} ready in {time.monotonic() - t0:.0f} s",
          file=sys.stderr)
    return p, addr


def run(target, count, node):
    """One run into `target` ('standin' or 'opensearch' at `node`)."""
    index = f"bench-engine-{int(time.time() * 1000)}"
    args = ["--count", str(count), "--format", "rfc5424", "--size", "256", "--status-every", "0",
            "--json", "--quiet"]
    blaster_sink = None
    if target == "standin":
        blaster = subprocess.Popen([BLASTER, "--sink", "127.0.0.1:0", "--target", "-",
                                    "--expect", "documents", "--drain-secs", "2"] + args,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        blaster_sink = json.loads(blaster.stdout.readline())["sink"]
        es = f"http://{blaster_sink}"
    else:
        es = f"http://{node}"
    env = dict(os.environ, BENCH_ES=es, BENCH_INDEX=index, RUST_LOG="warn")
    sluice = subprocess.Popen([SLUICE, "run", "-c", CONFIG], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        ready = json.loads(sluice.stdout.readline())
        addr = next(l["address"] for l in ready["listeners"] if l["name"] == "tcp")
        admin = ready["admin"]
        cpu0 = cpu_seconds(sluice.pid)
        engine_pid = listening_pid(node) if target == "opensearch" else None
        engine0 = cpu_seconds(engine_pid) if engine_pid else 0.0
        t0 = time.monotonic()
        if target == "standin":
            blaster.stdin.write(f"tcp://{addr}\n")
            blaster.stdin.flush()
        else:
            blaster = subprocess.Popen([BLASTER, "--target", f"tcp://{addr}"] + args,
                                       stdout=subprocess.PIPE, text=True)
        sent = 0
        while time.monotonic() - t0 < DEADLINE_S:
            sent = records_sent(admin)
            if sent >= count:
                break
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        cpu = cpu_seconds(sluice.pid) - cpu0
        engine_cpu = cpu_seconds(engine_pid) - engine0 if engine_pid else None
        if sent < count:
            sys.exit(f"{target}: waited {DEADLINE_S} s for {count} documents acknowledged; "
                     f"sluice says {sent}")
        stored = None
        if target == "opensearch":
            http("POST", f"http://{node}/{index}/_refresh")
            stored = http("GET", f"http://{node}/{index}/_count")["count"]
            http("DELETE", f"http://{node}/{index}")
            if stored != count:
                sys.exit(f"opensearch: {count} sent, _count {stored}")
    finally:
        sluice.send_signal(signal.SIGTERM)
        try:
            sluice.wait(timeout=30)
        except subprocess.TimeoutExpired:
            sluice.kill()
        try:
            blaster.wait(timeout=30)
        except (subprocess.TimeoutExpired, NameError):
            pass
        if blaster.poll() is None:
            blaster.kill()
    return {
        "target": target,
        "documents": count,
        "stored": stored,
        "seconds": round(elapsed, 2),
        "docs_per_s": round(count / elapsed),
        "sluice_cpu_s": round(cpu, 2),
        "sluice_cpu_us_per_doc": round(cpu / count * 1e6, 2),
        "engine_cpu_s": round(engine_cpu, 2) if engine_cpu is not None else None,
        "engine_cpu_us_per_doc": round(engine_cpu / count * 1e6, 1) if engine_cpu is not None else None,
    }


def line(r):
    s = (f"{r['target']}: {r['documents']} documents in {r['seconds']} s = {r['docs_per_s']} docs/s; "
         f"sluice {r['sluice_cpu_s']} CPU s = {r['sluice_cpu_us_per_doc']} µs per document")
    if r["engine_cpu_s"] is not None:
        s += (f"; engine {r['engine_cpu_s']} CPU s = {r['engine_cpu_us_per_doc']} µs per document; "
              f"_count {r['stored']}")
    return s


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", metavar="TARGET", help="standin, opensearch (default: both)")
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    targets = args.targets or ["standin", "opensearch"]
    for t in targets:
        if t not in ("standin", "opensearch"):
            parser.error(f"unknown target {t!r}: standin or opensearch")
    for p in (SLUICE, BLASTER):
        if not os.path.exists(p):
            sys.exit(f"{p} missing: run `cargo build --release --bins` first")
    with open("/proc/loadavg") as f:
        print(f"# {os.cpu_count()} CPUs; load average {f.read().split()[0]} at the start", file=sys.stderr)
    launcher, node = (None, None)
    if "opensearch" in targets:
        launcher, node = start_opensearch()
    try:
        # Interleaved (standin, opensearch, standin, ...): both see the
        # same neighbours' load on a shared machine.
        runs = {t: [] for t in targets}
        for _ in range(args.repeat):
            for t in targets:
                r = run(t, args.count, node)
                runs[t].append(r)
                print(json.dumps(r) if args.json else line(r))
                sys.stdout.flush()
        if args.repeat > 1 and not args.json:
            for t in targets:
                spread = lambda k: (f"{statistics.median(r[k] for r in runs[t]):g} "
                                    f"({min(r[k] for r in runs[t]):g}-{max(r[k] for r in runs[t]):g})")
                s = (f"{t}, {args.repeat} runs, median (min-max): {spread('docs_per_s')} docs/s; "
                     f"sluice {spread('sluice_cpu_us_per_doc')} µs CPU per document")
                if t == "opensearch":
                    s += f"; engine {spread('engine_cpu_us_per_doc')} µs CPU per document"
                print(s)
    finally:
        if launcher is not None:
            launcher.stdin.close()
            launcher.wait(timeout=60)


if __name__ == "__main__":
    main()
