"""An embedded Apache Kafka broker: the real thing, from Maven Central, in KRaft mode.

The jars come from the repo's pom.xml (`mvn dependency:copy-dependencies`) into
ACME_KAFKA_LIBS (default .cache/kafka/libs). The version is the Apache release on the
same line as the MSK version in acme_telemetry/settings.py (EMBEDDED.local_kafka_release).

One JVM runs broker and controller (combined mode) on 127.0.0.1 with a small heap.
Its data stays in <state_dir>/kafka/ across runs, so a restart resumes from the committed
offsets; the storage is formatted only when it has never been. Broker logs go to
<state_dir>/logs/.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from acme_telemetry.errors import CliError
from acme_telemetry.local.proc import child_env, parent_death_signal
from acme_telemetry.settings import EMBEDDED

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LIBS = ROOT / ".cache" / "kafka" / "libs"
DEFAULT_STATE_DIR = ROOT / ".local"
DEFAULT_PORT = 9092
# Jars that must be there for the broker and the storage tool to start.
_REQUIRED_JARS = ("kafka_2.13-", "kafka-server-", "kafka-storage-", "kafka-clients-", "slf4j-reload4j-")
# The unsecured OAUTHBEARER listener for tests: Kafka's own unsecured-JWS validator.
OAUTH_LISTENER = "OAUTH"
OAUTH_REQUIRED_SCOPE = "acme-telemetry"


class BrokerError(CliError):
    """The broker could not be fetched, started or reached; the message says why."""


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def pick_port(preferred: int | None, *, avoid: Set[int] = frozenset(), tries: int = 50) -> int:
    """`preferred` if free, else the next free port above it (an OS-chosen one if None)."""
    if preferred is None:
        for _ in range(tries):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
            if port not in avoid:
                return port
        raise BrokerError("could not find a free port on 127.0.0.1")
    for port in range(preferred, preferred + tries):
        if port not in avoid and port_free(port):
            return port
    raise BrokerError(f"ports {preferred}..{preferred + tries - 1} on 127.0.0.1 are all taken")


def kafka_release() -> str:
    return EMBEDDED.local_kafka_release


def libs_dir() -> Path:
    return Path(os.environ.get("ACME_KAFKA_LIBS") or DEFAULT_LIBS)


def _libs_complete(libs: Path, release: str) -> bool:
    if not libs.is_dir():
        return False
    names = [p.name for p in libs.glob("*.jar")]
    for prefix in _REQUIRED_JARS:
        if not any(n.startswith(prefix) for n in names):
            return False
    return any(n == f"kafka_2.13-{release}.jar" for n in names)


def ensure_kafka_libs(libs: Path | None = None, release: str | None = None, *, fetch: bool = True) -> Path:
    """The folder of broker jars for `release`, fetched with Maven if missing."""
    libs = libs or libs_dir()
    release = release or kafka_release()
    if _libs_complete(libs, release):
        return libs
    cmd = [
        "mvn",
        "-q",
        "-B",
        "-f",
        str(ROOT / "pom.xml"),
        "dependency:copy-dependencies",
        f"-Dkafka.version={release}",
        f"-DoutputDirectory={libs}",
    ]
    if not fetch:
        raise BrokerError(f"Kafka {release} jars are missing in {libs}; fetch them with: {' '.join(cmd)}")
    log.info("fetching Kafka %s jars with Maven into %s", release, libs)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except FileNotFoundError:
        raise BrokerError(
            f"Kafka {release} jars are missing in {libs} and Maven (mvn) is not installed; install Maven or run scripts/setup"
        ) from None
    if proc.returncode != 0 or not _libs_complete(libs, release):
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        raise BrokerError(f"fetching Kafka {release} with Maven failed: {' | '.join(tail) or 'no output'}")
    return libs


def _new_cluster_id() -> str:
    """A Kafka cluster id: URL-safe base64 of a random UUID, never starting with '-'.

    kafka-storage's argument parser would take a leading '-' for an option (about one id
    in 64), so, like Kafka's own Uuid.randomUuid(), draw again in that case.
    """
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


@dataclass
class BrokerPorts:
    plaintext: int
    controller: int
    oauth: int | None = None


class LocalBroker:
    """A Kafka broker subprocess. Use as a context manager, or start()/stop()."""

    def __init__(
        self,
        state_dir: Path | str = DEFAULT_STATE_DIR,
        *,
        port: int | None = DEFAULT_PORT,
        oauth_listener: bool = False,
        heap: str = "512m",
        libs: Path | None = None,
        release: str | None = None,
        num_partitions: int = 1,
        strict_port: bool = False,
    ):
        self.state_dir = Path(state_dir)
        self.data_dir = self.state_dir / "kafka"
        self.log_dir = self.state_dir / "logs"
        self.preferred_port = port
        self.oauth_listener = oauth_listener
        self.heap = heap
        self.libs = libs
        self.release = release
        self.num_partitions = num_partitions
        self.force_guard = False  # use local.guard even where the parent-death signal exists (tests)
        self.strict_port = strict_port  # a taken `port` is an error instead of a move to the next free one
        self.ports: BrokerPorts | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._stdout: IO[bytes] | None = None
        self._libs: Path = libs or DEFAULT_LIBS

    # --- addresses ----------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        if not self.ports:
            raise BrokerError("the broker is not started")
        return f"127.0.0.1:{self.ports.plaintext}"

    @property
    def oauth_bootstrap(self) -> str:
        if not self.ports or self.ports.oauth is None:
            raise BrokerError("the broker has no OAUTHBEARER listener (oauth_listener=True)")
        return f"127.0.0.1:{self.ports.oauth}"

    # --- files --------------------------------------------------------------------------

    def _choose_ports(self) -> BrokerPorts:
        """Reuse the last run's ports when they are free (stable URLs), else pick new ones."""
        saved = self.data_dir / "ports.json"
        taken: set[int] = set()
        last: dict[str, Any] = {}
        if self.ports is not None:  # a restart of this broker: keep its addresses for its clients
            last = dict(self.ports.__dict__)
        elif saved.exists():
            try:
                last = json.loads(saved.read_text())
            except ValueError:
                last = {}
        want = last.get("plaintext") if self.ports is not None else self.preferred_port
        if want is None:
            want = last.get("plaintext")
        if self.strict_port and self.ports is None and want is not None and not port_free(want):
            raise BrokerError(
                f"--kafka-port {want}: port {want} on 127.0.0.1 is in use; choose another port, "
                f"or leave --kafka-port out to take the next free one from {DEFAULT_PORT}",
                exit_code=1,
            )
        plaintext = pick_port(want)
        if self.preferred_port is not None and plaintext != self.preferred_port:
            log.warning("port %d on 127.0.0.1 is taken; the broker listens on %d instead", self.preferred_port, plaintext)
        taken.add(plaintext)
        controller = pick_port(last.get("controller") or None, avoid=taken)
        taken.add(controller)
        oauth = pick_port(last.get("oauth") or None, avoid=taken) if self.oauth_listener else None
        ports = BrokerPorts(plaintext, controller, oauth)
        saved.write_text(json.dumps(ports.__dict__))
        return ports

    def _properties(self, ports: BrokerPorts) -> str:
        listeners = [f"PLAINTEXT://127.0.0.1:{ports.plaintext}", f"CONTROLLER://127.0.0.1:{ports.controller}"]
        advertised = [f"PLAINTEXT://127.0.0.1:{ports.plaintext}"]
        protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
        lines = [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{ports.controller}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={self.data_dir / 'data'}",
            # One broker: internal topics cannot have more replicas than that.
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=3",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=3",
            "min.insync.replicas=1",
            f"num.partitions={self.num_partitions}",
            # As on MSK: topics are created on purpose, with the configured partitions.
            "auto.create.topics.enable=false",
            "group.initial.rebalance.delay.ms=0",
            "num.network.threads=2",
            "num.io.threads=4",
            "log.segment.bytes=67108864",
            "log.retention.check.interval.ms=300000",
            "message.max.bytes=1048588",
        ]
        if ports.oauth is not None:
            name = OAUTH_LISTENER.lower()
            listeners.append(f"{OAUTH_LISTENER}://127.0.0.1:{ports.oauth}")
            advertised.append(f"{OAUTH_LISTENER}://127.0.0.1:{ports.oauth}")
            protocols.append(f"{OAUTH_LISTENER}:SASL_PLAINTEXT")
            # Kafka's unsecured-JWS validator: checks the token's structure, expiry and
            # scope, everything MSK checks except the AWS signature.
            lines += [
                f"listener.name.{name}.sasl.enabled.mechanisms=OAUTHBEARER",
                f"listener.name.{name}.oauthbearer.sasl.jaas.config="
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
                f'unsecuredLoginStringClaim_sub="broker" unsecuredValidatorRequiredScope="{OAUTH_REQUIRED_SCOPE}";',
                f"listener.name.{name}.oauthbearer.sasl.server.callback.handler.class="
                "org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler",
            ]
        lines += [
            f"listeners={','.join(listeners)}",
            f"advertised.listeners={','.join(advertised)}",
            f"listener.security.protocol.map={','.join(protocols)}",
        ]
        return "\n".join(lines) + "\n"

    def _log4j(self) -> str:
        logfile = self.log_dir / "kafka-server.log"
        return "\n".join(
            [
                "log4j.rootLogger=INFO, file",
                "log4j.appender.file=org.apache.log4j.RollingFileAppender",
                f"log4j.appender.file.File={logfile}",
                "log4j.appender.file.MaxFileSize=20MB",
                "log4j.appender.file.MaxBackupIndex=2",
                "log4j.appender.file.layout=org.apache.log4j.PatternLayout",
                "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n",
                "log4j.logger.kafka=INFO",
                "log4j.logger.org.apache.kafka=INFO",
                "log4j.logger.state.change.logger=WARN",
                "log4j.logger.kafka.controller=WARN",
                "log4j.logger.kafka.log.LogCleaner=WARN",
                "log4j.logger.kafka.request.logger=WARN",
                "",
            ]
        )

    def _java(self, main: str, *args: str, heap: str = "256m") -> list[str]:
        return [
            "java",
            f"-Xmx{heap}",
            "-Xms64m",
            "-XX:+UseSerialGC" if heap != self.heap else "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self.data_dir / 'log4j.properties'}",
            f"-Dkafka.logs.dir={self.log_dir}",
            "-cp",
            f"{self._libs}/*",
            main,
            *args,
        ]

    def _check_stale(self) -> None:
        """A broker still running on this data folder: a live run's, or a crashed run's.

        `local` holds the state folder's lock (local.statedir) before it gets here, so a
        broker found then is a stale one from a crashed run. Without the lock (the broker
        used on its own), a holder named in run.json means a live run.
        """
        from acme_telemetry.local.statedir import holder

        pidfile = self.data_dir / "broker.pid"
        if not pidfile.exists():
            return
        try:
            pid = int(pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (ValueError, OSError):
            pidfile.unlink(missing_ok=True)
            return
        if "kafka.Kafka" not in cmdline or str(self.data_dir) not in cmdline:
            pidfile.unlink(missing_ok=True)
            return
        run = holder(self.state_dir)
        run_pid = run.get("pid")
        if isinstance(run_pid, int) and run_pid != os.getpid() and Path(f"/proc/{run_pid}").exists():
            raise BrokerError(
                f"another run is using this state folder {self.state_dir} (pid {run_pid}, started "
                f"{run.get('started', '?')}) and its Kafka broker (pid {pid}); stop that run first, or use another --state-dir",
                exit_code=1,
            )
        started = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(Path(f"/proc/{pid}").stat().st_mtime))
        raise BrokerError(
            f"a stale Kafka broker from a crashed run is still running on {self.data_dir} (pid {pid}, started about "
            f"{started}); no run holds this state folder, so stop it with: kill {pid}",
            exit_code=1,
        )

    # --- lifecycle ----------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> LocalBroker:
        if self.proc is not None:
            raise BrokerError("the broker is already started")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._libs = ensure_kafka_libs(self.libs, self.release)
        self._check_stale()
        self.ports = self._choose_ports()
        props = self.data_dir / "server.properties"
        props.write_text(self._properties(self.ports))
        (self.data_dir / "log4j.properties").write_text(self._log4j())

        if not (self.data_dir / "data" / "meta.properties").exists():
            self._format(props)

        self._stdout = open(self.log_dir / "kafka-stdout.log", "ab")
        cmd = self._java("kafka.Kafka", str(props), heap=self.heap)
        log.info("starting Kafka broker: %s", " ".join(cmd))
        t0 = time.monotonic()
        # The JVM dies with us, even after kill -9: the parent-death signal on Linux, else a
        # guard process that stops it when its stdin (our pipe) closes (local.proc, local.guard).
        preexec = parent_death_signal(signal.SIGTERM)
        guarded = preexec is None or self.force_guard
        if guarded:
            cmd = [sys.executable, "-m", "acme_telemetry.local.guard", "--", *cmd]
        self.proc = subprocess.Popen(
            cmd,
            stdout=self._stdout,
            stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE if guarded else subprocess.DEVNULL,
            cwd=self.state_dir,
            start_new_session=True,  # Ctrl-C reaches us, not the JVM: we stop it in order
            preexec_fn=preexec,
            env=child_env() if guarded else None,  # noqa: PLW1509 - from the main thread
        )
        (self.data_dir / "broker.pid").write_text(str(self.proc.pid))
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        log.info("Kafka broker ready on %s in %.1f s", self.bootstrap, self.startup_seconds)
        return self

    def _format(self, props: Path) -> None:
        cmd = self._java("kafka.tools.StorageTool", "format", "-t", _new_cluster_id(), "-c", str(props), "--ignore-formatted")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        with open(self.log_dir / "kafka-format.log", "a") as f:
            f.write(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
            raise BrokerError(f"formatting Kafka storage in {self.data_dir} failed: {' | '.join(tail)}")

    def _log_tail(self, n: int = 8) -> str:
        lines: list[str] = []
        for name in ("kafka-stdout.log", "kafka-server.log"):
            p = self.log_dir / name
            if p.exists():
                lines += p.read_text(errors="replace").splitlines()[-n:]
        errors = [ln for ln in lines if "ERROR" in ln or "Exception" in ln] or lines
        return " | ".join(errors[-3:])

    def _wait_ready(self, timeout: float) -> None:
        """Until the broker answers metadata requests and lists itself as a live broker."""
        from kafka.admin import KafkaAdminClient
        from kafka.errors import KafkaError

        proc, ports = self.proc, self.ports
        assert proc is not None and ports is not None, "started"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BrokerError(f"the Kafka broker exited with code {proc.returncode}: {self._log_tail()}")
            if not port_free(ports.plaintext):
                try:
                    admin = KafkaAdminClient(
                        bootstrap_servers=self.bootstrap,
                        request_timeout_ms=5000,
                        bootstrap_timeout_ms=5000,
                        client_id="acme-broker-probe",
                    )
                    try:
                        brokers = admin.describe_cluster().get("brokers") or []
                        if brokers:
                            return
                    finally:
                        admin.close()
                except (KafkaError, OSError) as exc:
                    log.debug("broker not ready yet: %r", exc)
            time.sleep(0.3)
        raise BrokerError(f"the Kafka broker did not become ready within {timeout:.0f} s: {self._log_tail()}")

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (Kafka's orderly shutdown), then SIGKILL after `timeout` seconds."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("the Kafka broker did not stop within %.0f s; killing it", timeout)
                proc.kill()
                proc.wait(10)
        (self.data_dir / "broker.pid").unlink(missing_ok=True)
        if self._stdout:
            self._stdout.close()
            self._stdout = None
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL, for fault tests: no orderly shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None
        (self.data_dir / "broker.pid").unlink(missing_ok=True)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # --- as a service of local.supervisor -------------------------------------------------

    name = "Kafka broker"

    def poll(self) -> str | None:
        """None while the broker runs (or was stopped on purpose); else why it exited."""
        proc = self.proc
        if proc is None or proc.poll() is None:
            return None
        return f"it exited with code {proc.returncode}: {self._log_tail()}"

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        """Stop the JVM (also after a start that failed or was cut short)."""
        self.stop()
