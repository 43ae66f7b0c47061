"""One run per state folder: a lock held for the whole run, with who holds it.

`StateLock` is the first service of a `local` run. It takes an exclusive flock on
<state_dir>/run.lock and writes <state_dir>/run.json (pid, start time). A second run on the
same folder finds the lock taken and fails with "another run is using this state folder
(pid P, started T)". The kernel drops the lock when the holder dies, however it dies, so a
crashed run never blocks the next one; what a crash can leave is a broker, which
local.broker then reports as "a stale broker from a crashed run" (the lock being ours
tells the two cases apart).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from acme_telemetry.errors import CliError

log = logging.getLogger(__name__)


class StateFolderBusy(CliError):
    """Another live run holds the state folder."""


def holder(state_dir: Path) -> dict[str, Any]:
    """What run.json says about the run holding the folder ({} if nothing readable)."""
    try:
        data = json.loads((Path(state_dir) / "run.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class StateLock:
    name = "state folder lock"

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self._fh: IO[str] | None = None

    def __enter__(self) -> StateLock:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fh = open(self.state_dir / "run.lock", "a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            info = holder(self.state_dir)
            who = f"pid {info.get('pid', '?')}, started {info.get('started', '?')}"
            raise StateFolderBusy(
                f"another run is using this state folder {self.state_dir} ({who}); stop it first, or give this run its own --state-dir",
                exit_code=1,
            ) from None
        self._fh = fh
        (self.state_dir / "run.json").write_text(json.dumps({"pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}))
        log.info("state folder %s is this run's (pid %d)", self.state_dir, os.getpid())
        return self

    def poll(self) -> str | None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        fh, self._fh = self._fh, None
        if fh is None:
            return
        with contextlib.suppress(OSError):
            (self.state_dir / "run.json").unlink()
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()
