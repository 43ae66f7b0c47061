"""One flag, one type: every command parses a flag the same way, and every bad value is one
line on stderr that names the flag, exit 2 (never a usage dump or a traceback)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acme_telemetry import errors
from acme_telemetry.cli import CliError, app, build_parser, flags, main

ROOT = Path(__file__).resolve().parents[2]

# Each command with the arguments it needs besides the flag under test.
COMMANDS = {
    "generate": ["--events", "5"],
    "validate": ["some-file.jsonl"],
    "local": [],
    "query": ["SELECT 1"],
    "bench": [],
}
BAD = {
    "--events": ["many", "1.5", "-3", ""],
    "--seed": ["abc", "1e3", ""],
    "--port": ["0", "65536", "http", "-1"],
    "--start": ["yesterday", "2026-13-01T00:00:00Z", "", "9999-12-31T23:59:59-01:00"],
}


def _one_error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (argv, out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "usage:" not in err
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("flag, value", [(f, v) for f, values in BAD.items() for v in values])
def test_every_command_rejects_a_bad_flag_value_in_one_line_naming_the_flag(capsys, command, flag, value):
    # generate's own --events is given first; a second, bad one replaces it
    line = _one_error_line(capsys, [command, *COMMANDS[command], f"{flag}={value}"])
    assert line.startswith("acme-telemetry")
    assert flag in line


@pytest.mark.parametrize(
    "argv, message",
    [
        (["generate", "--events", "many"], "generate: error: --events must be a whole number, got 'many'"),
        (["generate", "--events", "-5"], "generate: error: --events must be zero or more, got -5"),
        (["local", "--events", "0"], "local: error: --events must be at least 1, got 0"),
        (["local", "--events", "many"], "local: error: --events must be a whole number, got 'many'"),
        (["generate", "--events", "1", "--seed", "x"], "generate: error: --seed must be an integer, got 'x'"),
        (["local", "--seed", "x"], "local: error: --seed must be an integer, got 'x'"),
        (["local", "--port", "0"], "local: error: --port must be a TCP port 1..65535, got '0'"),
        (["local", "--kafka-port", "70000"], "local: error: --kafka-port must be a TCP port 1..65535, got '70000'"),
        (["local", "--start", "noon"], "local: error: --start must be an ISO-8601 time such as 2026-11-26T15:00:00Z, got 'noon'"),
        (["local", "--rate", "0"], "local: error: --rate must be > 0 events/s, got '0'"),
        (["local", "--rate", "inf"], "local: error: --rate must be > 0 events/s, got 'inf'"),
        (["local", "--window", "-1"], "local: error: --window must be > 0 seconds, got '-1'"),
        (["local", "--buffer-interval", "901"], "local: error: --buffer-interval must be in [0, 900] s (Firehose's range), got '901'"),
        (["local", "--buffer-size-mb", "0"], "local: error: --buffer-size-mb must be in (0, 128] MB (Firehose's range), got '0'"),
        (["local", "--viewers", "0"], "local: error: --viewers must be at least 1, got 0"),
        (["generate", "--events", "1", "--viewers", "0"], "generate: error: --viewers must be at least 1, got 0"),
        (["local", "--bootstrap-servers", "nohost"], "local: error: --bootstrap-servers: bootstrap_servers: 'nohost' is not host:port"),
        (["local", "--events"], "local: error: --events: expected one argument"),
        (["local", "--lake", ""], "local: error: --lake must be a folder path, got ''"),
        (
            ["bench", "--only", "nope"],
            "bench: error: --only: unknown benchmark nope; choose from generator, fanout, pipeline, consumer_fanout",
        ),
    ],
)
def test_bad_values_name_the_flag_and_say_what_is_expected(capsys, argv, message):
    assert _one_error_line(capsys, argv) == f"acme-telemetry {message}"


def test_a_simulator_setting_error_names_its_flag(capsys):
    # the flag parses the number; the simulator owns the range and the error names the flag
    line = _one_error_line(capsys, ["generate", "--events", "1", "--heartbeat", "0"])
    assert line == "acme-telemetry generate: error: --heartbeat: heartbeat_interval_s must be a number in 0.5..3600, got 0.0"
    line = _one_error_line(capsys, ["generate", "--events", "1", "--viewers", "2000000"])
    assert line.startswith("acme-telemetry generate: error: --viewers: concurrent_viewers must be")


def _options(parser: argparse.ArgumentParser) -> dict[str, dict[str, argparse.Action]]:
    """command -> option string -> its action."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: {s: a for a in p._actions for s in a.option_strings if s.startswith("--")} for name, p in sub.choices.items()}


