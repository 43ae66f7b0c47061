"""One supervisor for the local runtime: services in one ExitStack, one poll loop, one stop path.

The shape of `dagster dev`. A *service* is a context manager with a `name` and a `poll()`:

- `__enter__` starts it and returns once it is usable. If it cannot start it raises, with
  a message that says why (a CliError, or anything else, which `Supervisor.start` turns
  into a ServiceFailed naming the service).
- `poll()` returns None while the service is healthy (or has finished its work), and
  its error, one line, once it has failed.
- `__exit__` stops it in order: flush, commit, close. The supervisor registers a service's
  `__exit__` *before* entering it, so `__exit__` also runs after a start that failed or
  was interrupted half-way, and must cope with a partial start.

    with Supervisor() as sup:                 # SIGINT, SIGTERM, SIGHUP -> one stop flag
        broker = sup.start(LocalBroker(...))  # entered in order
        writer = sup.start(WriterService(...))
        sup.watch(done=..., status=...)       # the one loop: status line, health, the end
    sup.outcome                               # leaving the block stopped them all, newest first

The loop ends on the first of: `done()` (e.g. all N events durable), a stop request (a
signal, or a closed stdout/stderr), or a failed service. However it ends, and however
the start-up ends, leaving the `with` block is the only stop path. A service that fails
while it stops (its last flush, say) fails the run too: `outcome` is read after the block.

During start-up a signal also raises StopRequested, so a slow start (the broker's) is cut
short; once the loop runs, a signal only sets the flag, so no stop step is interrupted.

Services run as threads here (ThreadService); a service that is a child process only needs
the same three methods.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import IO, Literal, Protocol, TypeVar

from acme_telemetry.errors import CliError

log = logging.getLogger(__name__)

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
OUTPUT_CLOSED = "output closed"


def one_line(error: BaseException | str) -> str:
    """An error as one line: `repr` of an exception (type and message), newlines folded."""
    text = error if isinstance(error, str) else repr(error)
    return " | ".join(part.strip() for part in text.strip().splitlines() if part.strip()) or "unknown error"


class Service(Protocol):
    """What the supervisor needs of a service (see the module doc)."""

    name: str

    def __enter__(self) -> object: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> bool | None: ...

    def poll(self) -> str | None: ...


S = TypeVar("S", bound=Service)


class ServiceFailed(CliError):
    """A service could not start, or failed: the run fails with this one line."""

    def __init__(self, service: str, error: BaseException | str, *, starting: bool = False) -> None:
        self.service = service
        self.error = one_line(error)
        super().__init__(f"the {service} {'could not start' if starting else 'failed'}: {self.error}", exit_code=1)


class StopRequested(BaseException):
    """Raised by a stop signal during start-up, to cut a slow start short.

    A BaseException, like KeyboardInterrupt, so that `except Exception` in client
    libraries does not swallow it. The supervisor suppresses it once everything is stopped.
    """


class StopFlag:
    """One stop flag for the whole run; the first reason given is the one kept."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None
        self.signum: int | None = None

    def request(self, reason: str, signum: int | None = None) -> None:
        if self.reason is None:
            self.reason, self.signum = reason, signum
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)


@dataclass(frozen=True)
class Outcome:
    """How a supervised run ended.

    kind: "done" (the work is finished), "stopped" (a stop request: `reason` is the signal
    name or OUTPUT_CLOSED, `signum` the signal number), or "failed" (`service` failed
    with the error in `reason`).
    """

    kind: Literal["done", "stopped", "failed"]
    reason: str
    service: str | None = None
    signum: int | None = None


