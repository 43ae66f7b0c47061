"""The local supervisor with fake services (no broker): one loop, one stop path, reverse order."""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from acme_telemetry.errors import CliError
from acme_telemetry.local.runner import LocalPipeline, RunOptions
from acme_telemetry.local.supervisor import (
    OUTPUT_CLOSED,
    Console,
    Outcome,
    ServiceFailed,
    Supervisor,
    ThreadService,
)


class Fake:
    """A service that records its enter and exit in a shared journal."""

    def __init__(
        self,
        name: str,
        journal: list[str],
        *,
        fail_after_polls: int | None = None,
        enter_error: Exception | None = None,
        enter_blocks: threading.Event | None = None,
        exit_error: str | None = None,
    ) -> None:
        self.name = name
        self.journal = journal
        self.fail_after_polls = fail_after_polls
        self.enter_error = enter_error
        self.enter_blocks = enter_blocks
        self.exit_error = exit_error
        self.error: str | None = None
        self.polls = 0

    def __enter__(self) -> Fake:
        self.journal.append(f"enter {self.name}")
        if self.enter_blocks is not None:
            self.enter_blocks.wait(10)  # a slow start, like the broker's
        if self.enter_error is not None:
            raise self.enter_error
        return self

    def poll(self) -> str | None:
        self.polls += 1
        if self.fail_after_polls is not None and self.polls >= self.fail_after_polls:
            self.error = f"{self.name} broke"
        return self.error

    def __exit__(self, *exc: object) -> None:
        self.journal.append(f"exit {self.name}")
        if self.exit_error is not None:
            self.error = self.exit_error


def _quiet() -> Console:
    return Console(stdout=io.StringIO(), stderr=io.StringIO())


def test_a_failing_service_fails_the_run_with_its_error_and_all_exit_in_reverse_order():
    journal: list[str] = []
    with Supervisor(console=_quiet(), poll_s=0.01) as sup:
        for name, fail in (("broker", None), ("writer", 3), ("producer", None)):
            sup.start(Fake(name, journal, fail_after_polls=fail))
        outcome = sup.watch(status=lambda: "status")
        journal.append("loop ended")
    assert outcome == Outcome("failed", "writer broke", "writer")
    assert sup.outcome == outcome
    assert journal == ["enter broker", "enter writer", "enter producer", "loop ended", "exit producer", "exit writer", "exit broker"]


def test_the_run_fails_with_the_service_error_in_one_line(tmp_path: Path):
    pipeline = LocalPipeline(RunOptions(events=10, state_dir=tmp_path), _quiet())
    with pytest.raises(CliError) as err:
        pipeline.exit_code(Outcome("failed", "KafkaTimeoutError('no broker')", "lake writer"), tmp_path / "local.log")
    assert err.value.exit_code == 1
    assert str(err.value) == (
        f"the pipeline stopped: the lake writer failed: KafkaTimeoutError('no broker') (see {tmp_path / 'local.log'})"
    )
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_exits_all_in_reverse_order_and_restores_the_handlers(sig: signal.Signals):
    journal: list[str] = []
    before = signal.getsignal(sig)
    with Supervisor(console=_quiet(), poll_s=0.01) as sup:
        for name in ("broker", "server", "feed", "writer", "producer"):
            sup.start(Fake(name, journal))
        threading.Timer(0.2, os.kill, (os.getpid(), sig)).start()
        outcome = sup.watch(status=lambda: "status")
    assert outcome == Outcome("stopped", sig.name, signum=sig)
    assert journal[5:] == ["exit producer", "exit writer", "exit feed", "exit server", "exit broker"]
    assert signal.getsignal(sig) is before


def test_a_signal_during_start_up_cuts_it_short_and_stops_what_had_started():
    journal: list[str] = []
    slow = threading.Event()
    threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
    with Supervisor(console=_quiet(), poll_s=0.01) as sup:
        sup.start(Fake("broker", journal))
        sup.start(Fake("server", journal, enter_blocks=slow))  # interrupted in __enter__
        sup.start(Fake("producer", journal))
        journal.append("never reached")
    assert sup.outcome == Outcome("stopped", "SIGTERM", signum=signal.SIGTERM)
    # the interrupted service is stopped too: its exit was registered before its enter
    assert journal == ["enter broker", "enter server", "exit server", "exit broker"]


