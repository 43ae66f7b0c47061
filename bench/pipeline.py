"""The embedded pipeline against Kafka's own tools, on the same broker, in one run.

1. starts the embedded broker (local.broker.LocalBroker, a fresh state folder);
2. Kafka's ProducerPerformance: 941 B records (the simulator's mean event size), acks=all,
   idempotent, linger.ms=5, as fast as it goes, into a 3-partition topic, after a quarter-size
   run that warms the broker up (reported for information); twice here and twice more after
   the pipeline (step 7), and the fastest of the four is the reference. The broker's JIT
   keeps warming for a long time: eight 2M-record runs one after another on one broker made
   131k, 132k, 149k, 157k, 167k, 164k, 172k and 168k/s, so the first runs alone would
   flatter the ratio;
3. Kafka's ConsumerPerformance on the records just written;
4. the end-to-end pipeline (`local`: producer, lake writer and dashboard feed processes)
   for E2E_WARMUP_S, reported for information only: like ProducerPerformance, it warms the
   broker up first. The broker's JIT compiles what this client and these consumers use on
   their first run (lz4 batches, read_committed fetches): on that run C2 compiling took a
   third of the broker's CPU in the sustained phase, and the broker's CPU per event fell
   from 5.9 to about 2 us over the next three runs;
5. the end-to-end pipeline again, at full speed for DURATION_S seconds, sampled every
   second: produced, durable in the lake, the writer's lag (records in Kafka not yet durable
   in the lake) and the feed's (records produced that the dashboard has not counted yet).
   The rates are over the sustained phase: from WARMUP_S after the first record was
   produced to the end of the production (the orderly stop after it is not throughput);
6. CPU-us per event and peak memory of each process (supervisor, producer, writer,
   dashboard, and the broker over the end-to-end phase);
7. ProducerPerformance twice more, now that the broker has moved some 15M records.

Before each measured run the page cache's dirty pages are written out (os.sync, `_quiet_disk`),
so that no run pays for the previous one's writeback (2.2 GB took 1.2 CPU-s of it here).
The kernel writes most back within 30 s anyway: the syncs take 0.0-0.1 s.

The target (issue 13): end to end (durable in the lake, feed on) >= 0.7 x ProducerPerformance
in the same run, with a lag that does not grow.

The audience is AUDIENCE concurrent viewers (`local --concurrent-viewers`). At full speed
the simulator's event time runs ahead of the wall clock by the rate over the audience's
own rate (20,000 viewers send about 2,250 events/s): with 20,000 the dashboard closes a
5 s window about every 0.15 s, each of some 12,000 events. With `local --events N`'s
default of 200 viewers it would close some 700 windows a second of 100 events each, a
load no live dashboard sees; SMALL_AUDIENCE reports that case beside it, for information.
(The simulator draws every live session up front, about 0.23 ms each: 400,000 viewers take
90 s to start, so the audience is not larger.)
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
DURATION_S = 60.0  # the sustained phase, at least
QUICK_DURATION_S = 15.0
WARMUP_S = 5.0  # left out of the sustained rate: JIT, first fetches, the first flush
E2E_WARMUP_S = 45.0  # the pipeline's first run on the broker, for information (module doc)
START_S = 10.0  # headroom for the simulator to draw its audience before the first record
AUDIENCE = 20_000
SMALL_AUDIENCE = 200
SMALL_DURATION_S = 20.0


def _java_tool(main: str, *args: str, timeout: float = 600) -> str:
    cmd = ["java", "-Xmx512m", "-cp", f"{libs_dir()}/*", "-Dlog4j.configuration=file:/dev/null", main, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{main} failed: {(proc.stderr or proc.stdout)[-500:]}")
    return proc.stdout


def producer_performance(bootstrap: str, topic: str, n: int) -> float:
    _quiet_disk()
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


def _rates(xs: list[float], unit: str = "") -> str:
    """ProducerPerformance's runs as the report lists them: '153,010/s, 172,577/s'."""
    return ", ".join(f"{x:,.0f}{unit}" for x in xs)


