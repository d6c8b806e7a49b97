#!/usr/bin/env python3
"""End-to-end benchmark: syslog-blaster -> sluice -> syslog-blaster.

Starts the blaster's sink endpoints (InfluxDB /write, Elasticsearch _bulk),
then sluice with benches/e2e/sluice.toml pointed at them, then sends. Per
scenario it prints end-to-end throughput, sluice's CPU seconds per million
messages (utime + stime from /proc), its peak RSS (VmHWM), loss, and
latency percentiles from the intended send time.

    cargo build --release --bins
    python3 benches/e2e/run.py                 # every scenario
    python3 benches/e2e/run.py tcp-full        # one
    python3 benches/e2e/run.py --json          # one JSON object per scenario
    python3 benches/e2e/run.py --repeat 5 tcp-full   # five runs, then the
                                               # median and range of each figure
    python3 benches/e2e/run.py --sluice /other/target/release/sluice tcp-full
                                               # another build
    python3 benches/e2e/run.py --repeat 5 --sluice A/sluice --sluice B/sluice tcp-full
                                               # A/B: builds alternate run by
                                               # run (A B, then B A, ...), then
                                               # each build's median and range
    python3 benches/e2e/run.py --repeat 3 --interleave tcp-full kafka-two-tier
                                               # the two tiers beside one
                                               # process, run after run

`kafka-two-tier` sends tcp-full's load through two sluice processes and a
real Kafka broker: an edge (benches/e2e/kafka-edge.toml: TCP in, every
frame as a raw envelope to one topic, keyed by host, lz4, acks=all), a
single-node KRaft broker (tests/kafka/Launcher.java over the jars of
tests/kafka/pom.xml, resolved offline by Maven as the tests do; started
once, a fresh topic and consumer group each run) and an indexer (a kafka
listener in front of sluice.toml's routes and sinks, written by this
script). It reports the CPU of each of the three processes per message.
It needs java (17+) and mvn with the Kafka jars in the local repository
(`mvn -q -f tests/kafka/pom.xml dependency:resolve`).

On a shared VM the figures move with the neighbours' load: repeat, and
quote the median with the range. Each run also prints the share of the
machine's CPU time the hypervisor gave to others meanwhile (steal).

Every scenario is bounded in count and time and stops by itself.
"""
import argparse
import json
import os
import shutil
import statistics
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLUICE = os.path.join(ROOT, "target", "release", "sluice")
BLASTER = os.path.join(ROOT, "target", "release", "syslog-blaster")
CONFIG = os.path.join(ROOT, "benches", "e2e", "sluice.toml")
EDGE_CONFIG = os.path.join(ROOT, "benches", "e2e", "kafka-edge.toml")
# Scenarios run on a configuration of their own (the rest on CONFIG).
SCENARIO_CONFIGS = {"tcp-one-route": os.path.join(ROOT, "benches", "e2e", "one-route.toml")}
KAFKA_POM = os.path.join(ROOT, "tests", "kafka", "pom.xml")
KAFKA_LAUNCHER = os.path.join(ROOT, "tests", "kafka", "Launcher.java")
# Partitions of the two-tier topic: the blaster's 16 hosts, keyed by host,
# spread over them.
KAFKA_PARTITIONS = 4
TICK = os.sysconf("SC_CLK_TCK")

