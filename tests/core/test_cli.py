"""generate and validate from the command line: byte-identical output, one-line errors."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "acme_telemetry", *args], cwd=ROOT, env=env, input=stdin, capture_output=True, timeout=120)


def test_generate_is_byte_identical_and_validates(tmp_path: Path):
    a = run("generate", "--events", "3000", "--seed", "7", "--start", "2026-12-01T08:00:00Z")
    b = run("generate", "--events", "3000", "--seed", "7", "--start", "2026-12-01T08:00:00Z")
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout
    lines = a.stdout.split(b"\n")
    assert len(lines) == 3001 and lines[-1] == b""
    assert b'"event_timestamp":"2026-12-01T08:00:' in lines[0]
    out = tmp_path / "events.jsonl.gz"
    out.write_bytes(gzip.compress(a.stdout))
    v = run("validate", str(out))
    assert v.returncode == 0, v.stdout[-2000:]
    assert b"3000 events" in v.stderr and b"0 violations" in v.stderr


def test_validate_reports_each_violation_and_exits_1(tmp_path: Path):
    good = run("generate", "--events", "50", "--seed", "1").stdout.split(b"\n")
    bad = good[7].replace(b'"country":"US"', b'"country":"CA"')
    f = tmp_path / "bad.jsonl"
    f.write_bytes(b"\n".join(good[:7] + [bad] + good[8:]) + b"not json\n")
    v = run("validate", str(f))
    assert v.returncode == 1
    out = v.stdout.decode().splitlines()
    assert any(":8: [geo]" in line and "event_id=" in line for line in out)
    assert any(":51: [json]" in line for line in out)


@pytest.mark.parametrize(
    "args, message",
    [
        (["generate", "--events", "-5"], "--events must be zero or more"),
        (["generate", "--events", "many"], "--events must be a whole number"),
        (["generate", "--events", "5", "--seed", "abc"], "--seed must be an integer"),
        (["generate", "--events", "5", "--start", "yesterday"], "--start must be an ISO-8601 time"),
        (["generate", "--events", "5", "--heartbeat", "0"], "heartbeat_interval_s"),
        (["generate", "--events", "5", "--frobnicate"], "unrecognized arguments"),
        (["validate", "/no/such/file.jsonl"], "no such file"),
        (["validate"], "required"),
        (["validate", "tests/core/__pycache__/../no-such-dir/"], "no such file"),
        (["local", "--viewers", "0"], "--viewers must be at least 1"),
        (["local", "--viewers", "many"], "--viewers must be a whole number"),
        (["local", "--events", "0"], "--events must be at least 1"),
        (["local", "--start", "yesterday"], "--start must be an ISO-8601 time"),
        (["query", "SELEC 1", "--lake", "/no/such/lake"], "error"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(args, message):
    r = run(*args)
    err = r.stderr.decode()
    assert r.returncode != 0
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_unreadable_and_corrupt_inputs(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run("validate", str(empty))
    assert r.returncode == 2 and "no files to check" in r.stderr.decode()
    corrupt = tmp_path / "x.gz"
    corrupt.write_bytes(b"not gzip at all")
    r = run("validate", str(corrupt))
    assert r.returncode == 2 and "cannot read input" in r.stderr.decode() and "Traceback" not in r.stderr.decode()
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked.jsonl"
        locked.write_bytes(b"{}\n")
        locked.chmod(0)
        r = run("validate", str(locked))
        assert r.returncode == 2 and "cannot read input" in r.stderr.decode()


def test_validate_reads_standard_input():
    events = run("generate", "--events", "2000", "--seed", "3").stdout
    ok = run("validate", "-", stdin=events)
    assert ok.returncode == 0, ok.stdout[-2000:]
    assert b"2000 events" in ok.stderr and b"0 violations" in ok.stderr
    lines = events.split(b"\n")
    lines[10] = lines[10].replace(b'"country":"US"', b'"country":"CA"')
    bad = run("validate", "-", stdin=b"\n".join(lines))
    assert bad.returncode == 1 and b"<stdin>:11: [geo]" in bad.stdout