class Console:
    """What a run prints: lines on stdout or stderr, and the status line on stderr.

    On a terminal the status line is redrawn in place; otherwise it is printed every
    `plain_every_s` seconds. Every status line also goes to the log.

    A stream that cannot be written (BrokenPipeError after `| tee` ends, EIO after the
    terminal closed) is not an error: it is pointed at /dev/null, so later writes and the
    interpreter's last flush cannot raise either, and `on_closed` is called once, so
    the run takes its ordinary stop path.
    """

    def __init__(self, *, stdout: IO[str] | None = None, stderr: IO[str] | None = None, plain_every_s: float = 10.0) -> None:
        self._stdout = stdout
        self._stderr = stderr
        self.plain_every_s = plain_every_s
        self.on_closed: Callable[[], None] | None = None
        self.closed = False
        self._dead: set[int] = set()
        self._status_shown = False
        self._last_plain: float | None = None

    @property
    def stdout(self) -> IO[str]:
        return self._stdout if self._stdout is not None else sys.stdout

    @property
    def stderr(self) -> IO[str]:
        return self._stderr if self._stderr is not None else sys.stderr

    def say(self, line: str, *, stdout: bool = False) -> None:
        """One line, on stderr (or stdout: what other programs read, such as the URL)."""
        if stdout:
            self._write(self.stdout, line + "\n")
        else:
            self._clear_status()
            self._write(self.stderr, line + "\n")

    def status(self, line: str) -> None:
        log.info("status: %s", line)
        stream = self.stderr
        if self._isatty(stream):
            self._status_shown = self._write(stream, "\r\x1b[2K" + line)
        elif self._last_plain is None or time.monotonic() - self._last_plain >= self.plain_every_s:
            self._last_plain = time.monotonic()
            self._write(stream, line + "\n")

    def final(self, line: str) -> None:
        """The last status line, kept on screen."""
        log.info("status: %s", line)
        self.say(line)

    def _clear_status(self) -> None:
        if self._status_shown:
            self._status_shown = False
            self._write(self.stderr, "\r\x1b[2K")

    @staticmethod
    def _isatty(stream: IO[str]) -> bool:
        try:
            return stream.isatty()
        except (OSError, ValueError):
            return False

    def _write(self, stream: IO[str], text: str) -> bool:
        if id(stream) in self._dead:
            return False
        try:
            stream.write(text)
            stream.flush()
            return True
        except (OSError, ValueError) as exc:  # ValueError: the stream object itself was closed
            self._lost(stream, exc)
            return False

    def _lost(self, stream: IO[str], exc: BaseException) -> None:
        self._dead.add(id(stream))
        log.warning("%s is closed (%r): stopping", getattr(stream, "name", "an output stream"), exc)
        with contextlib.suppress(OSError, ValueError, AttributeError):
            fd = stream.fileno()
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
        if not self.closed:
            self.closed = True
            if self.on_closed is not None:
                self.on_closed()


class Supervisor:
    """Services entered in order into one ExitStack; one loop watches them; leaving stops them.

    `outcome` is set by `watch()`, by a start-up cut short by a signal, and, after the
    block, by a service that failed while stopping.
    """

    def __init__(
        self,
        *,
        console: Console | None = None,
        poll_s: float = 0.2,
        signals: Sequence[signal.Signals] = STOP_SIGNALS,
    ) -> None:
        self.stop = StopFlag()
        self.console = console if console is not None else Console()
        self.console.on_closed = lambda: self.stop.request(OUTPUT_CLOSED)
        self.poll_s = poll_s
        self.signals = tuple(signals)
        self.services: list[Service] = []
        self.outcome: Outcome | None = None
        self._stack = contextlib.ExitStack()
        self._phase: Literal["idle", "starting", "running", "stopping", "stopped"] = "idle"
        self._saved_handlers: dict[signal.Signals, object] = {}

    # --- start-up ------------------------------------------------------------------------

    def __enter__(self) -> Supervisor:
        self._install_signals()
        self._phase = "starting"
        return self

    def start(self, service: S) -> S:
        """Enter `service` (after the ones started before it); it is stopped when the block ends."""
        if self._phase != "starting":
            raise RuntimeError(f"start {service.name!r} inside the with block, before watch()")
        self._stack.push(self._stopper(service))  # its exit first: a failed or interrupted start is stopped too
        self.services.append(service)
        log.info("starting the %s", service.name)
        try:
            service.__enter__()
        except CliError:
            raise
        except Exception as exc:
            log.exception("the %s could not start", service.name)
            raise ServiceFailed(service.name, exc, starting=True) from exc
        return service

    @staticmethod
    def _stopper(service: Service) -> Callable[[type[BaseException] | None, BaseException | None, TracebackType | None], bool | None]:
        def stop(exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> bool | None:
            t0 = time.monotonic()
            try:
                return service.__exit__(exc_type, exc, tb)
            finally:
                log.info("stopped the %s in %.1f s", service.name, time.monotonic() - t0)

        return stop

    # --- the loop ------------------------------------------------------------------------

    def watch(
        self,
        *,
        done: Callable[[], bool] = lambda: False,
        tick: Callable[[], None] = lambda: None,
        status: Callable[[], str] | None = None,
        status_every_s: float = 1.0,
    ) -> Outcome:
        """Poll every service, call `tick`, show `status()`, until done, stopped or failed."""
        self._phase = "running"
        next_status = time.monotonic()
        while True:
            for service in self.services:
                error = service.poll()
                if error is not None:
                    log.error("the %s failed: %s", service.name, error)
                    return self._end(Outcome("failed", error, service.name))
            tick()
            if done():
                return self._end(Outcome("done", "done"))
            if self.stop.is_set():
                return self._end(Outcome("stopped", self.stop.reason or "stop", signum=self.stop.signum))
            if status is not None and time.monotonic() >= next_status:
                self.console.status(status())  # a closed output requests the stop: seen next round
                next_status = time.monotonic() + status_every_s
            self.stop.wait(self.poll_s)

    def _end(self, outcome: Outcome) -> Outcome:
        self._phase = "stopping"
        self.outcome = outcome
        log.info("run ends: %s", outcome)
        return outcome

    # --- the one stop path ---------------------------------------------------------------

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> bool:
        self._phase = "stopping"
        if self.outcome is None:
            if isinstance(exc, StopRequested) or exc is None:
                self.outcome = Outcome("stopped", self.stop.reason or "stop", signum=self.stop.signum)
            elif isinstance(exc, ServiceFailed):
                self.outcome = Outcome("failed", exc.error, exc.service)
        try:
            log.info("stopping %s", ", ".join(s.name for s in reversed(self.services)) or "nothing")
            suppressed = bool(self._stack.__exit__(exc_type, exc, tb))
        finally:
            self._restore_signals()
            self._phase = "stopped"
        if self.outcome is not None and self.outcome.kind != "failed":
            for service in reversed(self.services):  # a failure while stopping fails the run
                error = service.poll()
                if error is not None:
                    log.error("the %s failed while stopping: %s", service.name, error)
                    self.outcome = Outcome("failed", error, service.name)
                    break
        return suppressed or isinstance(exc, StopRequested)

    # --- signals -------------------------------------------------------------------------

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set handlers; the caller then stops us by hand
        for sig in self.signals:
            self._saved_handlers[sig] = signal.signal(sig, self._on_signal)

    def _restore_signals(self) -> None:
        for sig, handler in self._saved_handlers.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]  # what signal.signal returned
        self._saved_handlers.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.stop.is_set():
            log.info("%s: already stopping", name)
        else:
            log.info("%s: stopping", name)
        self.stop.request(name, signum)
        if self._phase == "starting":
            raise StopRequested(name)


