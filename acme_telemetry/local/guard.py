"""`python -m acme_telemetry.local.guard -- CMD...`: run CMD, and stop it when our stdin closes.

For a child that cannot watch its parent itself (the Kafka JVM) where the kernel has no
parent-death signal (macOS). The supervisor holds the only write end of our stdin; when the
supervisor dies, however it dies, the read here ends, and CMD gets SIGTERM (its orderly
shutdown), then SIGKILL after GRACE_S. A SIGTERM or SIGINT to the guard is passed on the
same way, so stopping the guard stops CMD. The exit code is CMD's.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

GRACE_S = 30.0


def _kill_if_running(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.kill()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        print("usage: python -m acme_telemetry.local.guard -- CMD [ARG...]", file=sys.stderr)
        return 2
    child = subprocess.Popen(args, stdin=subprocess.DEVNULL)
    stopping = threading.Event()

    def stop(*_: object) -> None:
        if stopping.is_set():
            return
        stopping.set()
        if child.poll() is None:
            child.terminate()
            threading.Timer(GRACE_S, _kill_if_running, (child,)).start()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)

    def watch_stdin() -> None:
        while sys.stdin.buffer.read(4096):
            pass
        stop()  # EOF: the supervisor is gone

    threading.Thread(target=watch_stdin, daemon=True).start()
    code = child.wait()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
