"""Child processes for the supervisor: each pipeline part in its own interpreter, never an orphan.

A `ChildService` is a supervisor service (enter, poll, exit) whose work runs in
`python -m acme_telemetry.local.child ROLE`. The two ends talk over the child's stdin and
stdout, one JSON object per line:

    supervisor -> child (stdin):   {"cmd": "start", "config": {...}}, then {"cmd": "drain", ...},
                                   {"cmd": "catch_up", ...}, {"cmd": "stop"}
    child -> supervisor (stdout):  {"kind": "ready", ...} once, {"kind": "stats", ...} a few
                                   times a second, {"kind": "error", "error": "..."} on failure

Children never outlive the supervisor, even when it is killed with SIGKILL:
- on Linux each child (and the Kafka JVM) is started with the parent-death signal set to
  SIGTERM (prctl(PR_SET_PDEATHSIG) between fork and exec, see `parent_death_signal`). The
  kernel sends it when the supervisor dies however it dies; a Python child then takes its
  ordinary stop path (flush, commit, close), the JVM its orderly shutdown;
- everywhere (and the only mechanism on macOS, which has no PR_SET_PDEATHSIG) the child's
  stdin is a pipe whose only writer is the supervisor: when the supervisor dies the child
  reads EOF and stops the same way. The JVM does not read a pipe, so on macOS it is started
  under `python -m acme_telemetry.local.guard`, which holds such a pipe and stops the JVM on EOF.

Children run in their own session, so a Ctrl-C in the terminal reaches only the supervisor,
which then stops them in order.

On Linux the children's malloc is mimalloc (`allocator_preload`, LD_PRELOAD of the library
the `cmeel-mimalloc` wheel ships): librdkafka copies every produced record into a buffer
the producer's thread allocates and its broker thread frees, and fetched records go the
other way, a cross-thread pattern glibc's arenas serve slowly. In the pipeline benchmark
the children's CPU per event fell by 0.3-0.5 us (producer) and 0.15-0.3 us (lake writer);
the rate rose from 116.5-116.9k to 121.9-122.5k events/s. ACME_ALLOCATOR=system keeps
glibc's; elsewhere (macOS) the system allocator serves.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib.metadata
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson

from acme_telemetry.local.supervisor import ServiceFailed

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
PARENT_PID_ENV = "ACME_SUPERVISOR_PID"
ROOT = Path(__file__).resolve().parents[2]
ALLOCATOR_ENV = "ACME_ALLOCATOR"
ALLOCATORS = ("mimalloc", "system")
_MIMALLOC = ("cmeel-mimalloc", "cmeel.prefix/lib/libmimalloc.so.3")  # the wheel, and where it puts the library


def _libc_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    prctl: Callable[..., int] = libc.prctl
    return prctl


_PRCTL = _libc_prctl()
HAS_PDEATHSIG = _PRCTL is not None


def parent_death_signal(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A Popen `preexec_fn` that makes the kernel send `sig` to the child when its parent dies.

    None where the kernel has no such thing (macOS): the watchdog pipe is then the only guard.
    Runs in the forked child before exec; the setting survives exec. Note that Linux ties it
    to the parent *thread*, so children are started from the supervisor's main thread.
    """
    prctl = _PRCTL
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), int(sig))

    return preexec


AUTOGROUP = Path("/proc/self/autogroup")


def lower_priority(n: int, autogroup: Path = AUTOGROUP) -> None:
    """Lower this process's CPU priority by `n` (niceness), for the machine's scheduler.

    Each child runs in a session of its own (start_new_session), and Linux with autogroup
    scheduling (kernel.sched_autogroup_enabled, on by default) shares the CPU fairly between
    sessions first: a thread's own niceness only ranks it against threads of its session.
    So the niceness is also written to the session's autogroup (man 7 sched), which any
    process may raise for itself. Where there is no autogroup (macOS; Linux without it)
    os.nice alone ranks the processes."""
    os.nice(n)
    try:
        with open(autogroup, "w") as f:
            f.write(str(min(19, max(-20, n))))
    except FileNotFoundError:
        pass  # no autogroup scheduling here
    except OSError as exc:  # e.g. a kernel that refuses it: the niceness above still holds
        log.warning("could not lower the CPU priority of this process's session (%s): %s", autogroup, exc)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env[PARENT_PID_ENV] = str(os.getpid())
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + path if path else "")
    return env