def test_a_flag_shared_by_commands_has_one_type_metavar_and_default():
    by_command = _options(build_parser())
    assert set(by_command) == set(COMMANDS)
    flags_seen: dict[str, list[tuple[str, argparse.Action]]] = {}
    for command, actions in by_command.items():
        for flag, action in actions.items():
            flags_seen.setdefault(flag, []).append((command, action))
    shared = {f: uses for f, uses in flags_seen.items() if len(uses) > 1 and f != "--help"}
    assert {"--events", "--seed", "--start", "--viewers", "--lake"} <= set(shared)
    for flag, uses in shared.items():
        (_, first), *rest = uses
        for command, action in rest:
            assert type(action.type) is type(first.type), (flag, command)
            assert action.metavar == first.metavar, (flag, command)
            if flag != "--events":  # generate requires --events; local's is optional
                assert action.default == first.default, (flag, command)


def _rejection(value_type: flags.Int, text: str) -> str:
    with pytest.raises(argparse.ArgumentTypeError) as exc:
        value_type(text)
    return str(exc.value)


def test_events_is_the_same_whole_number_in_generate_and_local():
    actions = _options(build_parser())
    gen, loc = actions["generate"]["--events"].type, actions["local"]["--events"].type
    assert isinstance(gen, flags.Int) and isinstance(loc, flags.Int)
    for text, value in [("7", 7), ("1000000", 1000000), (" 12 ", 12)]:
        assert gen(text) == loc(text) == value and type(gen(text)) is int
    for text in ["many", "1.5", "1e3", "", "0x10"]:
        assert _rejection(gen, text) == _rejection(loc, text) == f"--events must be a whole number, got {text!r}"
    # only the floor is the command's: generate may print nothing, local needs something to wait for
    assert gen("0") == 0
    with pytest.raises(argparse.ArgumentTypeError, match="at least 1"):
        loc("0")


VALUE_TYPES = [
    flags.Int("--events", minimum=0),
    flags.Int("--seed"),
    flags.Port("--port"),
    flags.Number("--rate", above=0, unit="events/s"),
    flags.Number("--buffer-size-mb", above=0, maximum=128),
    flags.Number("--buffer-interval", minimum=0, maximum=900),
    flags.UtcTime("--start"),
    flags.Folder("--lake"),
    flags.Bootstrap("--bootstrap-servers"),
]


@pytest.mark.parametrize("value_type", VALUE_TYPES, ids=repr)
@given(text=st.text(max_size=30) | st.from_regex(r"-?[0-9]{1,8}(\.[0-9]{0,3})?", fullmatch=True))
def test_a_value_type_parses_or_raises_an_error_naming_its_flag(value_type, text):
    try:
        value_type(text)
    except argparse.ArgumentTypeError as exc:
        message = str(exc)
        assert message.startswith(value_type.flag) and "\n" not in message


def test_parsed_values_are_typed(capsys):
    ns = build_parser().parse_args(
        [
            "local",
            "--events",
            "3",
            "--rate",
            "2.5",
            "--start",
            "2026-12-01T08:00:00+01:00",
            "--port",
            "8123",
            "--lake",
            "x/lake",
            "--bootstrap-servers",
            "127.0.0.1:9092",
        ]
    )
    assert (ns.events, ns.rate, ns.port, ns.seed) == (3, 2.5, 8123, 42)
    assert ns.start.isoformat() == "2026-12-01T07:00:00+00:00"
    assert ns.lake == Path("x/lake") and ns.state_dir == flags.DEFAULT_STATE
    assert ns.bootstrap_servers == "127.0.0.1:9092"
    ns = build_parser().parse_args(["query", "SELECT 1"])
    assert ns.lake == flags.DEFAULT_LAKE == ROOT / ".local" / "lake"