# name -> (listener name in sluice.toml, blaster arguments)
SCENARIOS = {
    # The reference scenario: one TCP connection, LF framing, 1 M RFC 5424
    # messages of 256 bytes, every 4th a status line, as fast as possible.
    "tcp-full": ("tcp", ["--count", "1000000", "--format", "rfc5424", "--size", "256",
                         "--status-every", "4", "--expect", "both"]),
    # tcp-full with RFC 3164 frames (`<PRI>MMM dd HH:mm:ss HOST APP[PID]: MSG`)
    # of the same size: what the older format costs per message.
    # tcp-full's load on one-route.toml: every message a document, the
    # status lines through one regex to a point, no other route. The work
    # issue #25's side-by-side harness gave every receiver.
    "tcp-one-route": ("tcp", ["--count", "1000000", "--format", "rfc5424", "--size", "256",
                              "--status-every", "4", "--expect", "both"]),
    "tcp-full-3164": ("tcp", ["--count", "1000000", "--format", "rfc3164", "--size", "256",
                              "--status-every", "4", "--expect", "both"]),
    # Latency at a steady, light rate.
    "tcp-20k": ("tcp", ["--rate", "20000", "--duration", "10", "--format", "rfc5424",
                        "--size", "256", "--status-every", "4", "--expect", "both"]),
    # Connection scaling: tcp-full's load shared by N concurrent connections
    # (each sends every Nth message), as fast as possible.
    **{f"tcp-conns-{n}": ("tcp", ["--connections", str(n), "--count", "1000000",
                                  "--format", "rfc5424", "--size", "256",
                                  "--status-every", "4", "--expect", "both"])
       for n in (1, 8, 64, 1000)},
    # tcp-20k's load from 1,000 connections (20 msg/s each).
    "tcp-20k-1000": ("tcp", ["--connections", "1000", "--rate", "20000", "--duration", "10",
                             "--format", "rfc5424", "--size", "256", "--status-every", "4",
                             "--expect", "both"]),
    # log4j 1.2 senders with multi-line joining on: 20 k msg/s, every 100th
    # an error followed by its stack trace as 5 more frames (one event).
    "tcp-20k-log4j": ("log4j_tcp", ["--rate", "20000", "--duration", "10", "--format", "log4j1",
                                    "--size", "256", "--status-every", "4",
                                    "--stack-every", "100", "--expect", "both"]),
    "udp-20k-log4j": ("log4j_udp", ["--rate", "20000", "--duration", "10", "--format", "log4j1",
                                    "--size", "256", "--status-every", "4",
                                    "--stack-every", "100", "--expect", "both"]),
    # The same from 1,000 senders (20 msg/s each: every event is the last
    # of its stream for 50 ms).
    "tcp-20k-log4j-1000": ("log4j_tcp", ["--connections", "1000", "--rate", "20000",
                                         "--duration", "10", "--format", "log4j1",
                                         "--size", "256", "--status-every", "4",
                                         "--stack-every", "100", "--expect", "both"]),
    "udp-20k-log4j-1000": ("log4j_udp", ["--connections", "1000", "--rate", "20000",
                                         "--duration", "10", "--format", "log4j1",
                                         "--size", "256", "--status-every", "4",
                                         "--stack-every", "100", "--expect", "both"]),
    # UDP at 150 k msg/s for 10 s.
    "udp-150k": ("udp", ["--rate", "150000", "--duration", "10", "--format", "rfc5424",
                         "--size", "256", "--status-every", "4", "--expect", "documents"]),
    # UDP at a moderate 50 k msg/s for 10 s: what each wake-up costs.
    "udp-50k": ("udp", ["--rate", "50000", "--duration", "10", "--format", "rfc5424",
                        "--size", "256", "--status-every", "4", "--expect", "documents"]),
    # tcp-full's load through edge -> Kafka -> indexer (see the module's
    # documentation): what the second tier costs.
    "kafka-two-tier": ("kafka", ["--count", "1000000", "--format", "rfc5424", "--size", "256",
                                 "--status-every", "4", "--expect", "both"]),
}


def cpu_ticks():
    """(steal, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is in user)
    return values[7], sum(values[:8])


def cpu_seconds(pid):
    """(user + system, system) CPU seconds of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK, int(fields[12]) / TICK


def minor_faults(pid):
    """Minor page faults of a process so far: memory given back to the OS
    and touched again costs one each (a count, steadier than CPU time)."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[7])


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def udp_rcvbuf_errors():
    """The kernel's count of UDP datagrams dropped for a full socket buffer."""
    with open("/proc/net/snmp") as f:
        rows = [l.split() for l in f if l.startswith("Udp:")]
    return int(dict(zip(rows[0][1:], rows[1][1:]))["RcvbufErrors"])


def metric_sums(admin, name, label="reason"):
    """`name`'s samples at `admin`'s /metrics summed by `label` (non-zero only)."""
    text = urllib.request.urlopen(f"http://{admin}/metrics", timeout=5).read().decode()
    sums = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            key = line.split(f'{label}="')[1].split('"')[0] if f'{label}="' in line else ""
            sums[key] = sums.get(key, 0) + int(float(line.rsplit(" ", 1)[1]))
    return {k: v for k, v in sums.items() if v}


def sluice_drops(admin):
    """sluice_queue_dropped_records_total summed by reason."""
    return metric_sums(admin, "sluice_queue_dropped_records_total")