class ThreadService:
    """A service whose work runs in one thread: `run(stop)` until the stop event is set.

    - `__enter__` starts the thread and, if `ready` is given, waits for it: up to
      `start_timeout_s`, then fails (or only warns, with `ready_required=False`).
    - `poll()` reports the exception the thread died of, or that it ended while nobody
      asked it to (unless `finishes`: its work may end by itself).
    - `__exit__` sets the stop event and joins the thread; one that does not end within
      `stop_timeout_s` is reported as failed.
    """

    name = "service"
    thread_name = "service"
    finishes = False
    start_timeout_s = 30.0
    stop_timeout_s = 60.0
    ready_required = True

    def __init__(self, ready: threading.Event | None = None) -> None:
        self.ready = ready
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def run(self, stop: threading.Event) -> None:
        raise NotImplementedError

    def _main(self) -> None:
        try:
            self.run(self.stopping)
        except BaseException as exc:  # noqa: BLE001 - reported by poll(), which fails the run
            self.error = exc
            log.error("the %s failed", self.name, exc_info=exc)
        else:
            log.info("the %s stopped", self.name)

    def __enter__(self) -> ThreadService:
        self._thread = threading.Thread(target=self._main, name=self.thread_name, daemon=True)
        self._thread.start()
        if self.ready is not None:
            self._await_ready(self.ready, self._thread)
        return self

    def _await_ready(self, ready: threading.Event, thread: threading.Thread) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while not ready.wait(0.05):
            if self.error is not None:
                raise ServiceFailed(self.name, self.error, starting=True)
            if not thread.is_alive():
                raise ServiceFailed(self.name, "it stopped before it was ready", starting=True)
            if time.monotonic() >= deadline:
                if self.ready_required:
                    raise ServiceFailed(self.name, f"not ready within {self.start_timeout_s:.0f} s", starting=True)
                log.warning("the %s is not ready after %.0f s; going on", self.name, self.start_timeout_s)
                return

    def poll(self) -> str | None:
        if self.error is not None:
            return one_line(self.error)
        thread = self._thread
        if thread is not None and not thread.is_alive() and not self.stopping.is_set() and not self.finishes:
            return "it stopped unexpectedly"
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stopping.set()
        thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join(self.stop_timeout_s)
            if thread.is_alive() and self.error is None:
                self.error = TimeoutError(f"it did not stop within {self.stop_timeout_s:g} s")
                log.error("the %s did not stop within %g s", self.name, self.stop_timeout_s)