def test_commands_are_wired_by_import_and_help_exits_0(capsys):
    assert [m.__name__.rsplit(".", 1)[1] for m in app.COMMANDS] == list(COMMANDS)
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: acme-telemetry")
    for command in COMMANDS:
        assert command in out
        assert main([command, "--help"]) == 0
        assert capsys.readouterr().out.startswith(f"usage: acme-telemetry {command}")


def test_cli_error_is_one_class_wherever_it_is_imported_from():
    assert errors.CliError is CliError
    from acme_telemetry.local.broker import BrokerError

    assert issubclass(BrokerError, CliError)


def test_help_does_not_import_what_the_commands_drive():
    probe = (
        "import sys, contextlib, io\n"
        "from acme_telemetry.cli import main\n"
        "for argv in (['--help'], ['local', '--help'], ['generate', '--help'], ['bench', '--help']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        assert main(argv) == 0\n"
        "heavy = ('numpy', 'kafka', 'duckdb', 'websockets', 'orjson', 'bench', 'acme_telemetry.simulator',\n"
        "         'acme_telemetry.validate', 'acme_telemetry.local.runner', 'acme_telemetry.local.query')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m in heavy))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_python_m_and_main_print_the_same_one_line_error():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run(
        [sys.executable, "-m", "acme_telemetry", "local", "--port", "http"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2
    assert r.stderr == "python -m acme_telemetry local: error: --port must be a TCP port 1..65535, got 'http'\n"


def test_a_cli_error_from_a_command_is_one_line_with_its_exit_code(capsys, monkeypatch):
    def fails(args: argparse.Namespace) -> int:
        raise CliError("the pipeline stopped:\n  broker gone", exit_code=1)

    from acme_telemetry.cli import validate

    monkeypatch.setattr(validate, "run", fails)
    assert main(["validate", "x"]) == 1
    assert capsys.readouterr().err == "acme-telemetry validate: error: the pipeline stopped: broker gone\n"


def test_local_hands_the_runner_typed_options(monkeypatch):
    from acme_telemetry.local import runner

    seen: list[runner.RunOptions] = []

    def fake_run(opts: runner.RunOptions) -> int:
        seen.append(opts)
        return 0

    monkeypatch.setattr(runner, "run", fake_run)
    argv = [
        "local",
        "--events",
        "500",
        "--rate",
        "250",
        "--seed",
        "9",
        "--start",
        "2026-12-01T08:00:00Z",
        "--viewers",
        "50",
        "--lake",
        "/tmp/l",
        "--state-dir",
        "/tmp/s",
        "--bootstrap-servers",
        "127.0.0.1:19092",
        "--port",
        "8123",
        "--kafka-port",
        "19093",
        "--window",
        "2.5",
        "--buffer-interval",
        "1",
        "--buffer-size-mb",
        "0.5",
        "--no-dashboard",
    ]
    assert main(argv) == 0
    (opts,) = seen
    assert opts == runner.RunOptions(
        events=500,
        rate=250.0,
        seed=9,
        start=datetime(2026, 12, 1, 8, tzinfo=UTC),
        lake=Path("/tmp/l"),
        state_dir=Path("/tmp/s"),
        bootstrap_servers="127.0.0.1:19092",
        port=8123,
        kafka_port=19093,
        window_s=2.5,
        buffer_interval_s=1.0,
        buffer_size_mb=0.5,
        no_dashboard=True,
        concurrent_viewers=50,
    )
    assert main(["local"]) == 0
    defaults = seen[-1]
    assert (defaults.events, defaults.seed, defaults.port, defaults.kafka_port, defaults.lake) == (None, 42, 8000, 9092, flags.DEFAULT_LAKE)
