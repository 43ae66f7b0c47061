"""The local runner's reliability cases on the real broker (issue 13): no orphan after kill -9
of the supervisor, isolated --events N runs, the state folder's two kinds of "busy", explicit
busy ports, and a writer that is fenced or has no partitions fails in one line instead of hanging."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from lake_read import lake_events
from localrun import ENV, ROOT, folders, local, wait_for

from acme_telemetry import kafka as k
from acme_telemetry.local.broker import LocalBroker, pick_port
from acme_telemetry.schema import TOPIC
from acme_telemetry.simulator import SimConfig, iter_records

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_kill_9_of_the_supervisor_leaves_no_child_and_no_broker(tmp_path):
    state = tmp_path / "state"
    proc = local(
        "--rate",
        "500",
        "--buffer-interval",
        "1",
        "--port",
        str(pick_port(None)),
        "--kafka-port",
        str(pick_port(None)),
        *folders(tmp_path / "lake", state),
    )
    log = state / "logs" / "local.log"
    wait_for(lambda: log.exists() and "the producer is ready" in log.read_text(), 120, "the producer to start")
    pids = [int(p) for p in re.findall(r"is ready \(pid (\d+)\)", log.read_text())]
    broker_pid = int((state / "kafka" / "broker.pid").read_text())
    assert len(pids) == 3 and all(_alive(p) for p in [*pids, broker_pid])
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    wait_for(lambda: not any(_alive(p) for p in [*pids, broker_pid]), 60, "the children and the broker to die")
    # The parent-death signal is SIGTERM: the children took their stop path.
    assert "SIGTERM: stopping" in log.read_text()
    # And the state folder is free again: the next run starts.
    again = local(
        "--events",
        "500",
        "--no-dashboard",
        "--kafka-port",
        str(pick_port(None)),
        *folders(tmp_path / "lake2", state),
    )
    _, err = again.communicate(timeout=180)
    assert again.returncode == 0, err[-2000:]


def test_events_n_writes_exactly_this_runs_events_whatever_the_topic_holds(broker, tmp_path):
    """Records an earlier run left in the topic (never written to a lake) stay out of this lake."""
    settings = k.KafkaSettings.local(broker.bootstrap)
    k.ensure_topic(settings, TOPIC, partitions=3, retention_hours=1)
    producer = k.make_producer(settings)
    k.produce(producer, TOPIC, list(iter_records(2500, SimConfig(seed=77))))  # the leftovers
    producer.close()
    n, lake = 3000, tmp_path / "lake"
    proc = local(
        "--bootstrap-servers",
        broker.bootstrap,
        "--events",
        str(n),
        "--seed",
        "78",
        "--no-dashboard",
        "--buffer-interval",
        "1",
        *folders(lake, tmp_path / "state"),
    )
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err[-2000:]
    ids = [e["event_id"] for e in lake_events(lake)]
    assert len(ids) == n
    assert set(ids) == {orjson.loads(v)["event_id"] for _, v in iter_records(n, SimConfig(seed=78))}


def test_a_second_run_on_the_same_state_folder_names_the_live_run(broker, tmp_path):
    state = tmp_path / "state"
    first = local(
        "--bootstrap-servers",
        broker.bootstrap,
        "--rate",
        "200",
        "--no-dashboard",
        *folders(tmp_path / "lake", state),
    )
    try:
        wait_for(lambda: (state / "run.json").exists(), 60, "the first run to hold the state folder")
        second = subprocess.run(
            [
                sys.executable,
                "-m",
                "acme_telemetry",
                "local",
                "--events",
                "10",
                "--no-dashboard",
                *folders(tmp_path / "lake2", state),
            ],
            cwd=ROOT,
            env=ENV,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert f"another run is using this state folder {state} (pid {first.pid}, started " in second.stderr
        assert "stale" not in second.stderr and second.stderr.count("\n") <= 3
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)


def test_a_broker_left_by_a_crashed_run_is_named_as_stale(tmp_path):
    state = tmp_path / "state"
    stale = LocalBroker(state, port=None, heap="256m")
    stale.start()  # a broker on the folder, and no run holding it: what a crash leaves
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "acme_telemetry",
                "local",
                "--events",
                "10",
                "--no-dashboard",
                "--kafka-port",
                str(pick_port(None)),
                "--state-dir",
                str(state),
                "--lake",
                str(tmp_path / "lake"),
            ],
            cwd=ROOT,
            env=ENV,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 1
        assert f"a stale Kafka broker from a crashed run is still running on {state / 'kafka'} (pid {stale.proc.pid}" in proc.stderr
        assert f"kill {stale.proc.pid}" in proc.stderr and "another run" not in proc.stderr
    finally:
        stale.stop()


@pytest.mark.parametrize("flag", ["--port", "--kafka-port"])
def test_an_explicit_port_that_is_taken_is_an_error_naming_it(flag, broker, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        extra = ["--bootstrap-servers", broker.bootstrap] if flag == "--port" else ["--no-dashboard"]
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "acme_telemetry",
                "local",
                "--events",
                "10",
                flag,
                str(port),
                *extra,
                *folders(tmp_path / "lake", tmp_path / "state"),
            ],
            cwd=ROOT,
            env=ENV,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert f"{flag} {port}: port {port} on 127.0.0.1 is in use" in proc.stderr
    assert not (tmp_path / "lake").exists() or not list((tmp_path / "lake").rglob("*.gz"))


def test_a_writer_fenced_out_of_its_group_fails_the_run_in_one_line(broker, tmp_path):
    """Another member takes the writer's static id (a second writer on the broker): the run
    fails within seconds with the cause, instead of spinning with no partitions."""
    from confluent_kafka import Consumer

    proc = local(
        "--bootstrap-servers",
        broker.bootstrap,
        "--rate",
        "200",
        "--no-dashboard",
        "--buffer-interval",
        "1",
        *folders(tmp_path / "lake", tmp_path / "state"),
    )
    log = tmp_path / "state" / "logs" / "local.log"
    rogue = None
    try:
        wait_for(lambda: log.exists() and "assigned [('acme-telemetry'" in log.read_text(), 60, "the writer's partitions")
        rogue = Consumer(
            {
                "bootstrap.servers": broker.bootstrap,
                "group.id": "acme-lake-writer",
                "group.instance.id": "acme-lake-writer-1",
                "session.timeout.ms": 10000,
            }
        )
        rogue.subscribe([TOPIC])
        t0 = time.monotonic()
        while proc.poll() is None and time.monotonic() - t0 < 60:
            rogue.poll(0.5)
        _, err = proc.communicate(timeout=60)
    finally:
        if rogue is not None:
            rogue.close()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1
    assert "the lake writer failed: the lake writer was fenced out of group acme-lake-writer" in err
    assert "group.instance.id 'acme-lake-writer-1'" in err and "Traceback" not in err


def test_a_writer_with_no_partitions_rejoins_then_fails_naming_the_cause(broker, tmp_path):
    """The 11-minute hang: 'No partition metadata', assigned [], forever. Now: one rejoin,
    then a one-line error naming the missing topic."""
    t0 = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "acme_telemetry.local.writer",
            "--bootstrap-servers",
            broker.bootstrap,
            "--lake",
            str(tmp_path / "lake"),
            "--topic",
            "no-such-topic",
            "--assign-timeout",
            "2",
            "--log-file",
            str(tmp_path / "w.log"),
        ],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("lake writer: ")]
    assert line and "has had no partitions of no-such-topic for" in line[0]
    assert f"topic no-such-topic does not exist on {broker.bootstrap}" in line[0]
    assert "rejoining group" in (tmp_path / "w.log").read_text()
    assert time.monotonic() - t0 < 30


def test_a_stop_while_the_simulator_draws_a_large_audience_is_prompt(broker, tmp_path):
    """The simulator draws every live session before its first event (about 0.23 ms each:
    150,000 viewers take ~35 s). A Ctrl-C then has nothing to flush: the producer stops at
    once instead of after the warm-up (or the supervisor's 60 s stop timeout)."""
    state = tmp_path / "state"
    proc = local(
        "--bootstrap-servers",
        broker.bootstrap,
        "--events",
        "1000",
        "--viewers",
        "150000",
        "--no-dashboard",
        *folders(tmp_path / "lake", state),
    )
    log = state / "logs" / "local.log"
    wait_for(lambda: log.exists() and "the producer is ready" in log.read_text(), 120, "the producer to start")
    time.sleep(2)  # well inside the warm-up
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    took = time.monotonic() - t0
    assert took < 10, f"the stop took {took:.0f} s"
    assert proc.returncode == 130, err[-2000:]  # interrupted before the N events were in the lake
    text = log.read_text()
    assert "the producer stopped before it had anything to flush" in text
    assert "did not stop within" not in text