def allocator_preload(environ: Mapping[str, str] = os.environ, platform: str = sys.platform) -> str | None:
    """The library the children preload as their malloc (module doc), or None for the system's.

    ValueError naming ACME_ALLOCATOR if it is set to anything but mimalloc or system. On
    Linux without the cmeel-mimalloc wheel (it has x86_64 and aarch64 builds only) the
    system allocator serves, and a warning says so."""
    choice = environ.get(ALLOCATOR_ENV, "").strip() or ALLOCATORS[0]
    if choice not in ALLOCATORS:
        raise ValueError(f"{ALLOCATOR_ENV} must be one of {', '.join(ALLOCATORS)}, got {choice!r}")
    if choice == "system" or not platform.startswith("linux"):
        return None
    wheel, member = _MIMALLOC
    try:
        lib = Path(str(importlib.metadata.distribution(wheel).locate_file(member)))
    except importlib.metadata.PackageNotFoundError:
        lib = None
    if lib is None or not lib.is_file():
        log.warning("%s is not installed for this machine: the children use the system allocator", wheel)
        return None
    return str(lib)


def preload_env(env: dict[str, str], library: str | None) -> dict[str, str]:
    """`env` with `library` first in LD_PRELOAD (kept: what was preloaded already)."""
    if library:
        earlier = env.get("LD_PRELOAD", "").strip()
        env["LD_PRELOAD"] = f"{library} {earlier}" if earlier else library
    return env


def malloc_in_use(maps: Path = Path("/proc/self/maps")) -> str:
    """Whether this process has mimalloc mapped (it was preloaded): "mimalloc", else "system"."""
    try:
        return "mimalloc" if "/libmimalloc" in maps.read_text() else "system"
    except OSError:  # no /proc (macOS)
        return "system"