def run(name):
    listener, args = SCENARIOS[name]
    blaster = subprocess.Popen(
        [BLASTER, "--sink", "127.0.0.1:0", "--target", "-", "--json", "--quiet",
         "--drain-secs", "10"] + args,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    sink = json.loads(blaster.stdout.readline())["sink"]
    env = dict(os.environ, BLASTER_SINK=f"http://{sink}", RUST_LOG="warn")
    config = SCENARIO_CONFIGS.get(name, CONFIG)
    sluice = subprocess.Popen([SLUICE, "run", "-c", config], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        ready = json.loads(sluice.stdout.readline())
        bound = next(l for l in ready["listeners"] if l["name"] == listener)
        addr, scheme = bound["address"], bound["protocol"]
        cpu0, system0 = cpu_seconds(sluice.pid)
        faults0 = minor_faults(sluice.pid)
        steal0, total0 = cpu_ticks()
        kernel0 = udp_rcvbuf_errors()
        blaster.stdin.write(f"{scheme}://{addr}\n")
        blaster.stdin.flush()
        out, _ = blaster.communicate(timeout=600)
        cpu, system = cpu_seconds(sluice.pid)
        cpu, system = cpu - cpu0, system - system0
        steal1, total1 = cpu_ticks()
        rss = peak_rss_mib(sluice.pid)
        faults = minor_faults(sluice.pid) - faults0
        kernel_drops = udp_rcvbuf_errors() - kernel0
        drops = sluice_drops(ready["admin"])
    finally:
        sluice.send_signal(signal.SIGTERM)
        try:
            sluice.wait(timeout=30)
        except subprocess.TimeoutExpired:
            sluice.kill()
        if blaster.poll() is None:
            blaster.kill()
    report = json.loads(out.strip().splitlines()[-1])
    docs = report.get("documents") or {}
    points = report.get("points") or {}
    delivered = docs.get("delivered", 0)
    return {
        "scenario": name,
        "sent": report["sent"],
        "send_rate": round(report["send_rate"]),
        "delivered_documents": delivered,
        "delivered_points": points.get("delivered", 0),
        "expected_points": points.get("expected", 0),
        "e2e_msgs_per_s": round(report["delivered_rate"] or 0),
        "sluice_cpu_s": round(cpu, 2),
        "sluice_system_cpu_s": round(system, 2),
        "sluice_cpu_s_per_million": round(cpu / max(report["sent"], 1) * 1e6, 2),
        "msgs_per_cpu_s": round(report["sent"] / cpu) if cpu > 0 else None,
        "peak_rss_mib": round(rss, 1),
        "sluice_minor_faults": faults,
        "loss_ratio": report["loss_ratio"],
        "doc_latency_ms": docs.get("latency"),
        "point_latency_ms": points.get("latency"),
        "sluice_queue_drops": drops,
        "kernel_udp_rcvbuf_errors": kernel_drops,
        "machine_steal_ratio": round((steal1 - steal0) / max(total1 - total0, 1), 3),
        "blaster_exit": blaster.returncode,
    }


class Kafka:
    """A single-node KRaft broker started by tests/kafka/Launcher.java."""

    def __init__(self, scratch):
        cp_file = os.path.join(scratch, "kafka.classpath")
        cmd = ["mvn", "-o", "-q", "-B", "-f", KAFKA_POM, "dependency:build-classpath",
               f"-Dmdep.outputFile={cp_file}"]
        if os.environ.get("SLUICE_M2_REPO"):
            cmd.append(f"-Dmaven.repo.local={os.environ['SLUICE_M2_REPO']}")
        try:
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=300)
            cp = open(cp_file).read().strip()
        except (OSError, subprocess.SubprocessError) as e:
            sys.exit(f"kafka-two-tier: no Kafka classpath from Maven ({e}); run "
                     f"`mvn -q -f {KAFKA_POM} dependency:resolve` first")
        if "kafka_2.13" not in cp:
            sys.exit("kafka-two-tier: the Kafka jars are not in the local Maven repository")
        cache = os.environ.get("SLUICE_ENGINE_CACHE", "/tmp/sluice-engines")
        t0 = time.monotonic()
        self.log = open(os.path.join(scratch, "kafka-launcher.log"), "w")
        # The launcher's own JVM (the admin client) runs lean; the broker
        # gets a 512 MiB heap (-Xms = -Xmx) and the JVM's own JIT and GC
        # (`--jvm server`), as in production, not the tests' quick start.
        self.proc = subprocess.Popen(
            ["java", "-Xmx96m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", cp,
             KAFKA_LAUNCHER, "--classpath", cp, "--cache", cache, "--nodes", "1",
             "--heap", os.environ.get("SLUICE_BENCH_KAFKA_HEAP", "512m"), "--jvm", "server"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        try:
            ready = json.loads(line)
        except ValueError:
            self.proc.kill()
            sys.exit(f"kafka-two-tier: the launcher printed no readiness line ({line!r}); "
                     f"its stderr is in {self.log.name}")
        self.bootstrap = ready["bootstrap"]
        self.pid = ready["nodes"][0]["pid"]
        print(f"# Kafka broker {self.bootstrap} (pid {self.pid}) ready in "
              f"{time.monotonic() - t0:.0f} s", file=sys.stderr)

    def command(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        if "error" in answer:
            raise RuntimeError(f"launcher: {line}: {answer['error']}")
        return answer

    def stop(self):
        # Stdin closed: the launcher stops the broker and removes its data.
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        self.log.close()


def indexer_config(path):
    """sluice.toml with its listeners replaced by one kafka listener: the
    same routes and sinks as the single-process scenarios."""
    blocks, current = [], []
    for row in open(CONFIG).read().splitlines(keepends=True):
        if row.startswith("["):
            blocks.append(current)
            current = []
        current.append(row)
    blocks.append(current)
    kept = [b for b in blocks
            if not (b and (b[0].startswith("[[listeners]]") or b[0].startswith("[listeners.")))]
    text = ('data_dir = "${BENCH_DATA}"\n' + "".join(kept[0]) + '''
[[listeners]]
name = "from_kafka"
protocol = "kafka"
brokers = ["${BENCH_KAFKA}"]
topics = ["${BENCH_TOPIC}"]
group_id = "${BENCH_GROUP}"

''' + "".join("".join(b) for b in kept[1:]))
    with open(path, "w") as f:
        f.write(text)


def start_sluice(config, env, log):
    """(process, readiness JSON) of `sluice run -c config`."""
    p = subprocess.Popen([SLUICE, "run", "-c", config], stdout=subprocess.PIPE, stderr=log,
                         text=True, env=env)
    line = p.stdout.readline()
    try:
        return p, json.loads(line)
    except ValueError:
        p.kill()
        sys.exit(f"sluice -c {config} printed no readiness line ({line!r}); see {log.name}")


def stop_sluice(p):
    if p is None or p.poll() is not None:
        return
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def wait_for(what, check, deadline_s=120):
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > deadline_s:
            sys.exit(f"kafka-two-tier: waited {deadline_s} s for {what}")
        time.sleep(0.1)


def run_two_tier(name, kafka, scratch, run_no):
    """One run of `name` through edge -> Kafka -> indexer."""
    _, args = SCENARIOS[name]
    topic, group = f"bench.raw.{os.getpid()}.{run_no}", f"bench-indexers-{os.getpid()}-{run_no}"
    kafka.command(f"create {topic} {KAFKA_PARTITIONS} 1")
    data = tempfile.mkdtemp(prefix=f"run{run_no}-", dir=scratch)
    # The Kafka path adds the consumer's fetch and commit rounds to the
    # tail: a longer wait without a new delivery before the blaster stops.
    blaster = subprocess.Popen(
        [BLASTER, "--sink", "127.0.0.1:0", "--target", "-", "--json", "--quiet",
         "--drain-secs", "30"] + args,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    sink = json.loads(blaster.stdout.readline())["sink"]
    base = dict(os.environ, BLASTER_SINK=f"http://{sink}", RUST_LOG="warn",
                BENCH_KAFKA=kafka.bootstrap, BENCH_TOPIC=topic, BENCH_GROUP=group)
    indexer_toml = os.path.join(data, "indexer.toml")
    indexer_config(indexer_toml)
    os.makedirs(os.path.join(data, "edge"))
    os.makedirs(os.path.join(data, "indexer"))
    log = open(os.path.join(data, "sluice.log"), "w")
    edge = indexer = None
    try:
        indexer, iready = start_sluice(indexer_toml,
                                       dict(base, BENCH_DATA=os.path.join(data, "indexer")), log)
        # Sending starts once the group has given the indexer its
        # partitions: the figures are of the flow, not of the join.
        wait_for("the indexer's partitions", lambda: metric_sums(
            iready["admin"], "sluice_listener_kafka_rebalances_total", "listener"))
        edge, eready = start_sluice(EDGE_CONFIG, dict(base, BENCH_DATA=os.path.join(data, "edge")),
                                    log)
        addr = next(l["address"] for l in eready["listeners"] if l["name"] == "tcp")
        pids = {"edge": edge.pid, "indexer": indexer.pid, "broker": kafka.pid}
        cpu0 = {k: cpu_seconds(p)[0] for k, p in pids.items()}
        steal0, total0 = cpu_ticks()
        blaster.stdin.write(f"tcp://{addr}\n")
        blaster.stdin.flush()
        out, _ = blaster.communicate(timeout=900)
        cpu = {k: cpu_seconds(p)[0] - cpu0[k] for k, p in pids.items()}
        steal1, total1 = cpu_ticks()
        rss = {"edge": peak_rss_mib(edge.pid), "indexer": peak_rss_mib(indexer.pid)}
        produced = sum(metric_sums(eready["admin"],
                                   "sluice_sink_kafka_produced_records_total", "sink").values())
        failures = metric_sums(eready["admin"], "sluice_sink_kafka_delivery_failures_total")
        consumed = metric_sums(iready["admin"], "sluice_listener_kafka_records_total", "kind")
        consumer_drops = metric_sums(iready["admin"], "sluice_listener_kafka_dropped_records_total")
        drops = {"edge": sluice_drops(eready["admin"]), "indexer": sluice_drops(iready["admin"])}
    finally:
        stop_sluice(edge)
        stop_sluice(indexer)
        if blaster.poll() is None:
            blaster.kill()
        log.close()
        shutil.rmtree(data, ignore_errors=True)
    report = json.loads(out.strip().splitlines()[-1])
    docs = report.get("documents") or {}
    points = report.get("points") or {}
    sent = report["sent"]
    tiers = {k: {"cpu_s": round(c, 2),
                 "cpu_us_per_msg": round(c / max(sent, 1) * 1e6, 2),
                 "msgs_per_cpu_s": round(sent / c) if c > 0 else None}
             for k, c in cpu.items()}
    total_cpu = sum(cpu.values())
    return {
        "scenario": name,
        "sent": sent,
        "send_rate": round(report["send_rate"]),
        "delivered_documents": docs.get("delivered", 0),
        "duplicate_documents": docs.get("duplicates", 0),
        "delivered_points": points.get("delivered", 0),
        "expected_points": points.get("expected", 0),
        "e2e_msgs_per_s": round(report["delivered_rate"] or 0),
        "tiers": tiers,
        "sluice_cpu_s": round(cpu["edge"] + cpu["indexer"], 2),
        "sluice_cpu_s_per_million": round((cpu["edge"] + cpu["indexer"]) / max(sent, 1) * 1e6, 2),
        "msgs_per_cpu_s": round(sent / (cpu["edge"] + cpu["indexer"])),
        "total_cpu_us_per_msg": round(total_cpu / max(sent, 1) * 1e6, 2),
        "peak_rss_mib": round(max(rss.values()), 1),
        "peak_rss_mib_by_tier": {k: round(v, 1) for k, v in rss.items()},
        "loss_ratio": report["loss_ratio"],
        "doc_latency_ms": docs.get("latency"),
        "point_latency_ms": points.get("latency"),
        "kafka_produced": produced,
        "kafka_delivery_failures": failures,
        "kafka_consumed": consumed,
        "kafka_consumer_drops": consumer_drops,
        "sluice_queue_drops": drops,
        "kernel_udp_rcvbuf_errors": 0,
        "machine_steal_ratio": round((steal1 - steal0) / max(total1 - total0, 1), 3),
        "load_average": os.getloadavg()[0],
        "blaster_exit": blaster.returncode,
    }


def lost(r):
    """Why run `r` lost or doubled messages ('' when it did not)."""
    why = []
    if r["delivered_documents"] != r["sent"]:
        why.append(f"{r['sent'] - r['delivered_documents']} of {r['sent']} documents missing")
    if r["delivered_points"] != r["expected_points"]:
        why.append(f"{r['expected_points'] - r['delivered_points']} of {r['expected_points']} "
                   f"points missing")
    if r.get("duplicate_documents"):
        why.append(f"{r['duplicate_documents']} documents delivered twice")
    if r["scenario"] == "kafka-two-tier" and r["kafka_produced"] != r["sent"]:
        why.append(f"the edge produced {r['kafka_produced']} records for {r['sent']} sent")
    return "; ".join(why)


def tier_line(n, r):
    t = r["tiers"]
    lat = r["doc_latency_ms"] or {}
    return (f"{n}: sent {r['sent']} ({r['send_rate']}/s); delivered {r['delivered_documents']} "
            f"documents ({r['duplicate_documents']} twice), {r['delivered_points']}/"
            f"{r['expected_points']} points; {r['e2e_msgs_per_s']} msgs/s end to end; "
            + "; ".join(f"{k} {v['cpu_s']} CPU s = {v['cpu_us_per_msg']} µs/msg = "
                        f"{v['msgs_per_cpu_s']} msgs per CPU s" for k, v in t.items())
            + f"; all three {r['total_cpu_us_per_msg']} µs/msg; peak RSS {r['peak_rss_mib_by_tier']} MiB; "
            f"Kafka produced {r['kafka_produced']}, consumed {r['kafka_consumed']}, delivery "
            f"failures {r['kafka_delivery_failures']}, consumer drops {r['kafka_consumer_drops']}; "
            f"queue drops {r['sluice_queue_drops']}; loss {r['loss_ratio']}; document latency "
            f"p50 {lat.get('p50_ms')} ms p99 {lat.get('p99_ms')} ms max {lat.get('max_ms')} ms; "
            f"machine steal {r['machine_steal_ratio']:.1%}; load average {r['load_average']:.2f}")


def line(n, r):
    lat = r["doc_latency_ms"] or {}
    return (f"{n}: sent {r['sent']} ({r['send_rate']}/s); delivered {r['delivered_documents']} documents, "
            f"{r['delivered_points']}/{r['expected_points']} points; "
            f"{r['e2e_msgs_per_s']} msgs/s end to end; sluice {r['sluice_cpu_s']} CPU s "
            f"({r['sluice_system_cpu_s']} in the kernel) = {r['sluice_cpu_s_per_million']} CPU s per million = {r['msgs_per_cpu_s']} msgs per CPU s; "
            f"peak RSS {r['peak_rss_mib']} MiB; {r['sluice_minor_faults']} page faults; loss {r['loss_ratio']} (sluice queue drops "
            f"{r['sluice_queue_drops']}, kernel UDP RcvbufErrors {r['kernel_udp_rcvbuf_errors']}); document latency "
            f"p50 {lat.get('p50_ms')} ms p90 {lat.get('p90_ms')} p99 {lat.get('p99_ms')} "
            f"p99.9 {lat.get('p999_ms')} max {lat.get('max_ms')} ms; machine steal {r['machine_steal_ratio']:.1%}")


def summary(n, runs):
    """Median (min-max) of each figure over the runs of one scenario."""
    def spread(values, fmt="{:.0f}"):
        values = [v for v in values if v is not None]
        if not values:
            return "n/a"
        return (f"{fmt.format(statistics.median(values))} "
                f"({fmt.format(min(values))}-{fmt.format(max(values))})")
    lat = lambda key: [(r["doc_latency_ms"] or {}).get(key) for r in runs]
    return (f"{n}, {len(runs)} runs, median (min-max): "
            f"{spread([r['e2e_msgs_per_s'] for r in runs])} msgs/s end to end; "
            f"{spread([r['msgs_per_cpu_s'] for r in runs])} msgs per CPU s; "
            f"peak RSS {spread([r['peak_rss_mib'] for r in runs], '{:.1f}')} MiB; "
            f"page faults {spread([r.get('sluice_minor_faults') for r in runs])}; "
            f"loss {spread([r['loss_ratio'] for r in runs], '{:g}')}; "
            f"document latency p50 {spread(lat('p50_ms'), '{:.2f}')} ms, "
            f"p99 {spread(lat('p99_ms'), '{:.2f}')} ms; "
            f"machine steal {spread([r['machine_steal_ratio'] * 100 for r in runs], '{:.1f}')} %; "
            f"load average {spread([r.get('load_average') for r in runs], '{:.2f}')}; "
            + ("; ".join(
                f"{t} {spread([r['tiers'][t]['cpu_us_per_msg'] for r in runs], '{:.2f}')} µs CPU/msg "
                f"= {spread([r['tiers'][t]['msgs_per_cpu_s'] for r in runs])} msgs per CPU s"
                for t in ("edge", "indexer", "broker"))
               + f"; all three {spread([r['total_cpu_us_per_msg'] for r in runs], '{:.2f}')} µs CPU/msg"
               if "tiers" in runs[0] else
               f"sluice {spread([r['sluice_cpu_s_per_million'] for r in runs], '{:.2f}')} µs CPU/msg"))


def main():
    global SLUICE, BLASTER
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help=f"one of {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--json", action="store_true", help="one JSON object per run")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="run each scenario N times, then print the median and range")
    parser.add_argument("--sluice", action="append", metavar="PATH",
                        help=f"the sluice binary to measure (default: {SLUICE}); give it "
                             "twice or more to compare builds run by run (A/B)")
    parser.add_argument("--blaster", default=BLASTER, metavar="PATH",
                        help=f"the syslog-blaster binary (default: {BLASTER})")
    parser.add_argument("--count", type=int, metavar="N",
                        help="messages per run of a --count scenario (a quick check)")
    parser.add_argument("--interleave", action="store_true",
                        help="with --repeat: one run of each scenario in turn, N rounds")
    args = parser.parse_args()
    names = args.scenarios or list(SCENARIOS)
    for n in names:
        if n not in SCENARIOS:
            parser.error(f"unknown scenario {n!r}: one of {', '.join(SCENARIOS)}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    # Comparing builds means pointing at other checkouts' binaries; run()
    # and start_sluice() read these globals.
    builds = args.sluice or [SLUICE]
    BLASTER = args.blaster
    if args.count:
        for n, (listener, a) in SCENARIOS.items():
            if "--count" in a:
                SCENARIOS[n] = (listener, a[:a.index("--count") + 1] + [str(args.count)]
                                + a[a.index("--count") + 2:])
    for p in builds + [BLASTER]:
        if not os.path.exists(p):
            sys.exit(f"{p} missing: run `cargo build --release --bins` first")
    print(f"# {os.cpu_count()} CPUs; {open('/proc/cpuinfo').read().split('model name')[1].split(':')[1].splitlines()[0].strip()}",
          file=sys.stderr)
    # Interleaved (a, b, a, b, ...): every scenario sees the same
    # neighbours' load on a shared machine. Builds alternate within each
    # scenario's turn, their order reversed every other round (A B, B A),
    # so that neither always runs first.
    rounds = range(args.repeat)
    if args.interleave or len(builds) > 1:
        order = [(b, n) for i in rounds for n in names
                 for b in (builds if i % 2 == 0 else builds[::-1])]
    else:
        order = [(builds[0], n) for n in names for _ in rounds]
    label = (lambda b, n: n) if len(builds) == 1 else (lambda b, n: f"{n} [{b}]")
    scratch = tempfile.mkdtemp(prefix="sluice-e2e-")
    kafka = None
    runs = {(b, n): [] for b in builds for n in names}
    failed = []
    try:
        for i, (b, n) in enumerate(order):
            SLUICE = b
            if SCENARIOS[n][0] == "kafka":
                kafka = kafka or Kafka(scratch)
                r = run_two_tier(n, kafka, scratch, i)
            else:
                r = run(n)
                r["load_average"] = os.getloadavg()[0]
            r["sluice"] = b
            runs[b, n].append(r)
            print(json.dumps(r) if args.json else
                  tier_line(label(b, n), r) if "tiers" in r else
                  f"{line(label(b, n), r)}; load average {r['load_average']:.2f}")
            # TCP and Kafka scenarios must lose nothing (UDP may).
            why = lost(r) if r["scenario"].startswith(("tcp", "kafka")) else ""
            if why:
                print(f"{label(b, n)}: LOST: {why}")
                failed.append(label(b, n))
            sys.stdout.flush()
            if not args.interleave and len(builds) == 1 and args.repeat > 1 \
                    and len(runs[b, n]) == args.repeat and not args.json:
                print(summary(n, runs[b, n]))
        if (args.interleave or len(builds) > 1) and args.repeat > 1 and not args.json:
            for n in names:
                for b in builds:
                    print(summary(label(b, n), runs[b, n]))
    finally:
        if kafka is not None:
            kafka.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    if failed:
        sys.exit(f"messages lost or doubled in: {', '.join(failed)}")


if __name__ == "__main__":
    main()