class BrokenPipe(io.StringIO):
    """stderr after `| tee` went away."""

    def write(self, s: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_broken_pipe_on_the_status_line_takes_the_same_orderly_stop():
    journal: list[str] = []
    console = Console(stdout=io.StringIO(), stderr=BrokenPipe())
    with Supervisor(console=console, poll_s=0.01) as sup:
        for name in ("broker", "writer", "producer"):
            sup.start(Fake(name, journal))
        outcome = sup.watch(status=lambda: "produced 10")
    assert outcome == Outcome("stopped", OUTPUT_CLOSED)
    assert journal[3:] == ["exit producer", "exit writer", "exit broker"]
    assert console.closed
    console.final("produced 10")  # later writes are silent, not errors
    console.say("interrupted: ...")


def test_a_closed_pipe_is_pointed_at_dev_null_so_later_writes_cannot_fail():
    r, w = os.pipe()
    os.close(r)
    stream = os.fdopen(w, "w")
    closed: list[bool] = []
    console = Console(stdout=io.StringIO(), stderr=stream)
    console.on_closed = lambda: closed.append(True)
    try:
        console.status("produced 1")  # EPIPE: Python ignores SIGPIPE
        assert closed == [True] and console.closed
        stream.write("the interpreter's last flush\n")
        stream.flush()  # now /dev/null: no BrokenPipeError at exit
    finally:
        stream.close()


def test_a_service_that_cannot_start_fails_with_a_clear_error_and_the_started_ones_stop():
    journal: list[str] = []
    with pytest.raises(ServiceFailed) as err, Supervisor(console=_quiet()) as sup:
        sup.start(Fake("Kafka broker", journal))
        sup.start(Fake("dashboard server", journal, enter_error=OSError(98, "Address already in use")))
        sup.start(Fake("producer", journal))
    assert str(err.value) == "the dashboard server could not start: OSError(98, 'Address already in use')"
    assert err.value.exit_code == 1
    assert journal == ["enter Kafka broker", "enter dashboard server", "exit dashboard server", "exit Kafka broker"]
    assert sup.outcome == Outcome("failed", "OSError(98, 'Address already in use')", "dashboard server")


def test_a_service_that_fails_while_it_stops_fails_the_run():
    journal: list[str] = []
    with Supervisor(console=_quiet(), poll_s=0.01) as sup:
        sup.start(Fake("broker", journal))
        sup.start(Fake("writer", journal, exit_error="commit failed"))
        assert sup.watch(done=lambda: True).kind == "done"
    assert sup.outcome == Outcome("failed", "commit failed", "writer")
    assert journal[2:] == ["exit writer", "exit broker"]


def test_done_ends_the_loop_after_tick_and_shows_the_status_line():
    journal: list[str] = []
    ticks: list[int] = []
    err = io.StringIO()
    with Supervisor(console=Console(stdout=io.StringIO(), stderr=err), poll_s=0.01) as sup:
        sup.start(Fake("producer", journal))
        outcome = sup.watch(done=lambda: len(ticks) >= 3, tick=lambda: ticks.append(1), status=lambda: f"ticks {len(ticks)}")
    assert outcome == Outcome("done", "done")
    assert ticks == [1, 1, 1]
    assert err.getvalue() == "ticks 1\n"  # not a terminal: the first line, then one every 10 s


# --- ThreadService --------------------------------------------------------------------------


class Crashes(ThreadService):
    name = "lake writer"

    def run(self, stop: threading.Event) -> None:
        time.sleep(0.05)
        raise RuntimeError("disk full")


class Returns(ThreadService):
    name = "dashboard feed"

    def run(self, stop: threading.Event) -> None:
        return


class Ignores(ThreadService):
    name = "producer"
    stop_timeout_s = 0.2

    def run(self, stop: threading.Event) -> None:
        time.sleep(1.0)


class Ready(ThreadService):
    name = "dashboard server"

    def __init__(self) -> None:
        super().__init__(ready=threading.Event())
        self.stopped_in_order = False

    def run(self, stop: threading.Event) -> None:
        assert self.ready is not None
        self.ready.set()
        stop.wait(10)
        self.stopped_in_order = True


def _until(cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_thread_service_reports_the_exception_its_thread_died_of():
    with Crashes() as svc:
        _until(lambda: svc.poll() is not None)
        assert svc.poll() == "RuntimeError('disk full')"


def test_a_thread_that_ends_unasked_is_a_failure_unless_its_work_may_finish():
    with Returns() as svc:
        _until(lambda: svc.poll() is not None)
        assert svc.poll() == "it stopped unexpectedly"
    finishing = Returns()
    finishing.finishes = True
    with finishing as svc:
        time.sleep(0.05)
        assert svc.poll() is None


def test_a_thread_that_does_not_stop_in_time_is_reported():
    with Ignores() as svc:
        assert svc.poll() is None
    assert svc.poll() == "TimeoutError('it did not stop within 0.2 s')"


def test_a_thread_service_waits_until_ready_and_stops_on_exit():
    with Ready() as svc:
        assert svc.ready is not None and svc.ready.is_set()
        assert svc.poll() is None
    assert svc.stopped_in_order and svc.poll() is None


def test_supervised_thread_services_stop_in_reverse_order():
    journal: list[str] = []

    class Named(ThreadService):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

        def run(self, stop: threading.Event) -> None:
            stop.wait(10)
            journal.append(f"{self.name} stopped")

    with Supervisor(console=_quiet(), poll_s=0.01) as sup:
        for name in ("writer", "producer"):
            sup.start(Named(name))
        threading.Timer(0.1, sup.stop.request, ("test",)).start()
        assert sup.watch().reason == "test"
    assert journal == ["producer stopped", "writer stopped"]