def usage() -> dict[str, float]:
    """This process's CPU seconds (user, system) and peak resident memory (MB)."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    peak_kb = ru.ru_maxrss / 1024 if sys.platform == "darwin" else ru.ru_maxrss  # bytes on macOS
    return {"cpu_user_s": ru.ru_utime, "cpu_sys_s": ru.ru_stime, "peak_rss_mb": peak_kb / 1024}


class ChildService:
    """A supervisor service run as `python -m acme_telemetry.local.child <role>`.

    - `__enter__` starts the child, hands it `config`, and waits for its "ready" (up to
      `start_timeout_s`; then fails, or only warns with `ready_required=False`).
    - `poll()` is the child's reported error, or how it exited unasked.
    - `__exit__` asks it to stop (it flushes, commits and closes), waits `stop_timeout_s`,
      then SIGTERM, then SIGKILL; a child that fails or has to be killed fails the run.
    """

    start_timeout_s = 60.0
    stop_timeout_s = 60.0

    def __init__(
        self,
        name: str,
        role: str,
        config: dict[str, Any],
        *,
        log_dir: Path,
        finishes: bool = False,
        ready_required: bool = True,
        start_timeout_s: float | None = None,
        before_stop: Callable[[], dict[str, Any] | None] | None = None,
        preload: str | None = None,
    ) -> None:
        self.name = name
        self.preload = preload  # a malloc library for the child (allocator_preload), or None
        # Called as the stop begins (the services started after this one have stopped): a
        # message to send the child just before {"cmd": "stop"}, or None.
        self.before_stop = before_stop
        self.role = role
        self.config = config
        self.log_dir = log_dir
        self.finishes = finishes
        self.ready_required = ready_required
        if start_timeout_s is not None:
            self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready = threading.Event()
        self.ready_info: dict[str, Any] = {}
        self.stats: dict[str, Any] = {}
        self.usage: dict[str, float] = {}
        self.error: str | None = None
        self.stopping = False
        self._reader: threading.Thread | None = None
        self._stderr: IO[bytes] | None = None
        self._stdin_lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    # --- the channel ----------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        proc = self.proc
        if proc is None or proc.stdin is None:
            return
        with self._stdin_lock, contextlib.suppress(OSError, ValueError):  # it has exited: poll() says why
            proc.stdin.write(orjson.dumps(message, option=orjson.OPT_NON_STR_KEYS) + b"\n")
            proc.stdin.flush()

    def _read(self, stdout: IO[bytes]) -> None:
        for line in stdout:
            try:
                msg = orjson.loads(line)
            except orjson.JSONDecodeError:
                log.warning("%s: %r", self.name, line[:200])
                continue
            kind = msg.get("kind")
            if kind == "stats":
                self.stats = msg.get("stats") or {}
                self.usage = msg.get("usage") or self.usage
            elif kind == "ready":
                self.ready_info = msg
                self.ready.set()
            elif kind == "error":
                self.error = str(msg.get("error") or "unknown error")

    def _stderr_path(self) -> Path:
        return self.log_dir / f"{self.role}.stderr.log"

    def _stderr_tail(self) -> str:
        try:
            lines = [ln for ln in self._stderr_path().read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return ""
        return " | ".join(lines[-3:])

    # --- the service ----------------------------------------------------------------------

    def __enter__(self) -> ChildService:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._stderr = open(self._stderr_path(), "ab")
        cmd = [sys.executable, "-m", "acme_telemetry.local.child", self.role]
        log.info("starting the %s: %s", self.name, " ".join(cmd))
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=ROOT,
            env=preload_env(child_env(), self.preload),
            start_new_session=True,
            preexec_fn=parent_death_signal(signal.SIGTERM),  # noqa: PLW1509 - main thread only
        )
        assert self.proc.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), name=f"{self.role}-channel", daemon=True)
        self._reader.start()
        self.send({"cmd": "start", "config": self.config})
        deadline = time.monotonic() + self.start_timeout_s
        while not self.ready.wait(0.05):
            failure = self.poll()
            if failure is not None:
                raise ServiceFailed(self.name, failure, starting=True)
            if time.monotonic() >= deadline:
                if self.ready_required:
                    raise ServiceFailed(self.name, f"not ready within {self.start_timeout_s:.0f} s", starting=True)
                log.warning("the %s is not ready after %.0f s; going on", self.name, self.start_timeout_s)
                break
        log.info("the %s is ready (pid %d)", self.name, self.proc.pid)
        return self

    def poll(self) -> str | None:
        if self.error is not None:
            return self.error
        proc = self.proc
        if proc is None:
            return None
        rc = proc.poll()
        if rc is None:
            return None
        if self._reader is not None:
            self._reader.join(2)  # its last lines (an error, the final stats) first
            if self.error is not None:
                return self.error
        if rc != 0:
            how = f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exited with code {rc}"
            tail = self._stderr_tail()
            return f"it {how}" + (f": {tail}" if tail else "")
        if not self.stopping and not self.finishes:
            return "it stopped unexpectedly"
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stopping = True
        proc = self.proc
        if proc is None:
            return
        try:
            if proc.poll() is None:
                last = self.before_stop() if self.before_stop is not None else None
                if last is not None:
                    self.send(last)
                self.send({"cmd": "stop"})
                try:
                    proc.wait(self.stop_timeout_s)
                except subprocess.TimeoutExpired:
                    log.error("the %s did not stop within %.0f s; sending SIGTERM", self.name, self.stop_timeout_s)
                    self.error = self.error or f"it did not stop within {self.stop_timeout_s:.0f} s"
                    proc.terminate()
                    try:
                        proc.wait(10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(10)
            if self._reader is not None:
                self._reader.join(5)
        finally:
            with contextlib.suppress(OSError, ValueError):
                if proc.stdin is not None:
                    proc.stdin.close()
            if self._stderr is not None:
                self._stderr.close()
                self._stderr = None
