"""The embedded pipeline against Kafka's own tools, on the same broker, in one run.

1. starts the embedded broker (local.broker.LocalBroker, a fresh state folder);
2. Kafka's ProducerPerformance: 941 B records (the simulator's mean event size), acks=all,
   idempotent, linger.ms=5, as fast as it goes, into a 3-partition topic;
3. Kafka's ConsumerPerformance on the records just written;
4. the end-to-end pipeline (`local`: producer, lake writer and dashboard feed processes)
   at full speed for DURATION_S seconds, sampled every second: produced, durable in the
   lake, the writer's lag (records in Kafka not yet durable in the lake);
5. CPU-us per event and peak memory of each process (supervisor, producer, writer,
   dashboard, and the broker over the end-to-end phase).

The target (issue 13): end to end (durable in the lake, feed on) >= 0.7 x ProducerPerformance
in the same run, with a lag that does not grow.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from acme_telemetry.kafka import KafkaSettings, ensure_topic
from acme_telemetry.local.broker import LocalBroker, libs_dir, pick_port

Row = dict[str, Any]
RECORD_SIZE = 941
TARGET_RATIO = 0.7
DURATION_S = 60.0
QUICK_DURATION_S = 15.0
WARMUP_S = 5.0  # left out of the sustained rate: JIT, first fetches, the first flush


def _java_tool(main: str, *args: str, timeout: float = 600) -> str:
    cmd = ["java", "-Xmx512m", "-cp", f"{libs_dir()}/*", "-Dlog4j.configuration=file:/dev/null", main, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{main} failed: {(proc.stderr or proc.stdout)[-500:]}")
    return proc.stdout


def producer_performance(bootstrap: str, topic: str, n: int) -> float:
    out = _java_tool(
        "org.apache.kafka.tools.ProducerPerformance",
        "--topic",
        topic,
        "--num-records",
        str(n),
        "--record-size",
        str(RECORD_SIZE),
        "--throughput",
        "-1",
        "--producer-props",
        f"bootstrap.servers={bootstrap}",
        "acks=all",
        "enable.idempotence=true",
        "linger.ms=5",
    )
    last = [ln for ln in out.splitlines() if "records sent" in ln][-1]
    m = re.search(r"records sent, ([\d.]+) records/sec", last)
    assert m, last
    return float(m.group(1))


def consumer_performance(bootstrap: str, topic: str, n: int) -> float:
    out = _java_tool(
        "org.apache.kafka.tools.ConsumerPerformance",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--messages",
        str(n),
        "--group",
        f"perf-{os.getpid()}",
        "--timeout",
        "60000",
    )
    lines = [ln for ln in out.strip().splitlines() if ln and not ln.startswith("start.time")]
    fields = [f.strip() for f in lines[-1].split(",")]
    return float(fields[5])  # nMsg.sec


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _slope(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def end_to_end(broker: LocalBroker, work: Path, duration_s: float) -> dict[str, Any]:
    from acme_telemetry.local import runner
    from acme_telemetry.local.supervisor import Console

    opts = runner.RunOptions(
        events=10**9,
        duration_s=duration_s,
        bootstrap_servers=broker.bootstrap,
        lake=work / "lake",
        state_dir=work / "state",
        port=pick_port(None),
        explicit=frozenset({"--port"}),
        seed=1,
    )
    holder: list[runner.LocalPipeline] = []
    samples: list[tuple[float, int, int, int | None]] = []
    stop = threading.Event()
    broker_pid = broker.proc.pid if broker.proc is not None else None
    broker_cpu0: list[float] = []

    def sample() -> None:
        while not holder or holder[0].started_at is None:
            if stop.wait(0.05):
                return
        p = holder[0]
        if broker_pid:
            broker_cpu0.append(_proc_cpu_s(broker_pid))
        while not stop.wait(1.0):
            lag = p.writer.stats.get("lag") if p.writer is not None else None
            samples.append((time.monotonic() - (p.started_at or 0), p.produced(), p.lake_events(), lag))

    max_lag = os.environ.get("ACME_BENCH_MAX_LAG")  # an experiment: the supervisor's back-pressure threshold
    if max_lag:
        runner.MAX_LAG = int(max_lag)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    sup0 = resource.getrusage(resource.RUSAGE_SELF)
    with open(os.devnull, "w") as null:
        code = runner.run(opts, console=Console(stdout=null, stderr=null), pipeline_out=holder)
    stop.set()
    sampler.join(5)
    sup1 = resource.getrusage(resource.RUSAGE_SELF)
    p = holder[0]
    assert code == 0, f"local exited {code}"
    broker_cpu = _proc_cpu_s(broker_pid) - broker_cpu0[0] if broker_pid and broker_cpu0 else float("nan")
    sustained = [s for s in samples if s[0] >= WARMUP_S]
    print(
        "[bench] pipeline: every 5 s (t, produced, lake, lag): "
        + "  ".join(f"{s[0]:.0f} {s[1]:,} {s[2]:,} {s[3] if s[3] is not None else '?'}" for s in samples[::5]),
        file=sys.stderr,
        flush=True,
    )
    t0, t1 = sustained[0], sustained[-1]
    lake_rate = (t1[2] - t0[2]) / (t1[0] - t0[0])
    produce_rate = (t1[1] - t0[1]) / (t1[0] - t0[0])
    lags = [(s[0], float(s[3])) for s in sustained if s[3] is not None]
    events = p.lake_events()
    usage = {}
    for svc in (p.producer, p.writer, p.dashboard):
        if svc is not None:
            u = svc.usage
            usage[svc.role] = (u.get("cpu_user_s", 0) + u.get("cpu_sys_s", 0), u.get("peak_rss_mb", float("nan")))
    usage["supervisor"] = (sup1.ru_utime + sup1.ru_stime - sup0.ru_utime - sup0.ru_stime, sup1.ru_maxrss / 1024)
    usage["broker (JVM)"] = (broker_cpu, _proc_peak_mb(broker_pid) if broker_pid else float("nan"))
    return {
        "lake_rate": lake_rate,
        "produce_rate": produce_rate,
        "events": events,
        "samples": samples,
        "lag_max": max((lag for _, lag in lags), default=float("nan")),
        "lag_slope": _slope([t for t, _ in lags], [lag for _, lag in lags]),
        "lag_first": lags[0][1] if lags else float("nan"),
        "lag_last": lags[-1][1] if lags else float("nan"),
        "usage": usage,
        "feed_events": (p.dashboard.stats.get("events", 0) if p.dashboard is not None else 0),
        "writer_split": {k: float(p.writer.stats.get(k, 0.0)) for k in ("consume_s", "process_s", "sink_wait_s")}
        if p.writer is not None
        else {},
        "duration": t1[0],
    }


def run(quick: bool = False) -> list[Row]:
    n_perf = 300_000 if quick else 2_000_000
    duration = QUICK_DURATION_S if quick else DURATION_S
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="acme-bench-pipeline-") as tmp:
        work = Path(tmp)
        broker = LocalBroker(work / "broker", port=None, num_partitions=3, heap="1g")
        with broker:
            settings = KafkaSettings.local(broker.bootstrap)
            ensure_topic(settings, "perf", partitions=3, retention_hours=1)
            pp = producer_performance(broker.bootstrap, "perf", n_perf)
            print(f"[bench] pipeline: ProducerPerformance {pp:,.0f}/s", file=sys.stderr, flush=True)
            cp = consumer_performance(broker.bootstrap, "perf", n_perf)
            print(f"[bench] pipeline: ConsumerPerformance {cp:,.0f}/s", file=sys.stderr, flush=True)
            e2e = end_to_end(broker, work, duration)
    ratio = e2e["lake_rate"] / pp
    note_pp = f"{n_perf:,} x {RECORD_SIZE} B, acks=all, idempotent, linger.ms=5"
    rows += [
        {"benchmark": "pipeline", "metric": "Kafka ProducerPerformance", "value": pp, "unit": "events/s", "note": note_pp},
        {"benchmark": "pipeline", "metric": "Kafka ConsumerPerformance", "value": cp, "unit": "events/s", "note": f"{n_perf:,} records"},
        {
            "benchmark": "pipeline",
            "metric": "e2e produced",
            "value": e2e["produce_rate"],
            "unit": "events/s",
            "note": f"local, feed on, {e2e['duration']:.0f} s sustained (first {WARMUP_S:.0f} s left out)"
            + (f"; EXPERIMENT: MAX_LAG={os.environ['ACME_BENCH_MAX_LAG']}" if os.environ.get("ACME_BENCH_MAX_LAG") else ""),
        },
        {
            "benchmark": "pipeline",
            "metric": "e2e durable in the lake",
            "value": e2e["lake_rate"],
            "unit": "events/s",
            "note": f"{e2e['events']:,} events in the lake; the feed read {e2e['feed_events']:,}",
        },
        {
            "benchmark": "pipeline",
            "metric": "e2e / ProducerPerformance",
            "value": ratio,
            "unit": "ratio",
            "note": f"target >= {TARGET_RATIO}: {'met' if ratio >= TARGET_RATIO else 'MISSED'}",
        },
        {
            "benchmark": "pipeline",
            "metric": "writer lag, max",
            "value": e2e["lag_max"],
            "unit": "events",
            "note": f"sampled every 1 s: first {e2e['lag_first']:,.0f}, last {e2e['lag_last']:,.0f}",
        },
        {
            "benchmark": "pipeline",
            "metric": "writer lag, trend",
            "value": e2e["lag_slope"],
            "unit": "events/s",
            "note": "least-squares slope of the lag; ~0 (vs the rate) means it does not grow",
        },
    ]
    split = e2e["writer_split"]
    if split:
        rows.append(
            {
                "benchmark": "pipeline",
                "metric": "writer's reading thread",
                "value": split.get("process_s", 0.0),
                "unit": "s",
                "note": "in its record loop; in consume() {:.1f} s, waiting on the sink queue {:.1f} s".format(
                    split.get("consume_s", 0.0), split.get("sink_wait_s", 0.0)
                ),
            }
        )
    events = max(1, e2e["events"])
    for name, (cpu_s, peak_mb) in e2e["usage"].items():
        rows.append(
            {
                "benchmark": "pipeline",
                "metric": f"CPU per event: {name}",
                "value": cpu_s / events * 1e6,
                "unit": "CPU-us",
                "note": f"peak memory {peak_mb:,.0f} MB",
            }
        )
    total = sum(cpu for cpu, _ in e2e["usage"].values())
    rows.append(
        {
            "benchmark": "pipeline",
            "metric": "CPU per event: all",
            "value": total / events * 1e6,
            "unit": "CPU-us",
            "note": f"{total / max(1e-9, e2e['duration']):.2f} cores busy on average",
        }
    )
    return rows


if __name__ == "__main__":
    from bench.run import format_table

    print(format_table(run(quick="--quick" in sys.argv)))