def _quiet_disk() -> None:
    """Write out every dirty page now (module doc): the next run pays only for its own I/O."""
    t0 = time.monotonic()
    os.sync()
    print(f"[bench] pipeline: sync {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)


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


def end_to_end(broker: LocalBroker, work: Path, duration_s: float, viewers: int | None = None) -> dict[str, Any]:
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
        concurrent_viewers=viewers,
    )
    holder: list[runner.LocalPipeline] = []
    samples: list[tuple[float, int, int, int | None, int]] = []
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
            fed = int(p.dashboard.stats.get("events", 0)) if p.dashboard is not None else 0
            samples.append((time.monotonic() - (p.started_at or 0), p.produced(), p.lake_events(), lag, fed))

    _quiet_disk()
    max_lag = os.environ.get("ACME_BENCH_MAX_LAG")  # an experiment: the supervisor's back-pressure threshold
    if max_lag:
        runner.MAX_LAG = int(max_lag)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    sup0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = time.monotonic()
    work.mkdir(parents=True, exist_ok=True)
    with open(os.devnull, "w") as null:
        code = runner.run(opts, console=Console(stdout=null, stderr=null), pipeline_out=holder)
    wall = time.monotonic() - wall0
    stop.set()
    sampler.join(5)
    sup1 = resource.getrusage(resource.RUSAGE_SELF)
    p = holder[0]
    assert code == 0, f"local exited {code}"
    broker_cpu = _proc_cpu_s(broker_pid) - broker_cpu0[0] if broker_pid and broker_cpu0 else float("nan")
    first = next((s[0] for s in samples if s[1] > 0), None)
    if first is None:
        raise RuntimeError("the pipeline produced nothing")
    sustained = [s for s in samples if first + WARMUP_S <= s[0] <= duration_s]
    if len(sustained) < 2:
        raise RuntimeError(f"under 2 samples in the sustained phase (the first record came {first:.0f} s after the start)")
    print(
        "[bench] pipeline: every 5 s (t, produced, lake, lag, feed): "
        + "  ".join(f"{s[0]:.0f} {s[1]:,} {s[2]:,} {s[3] if s[3] is not None else '?'} {s[4]:,}" for s in samples[::5]),
        file=sys.stderr,
        flush=True,
    )
    t0, t1 = sustained[0], sustained[-1]
    lake_rate = (t1[2] - t0[2]) / (t1[0] - t0[0])
    produce_rate = (t1[1] - t0[1]) / (t1[0] - t0[0])
    feed_rate = (t1[4] - t0[4]) / (t1[0] - t0[0])
    feed_lags = [(s[0], float(s[1] - s[4])) for s in sustained]
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
        "feed_rate": feed_rate,
        "feed_lag_max": max(lag for _, lag in feed_lags),
        "feed_lag_last": feed_lags[-1][1],
        "feed_lag_slope": _slope([t for t, _ in feed_lags], [lag for _, lag in feed_lags]),
        "first_record_s": first,
        "usage": usage,
        "feed_events": (p.dashboard.stats.get("events", 0) if p.dashboard is not None else 0),
        "writer_split": {k: float(p.writer.stats.get(k, 0.0)) for k in ("consume_s", "process_s", "sink_wait_s")}
        if p.writer is not None
        else {},
        "duration": t1[0] - t0[0],
        "wall": wall,
    }


def _e2e_rows(e2e: dict[str, Any], pp: float, label: str, target: bool) -> list[Row]:
    ratio = e2e["lake_rate"] / pp
    rows: list[Row] = [
        {
            "benchmark": "pipeline",
            "metric": f"{label}: produced",
            "value": e2e["produce_rate"],
            "unit": "events/s",
            "note": f"local, feed on, {e2e['duration']:.0f} s sustained (from {WARMUP_S:.0f} s after the first record)"
            + (f"; EXPERIMENT: MAX_LAG={os.environ['ACME_BENCH_MAX_LAG']}" if os.environ.get("ACME_BENCH_MAX_LAG") else ""),
        },
        {
            "benchmark": "pipeline",
            "metric": f"{label}: durable in the lake",
            "value": e2e["lake_rate"],
            "unit": "events/s",
            "note": f"{e2e['events']:,} events in the lake at the end",
        },
        {
            "benchmark": "pipeline",
            "metric": f"{label}: lake / ProducerPerformance",
            "value": ratio,
            "unit": "ratio",
            "note": (f"target >= {TARGET_RATIO}: {'met' if ratio >= TARGET_RATIO else 'MISSED'}" if target else "for information"),
        },
        {
            "benchmark": "pipeline",
            "metric": f"{label}: writer lag, max",
            "value": e2e["lag_max"],
            "unit": "events",
            "note": f"sampled every 1 s: first {e2e['lag_first']:,.0f}, last {e2e['lag_last']:,.0f}, trend {e2e['lag_slope']:+,.0f}/s",
        },
        {
            "benchmark": "pipeline",
            "metric": f"{label}: dashboard counted",
            "value": e2e["feed_rate"],
            "unit": "events/s",
            "note": f"its lag behind the producer: max {e2e['feed_lag_max']:,.0f}, last {e2e['feed_lag_last']:,.0f}, "
            f"trend {e2e['feed_lag_slope']:+,.0f}/s",
        },
    ]
    split = e2e["writer_split"]
    if split and target:
        rows.append(
            {
                "benchmark": "pipeline",
                "metric": f"{label}: writer's reading thread",
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
                "metric": f"{label}: CPU per event, {name}",
                "value": cpu_s / events * 1e6,
                "unit": "CPU-us",
                "note": f"peak memory {peak_mb:,.0f} MB",
            }
        )
    total = sum(cpu for cpu, _ in e2e["usage"].values())
    rows.append(
        {
            "benchmark": "pipeline",
            "metric": f"{label}: CPU per event, all",
            "value": total / events * 1e6,
            "unit": "CPU-us",
            "note": f"{total / max(1e-9, e2e['wall']):.2f} cores busy on average over the {e2e['wall']:.0f} s run",
        }
    )
    return rows


