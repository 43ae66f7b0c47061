"""Every flag value type of the CLI, in one place, so a flag parses the same way in every
command that takes it.

A value type is an argparse `type=` callable bound to its flag's name. A bad value raises
argparse.ArgumentTypeError with a message that starts with the flag ("--port must be a TCP
port 1..65535, got '0'"); acme_telemetry.cli.app prints it as one line and exits 2.

The `add_*` functions declare a flag (name, metavar, value type, default) for a command;
a command passes only what differs (its help text, a required flag, a bound).
"""

from __future__ import annotations

import argparse
import math
from datetime import datetime
from pathlib import Path
from typing import Any, TypeAlias

from acme_telemetry.times import parse_utc

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LAKE = ROOT / ".local" / "lake"
DEFAULT_STATE = ROOT / ".local"
DEFAULT_SEED = 42

# what a command's register(sub) gets: parser.add_subparsers(...)
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class Int:
    """A whole number (`minimum` >= 0) or an integer (no minimum), within the bounds given."""

    def __init__(self, flag: str, minimum: int | None = None, maximum: int | None = None) -> None:
        self.flag, self.minimum, self.maximum = flag, minimum, maximum

    def __call__(self, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            kind = "an integer" if self.minimum is None or self.minimum < 0 else "a whole number"
            raise argparse.ArgumentTypeError(f"{self.flag} must be {kind}, got {text!r}") from None
        if self.minimum is not None and value < self.minimum:
            floor = "zero or more" if self.minimum == 0 else f"at least {self.minimum}"
            raise argparse.ArgumentTypeError(f"{self.flag} must be {floor}, got {value}")
        if self.maximum is not None and value > self.maximum:
            raise argparse.ArgumentTypeError(f"{self.flag} must be at most {self.maximum}, got {value}")
        return value

    def __repr__(self) -> str:  # argparse names the type by repr in a few messages
        return f"Int({self.flag})"


class Port(Int):
    """A TCP port, 1..65535."""

    def __init__(self, flag: str) -> None:
        super().__init__(flag, 1, 65535)

    def __call__(self, text: str) -> int:
        try:
            return super().__call__(text)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(f"{self.flag} must be a TCP port 1..65535, got {text!r}") from None


class Number:
    """A finite decimal number; `above` is an exclusive floor, `minimum`/`maximum` inclusive bounds.
    `unit` and `why` only make the message clearer ("--rate must be > 0 events/s")."""

    def __init__(
        self,
        flag: str,
        *,
        above: float | None = None,
        minimum: float | None = None,
        maximum: float | None = None,
        unit: str = "",
        why: str = "",
    ) -> None:
        self.flag, self.above, self.minimum, self.maximum = flag, above, minimum, maximum
        self.unit, self.why = unit, why

    def _range(self) -> str:
        if self.above is not None:
            bracket, low = "(", f"{self.above:g}"
        elif self.minimum is not None:
            bracket, low = "[", f"{self.minimum:g}"
        else:
            bracket, low = "(", "-inf"
        if self.maximum is not None:
            text = f"in {bracket}{low}, {self.maximum:g}]"
        elif low != "-inf":
            text = f"{'>' if bracket == '(' else '>='} {low}"
        else:
            text = "a number"
        text += f" {self.unit}" if self.unit else ""
        return text + (f" ({self.why})" if self.why else "")

    def __call__(self, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{self.flag} must be a number, got {text!r}") from None
        ok = math.isfinite(value)
        ok = ok and (self.above is None or value > self.above) and (self.minimum is None or value >= self.minimum)
        ok = ok and (self.maximum is None or value <= self.maximum)
        if not ok:
            raise argparse.ArgumentTypeError(f"{self.flag} must be {self._range()}, got {text!r}")
        return value

    def __repr__(self) -> str:
        return f"Number({self.flag})"


class UtcTime:
    """An ISO-8601 time as an aware UTC datetime (acme_telemetry.times.parse_utc: naive means UTC)."""

    def __init__(self, flag: str) -> None:
        self.flag = flag

    def __call__(self, text: str) -> datetime:
        try:
            return parse_utc(text, self.flag)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        except OverflowError:  # a valid time whose UTC falls outside datetime's years 1..9999
            raise argparse.ArgumentTypeError(f"{self.flag} must be a time within the years 1..9999 UTC, got {text!r}") from None

    def __repr__(self) -> str:
        return f"UtcTime({self.flag})"


class Folder:
    """A folder path (it need not exist yet)."""

    def __init__(self, flag: str) -> None:
        self.flag = flag

    def __call__(self, text: str) -> Path:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{self.flag} must be a folder path, got {text!r}")
        return Path(text)

    def __repr__(self) -> str:
        return f"Folder({self.flag})"


class Bootstrap:
    """Kafka bootstrap servers, host:port[,host:port...] (checked by acme_telemetry.kafka)."""

    def __init__(self, flag: str) -> None:
        self.flag = flag

    def __call__(self, text: str) -> str:
        from acme_telemetry.kafka import KafkaConfigError, KafkaSettings  # kafka-python: only when given

        try:
            KafkaSettings.local(text)
        except KafkaConfigError as exc:
            raise argparse.ArgumentTypeError(f"{self.flag}: {exc}") from None
        return text

    def __repr__(self) -> str:
        return f"Bootstrap({self.flag})"


# --- the flags, declared once ------------------------------------------------------------


def add_events(p: argparse.ArgumentParser, *, minimum: int, required: bool = False, help: str) -> None:
    """--events N: a whole number. The floor is the command's (generate 0, local 1)."""
    p.add_argument("--events", type=Int("--events", minimum=minimum), required=required, metavar="N", help=help)


def add_seed(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--seed", type=Int("--seed"), default=DEFAULT_SEED, metavar="S", help=f"simulator seed, an integer (default {DEFAULT_SEED})"
    )


def add_start(p: argparse.ArgumentParser, *, help: str) -> None:
    p.add_argument("--start", type=UtcTime("--start"), metavar="ISO8601", help=help)


def add_viewers(p: argparse.ArgumentParser, *, default_text: str = "200") -> None:
    """--viewers N: the simulator's mean concurrent audience. Not given is None in every
    command (one default for a shared flag); the command says what None means (`default_text`)."""
    p.add_argument(
        "--viewers",
        type=Int("--viewers", minimum=1),
        metavar="N",
        help=f"mean concurrent viewers to simulate (default {default_text})",
    )


class IncidentSpec:
    """An --incident spec ('cdn=fastly,at=+2m,for=3m,kind=outage'), checked as it is parsed
    (simulator.incidents.parse_incident with a provisional origin); the command resolves
    a relative at= against the run's start once it knows it (`incidents`)."""

    def __init__(self, flag: str) -> None:
        self.flag = flag

    def __call__(self, text: str) -> str:
        from acme_telemetry.simulator.incidents import IncidentError, parse_incident

        try:
            parse_incident(text, 0)
        except IncidentError as exc:
            raise argparse.ArgumentTypeError(f"{self.flag}: {exc}") from None
        return text

    def __repr__(self) -> str:
        return f"IncidentSpec({self.flag})"


def add_incident(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--incident",
        type=IncidentSpec("--incident"),
        action="append",
        default=[],
        metavar="SPEC",
        help="degrade one slice for a while, e.g. cdn=fastly,at=+2m,for=3m,kind=outage (slice: cdn=, isp=, state=, device_type= or "
        "connection_type=; at= +90s/+2m relative to the run's start, or a UTC time; kind= outage, rebuffer or "
        "errors); repeatable",
    )


def add_port(p: argparse.ArgumentParser, flag: str = "--port", *, default: int, help: str) -> None:
    p.add_argument(flag, type=Port(flag), default=default, metavar="PORT", help=help)


def add_lake(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lake", type=Folder("--lake"), default=DEFAULT_LAKE, metavar="DIR", help="lake folder (default .local/lake)")


def add_number(p: argparse.ArgumentParser, flag: str, *, metavar: str, help: str, default: Any = None, **bounds: Any) -> None:
    """A decimal flag (--rate, --window, --heartbeat, --buffer-*): see Number for the bounds."""
    p.add_argument(flag, type=Number(flag, **bounds), default=default, metavar=metavar, help=help)
