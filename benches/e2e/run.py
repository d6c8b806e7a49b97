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
                                               # another build (A/B runs)

On a shared VM the figures move with the neighbours' load: repeat, and
quote the median with the range. Each run also prints the share of the
machine's CPU time the hypervisor gave to others meanwhile (steal).

Every scenario is bounded in count and time and stops by itself.
"""
import argparse
import json
import os
import statistics
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLUICE = os.path.join(ROOT, "target", "release", "sluice")
BLASTER = os.path.join(ROOT, "target", "release", "syslog-blaster")
CONFIG = os.path.join(ROOT, "benches", "e2e", "sluice.toml")
TICK = os.sysconf("SC_CLK_TCK")

# name -> (listener, blaster arguments)
SCENARIOS = {
    # The reference scenario: one TCP connection, LF framing, 1 M RFC 5424
    # messages of 256 bytes, every 4th a status line, as fast as possible.
    "tcp-full": ("tcp", ["--count", "1000000", "--format", "rfc5424", "--size", "256",
                         "--status-every", "4", "--expect", "both"]),
    # tcp-full with RFC 3164 frames (`<PRI>MMM dd HH:mm:ss HOST APP[PID]: MSG`)
    # of the same size: what the older format costs per message.
    "tcp-full-3164": ("tcp", ["--count", "1000000", "--format", "rfc3164", "--size", "256",
                              "--status-every", "4", "--expect", "both"]),
    # Latency at a steady, light rate.
    "tcp-20k": ("tcp", ["--rate", "20000", "--duration", "10", "--format", "rfc5424",
                        "--size", "256", "--status-every", "4", "--expect", "both"]),
    # UDP at 150 k msg/s for 10 s.
    "udp-150k": ("udp", ["--rate", "150000", "--duration", "10", "--format", "rfc5424",
                         "--size", "256", "--status-every", "4", "--expect", "documents"]),
    # UDP at a moderate 50 k msg/s for 10 s: what each wake-up costs.
    "udp-50k": ("udp", ["--rate", "50000", "--duration", "10", "--format", "rfc5424",
                        "--size", "256", "--status-every", "4", "--expect", "documents"]),
}


def cpu_ticks():
    """(steal, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is in user)
    return values[7], sum(values[:8])


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


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


def sluice_drops(admin):
    """sluice_queue_dropped_records_total summed by reason."""
    import urllib.request
    text = urllib.request.urlopen(f"http://{admin}/metrics", timeout=5).read().decode()
    drops = {}
    for line in text.splitlines():
        if line.startswith("sluice_queue_dropped_records_total{"):
            reason = line.split('reason="')[1].split('"')[0]
            drops[reason] = drops.get(reason, 0) + int(float(line.rsplit(" ", 1)[1]))
    return {k: v for k, v in drops.items() if v}


def run(name):
    listener, args = SCENARIOS[name]
    blaster = subprocess.Popen(
        [BLASTER, "--sink", "127.0.0.1:0", "--target", "-", "--json", "--quiet",
         "--drain-secs", "10"] + args,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    sink = json.loads(blaster.stdout.readline())["sink"]
    env = dict(os.environ, BLASTER_SINK=f"http://{sink}", RUST_LOG="warn")
    sluice = subprocess.Popen([SLUICE, "run", "-c", CONFIG], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        ready = json.loads(sluice.stdout.readline())
        addr = next(l["address"] for l in ready["listeners"] if l["name"] == listener)
        cpu0 = cpu_seconds(sluice.pid)
        steal0, total0 = cpu_ticks()
        kernel0 = udp_rcvbuf_errors()
        blaster.stdin.write(f"{listener}://{addr}\n")
        blaster.stdin.flush()
        out, _ = blaster.communicate(timeout=600)
        cpu = cpu_seconds(sluice.pid) - cpu0
        steal1, total1 = cpu_ticks()
        rss = peak_rss_mib(sluice.pid)
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
        "sluice_cpu_s_per_million": round(cpu / max(report["sent"], 1) * 1e6, 2),
        "msgs_per_cpu_s": round(report["sent"] / cpu) if cpu > 0 else None,
        "peak_rss_mib": round(rss, 1),
        "loss_ratio": report["loss_ratio"],
        "doc_latency_ms": docs.get("latency"),
        "point_latency_ms": points.get("latency"),
        "sluice_queue_drops": drops,
        "kernel_udp_rcvbuf_errors": kernel_drops,
        "machine_steal_ratio": round((steal1 - steal0) / max(total1 - total0, 1), 3),
        "blaster_exit": blaster.returncode,
    }


def line(n, r):
    lat = r["doc_latency_ms"] or {}
    return (f"{n}: sent {r['sent']} ({r['send_rate']}/s); delivered {r['delivered_documents']} documents, "
            f"{r['delivered_points']}/{r['expected_points']} points; "
            f"{r['e2e_msgs_per_s']} msgs/s end to end; sluice {r['sluice_cpu_s']} CPU s "
            f"= {r['sluice_cpu_s_per_million']} CPU s per million = {r['msgs_per_cpu_s']} msgs per CPU s; "
            f"peak RSS {r['peak_rss_mib']} MiB; loss {r['loss_ratio']} (sluice queue drops "
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
            f"loss {spread([r['loss_ratio'] for r in runs], '{:g}')}; "
            f"document latency p50 {spread(lat('p50_ms'), '{:.2f}')} ms, "
            f"p99 {spread(lat('p99_ms'), '{:.2f}')} ms; "
            f"machine steal {spread([r['machine_steal_ratio'] * 100 for r in runs], '{:.1f}')} %")


def main():
    global SLUICE, BLASTER
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help=f"one of {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--json", action="store_true", help="one JSON object per run")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="run each scenario N times, then print the median and range")
    parser.add_argument("--sluice", default=SLUICE, metavar="PATH",
                        help=f"the sluice binary to measure (default: {SLUICE})")
    parser.add_argument("--blaster", default=BLASTER, metavar="PATH",
                        help=f"the syslog-blaster binary (default: {BLASTER})")
    args = parser.parse_args()
    names = args.scenarios or list(SCENARIOS)
    for n in names:
        if n not in SCENARIOS:
            parser.error(f"unknown scenario {n!r}: one of {', '.join(SCENARIOS)}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    # Comparing two builds (interleaved A/B runs) means pointing at another
    # checkout's binaries; run() reads these globals.
    SLUICE, BLASTER = args.sluice, args.blaster
    for p in (SLUICE, BLASTER):
        if not os.path.exists(p):
            sys.exit(f"{p} missing: run `cargo build --release --bins` first")
    print(f"# {os.cpu_count()} CPUs; {open('/proc/cpuinfo').read().split('model name')[1].split(':')[1].splitlines()[0].strip()}",
          file=sys.stderr)
    for n in names:
        runs = []
        for _ in range(args.repeat):
            r = run(n)
            runs.append(r)
            print(json.dumps(r) if args.json else line(n, r))
            sys.stdout.flush()
        if args.repeat > 1 and not args.json:
            print(summary(n, runs))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