def run(quick: bool = False) -> list[Row]:
    n_perf = 300_000 if quick else 2_000_000
    duration = QUICK_DURATION_S if quick else DURATION_S
    with tempfile.TemporaryDirectory(prefix="acme-bench-pipeline-") as tmp:
        work = Path(tmp)
        broker = LocalBroker(work / "broker", port=None, num_partitions=3, heap="1g")
        with broker:
            settings = KafkaSettings.local(broker.bootstrap)
            ensure_topic(settings, "perf", partitions=3, retention_hours=1)
            ensure_topic(settings, "perf-warmup", partitions=3, retention_hours=1)
            # The broker's JIT warms up on a first run (for information only): the measured
            # ones, like the pipeline after them, meet a warm broker.
            warm = producer_performance(broker.bootstrap, "perf-warmup", n_perf // 4)
            print(f"[bench] pipeline: ProducerPerformance warm-up, cold broker {warm:,.0f}/s", file=sys.stderr, flush=True)
            pps = [producer_performance(broker.bootstrap, "perf", n_perf) for _ in range(2)]
            print(f"[bench] pipeline: ProducerPerformance {_rates(pps, '/s')}", file=sys.stderr, flush=True)
            cp = consumer_performance(broker.bootstrap, "perf", n_perf)
            print(f"[bench] pipeline: ConsumerPerformance {cp:,.0f}/s", file=sys.stderr, flush=True)
            first = end_to_end(broker, work / "e2e-warmup", START_S + WARMUP_S + (QUICK_DURATION_S if quick else E2E_WARMUP_S), AUDIENCE)
            print(f"[bench] pipeline: warm-up run, cold broker {first['lake_rate']:,.0f}/s", file=sys.stderr, flush=True)
            e2e = end_to_end(broker, work / "e2e", START_S + WARMUP_S + duration, AUDIENCE)
            small = None if quick else end_to_end(broker, work / "e2e-small", WARMUP_S + SMALL_DURATION_S, SMALL_AUDIENCE)
            ensure_topic(settings, "perf-after", partitions=3, retention_hours=1)
            after = [producer_performance(broker.bootstrap, "perf-after", n_perf) for _ in range(2)]
            print(
                f"[bench] pipeline: ProducerPerformance after the pipeline {_rates(after, '/s')}",
                file=sys.stderr,
                flush=True,
            )
            pps += after
            pp = max(pps)
    note_pp = f"{n_perf:,} x {RECORD_SIZE} B, acks=all, idempotent, linger.ms=5"
    rows: list[Row] = [
        {
            "benchmark": "pipeline",
            "metric": "Kafka ProducerPerformance",
            "value": pp,
            "unit": "events/s",
            "note": note_pp + f", warm broker; the fastest of four runs, two before and two after the pipeline ({_rates(pps)})",
        },
        {
            "benchmark": "pipeline",
            "metric": "Kafka ProducerPerformance, cold broker",
            "value": warm,
            "unit": "events/s",
            "note": f"the warm-up: {n_perf // 4:,} records, first run on the new broker (for information)",
        },
        {"benchmark": "pipeline", "metric": "Kafka ConsumerPerformance", "value": cp, "unit": "events/s", "note": f"{n_perf:,} records"},
    ]
    rows += _e2e_rows(e2e, pp, f"e2e, {AUDIENCE:,} viewers", target=True)
    rows.append(
        {
            "benchmark": "pipeline",
            "metric": f"e2e, {AUDIENCE:,} viewers: lake / cold-broker ProducerPerformance",
            "value": e2e["lake_rate"] / warm,
            "unit": "ratio",
            "note": "for information: the target is against the warm broker",
        }
    )
    rows.append(
        {
            "benchmark": "pipeline",
            "metric": f"e2e, {AUDIENCE:,} viewers: warm-up run, durable in the lake",
            "value": first["lake_rate"],
            "unit": "events/s",
            "note": f"the pipeline's first run on the broker, {first['duration']:.0f} s sustained (for information): "
            f"{first['lake_rate'] / pp:.2f} x ProducerPerformance",
        }
    )
    if small is not None:
        rows += _e2e_rows(small, pp, f"e2e, {SMALL_AUDIENCE} viewers", target=False)
    return rows


if __name__ == "__main__":
    from bench.run import format_table

    print(format_table(run(quick="--quick" in sys.argv)))
