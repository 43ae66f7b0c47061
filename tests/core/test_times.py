"""acme_telemetry.times: the one time module (epoch ms <-> UTC ISO-8601 with Z)."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acme_telemetry import times

# 0001-01-01 .. 9999-12-31 in epoch ms: every instant the ISO text can write with 4 year digits.
MIN_MS = times.to_ms(datetime(1, 1, 1, tzinfo=UTC))
MAX_MS = times.to_ms(datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC))


def test_doctests() -> None:
    assert doctest.testmod(times).failed == 0


def test_to_ms_naive_is_utc_and_aware_is_converted() -> None:
    assert times.to_ms(datetime(1970, 1, 1)) == 0
    assert times.to_ms(datetime(1970, 1, 1, 0, 0, 1, 999_999, tzinfo=UTC)) == 1999  # sub-ms dropped
    plus2 = timezone(timedelta(hours=2))
    assert times.to_ms(datetime(2026, 11, 26, 17, 0, tzinfo=plus2)) == times.to_ms(datetime(2026, 11, 26, 15, 0))
    assert times.to_ms(datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)) == -1


def test_iso_ms_format() -> None:
    assert times.iso_ms(0) == "1970-01-01T00:00:00.000Z"
    assert times.iso_ms(1_795_705_200_007) == "2026-11-26T15:00:00.007Z"
    assert times.iso_ms(-1) == "1969-12-31T23:59:59.999Z"


def test_iso_z_writes_ms_only_when_present() -> None:
    assert times.iso_z(datetime(2026, 11, 26, 15, 0)) == "2026-11-26T15:00:00Z"
    assert times.iso_z(datetime(2026, 11, 26, 15, 0, 0, 250_000, tzinfo=UTC)) == "2026-11-26T15:00:00.250Z"
    assert times.iso_z(datetime(2026, 11, 26, 16, 0, tzinfo=timezone(timedelta(hours=1)))) == "2026-11-26T15:00:00Z"


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T00:00:00.5Z", 500),
        ("1970-01-01T00:00:00.12Z", 120),
        ("1970-01-01T00:00:01.123456789Z", 1123),
    ],
)
def test_ms_of_iso_accepts(text: str, ms: int) -> None:
    assert times.ms_of_iso(text) == ms
    assert times.parse_iso_ms(text) == ms


@pytest.mark.parametrize(
    "bad",
    [
        None,
        17,
        b"1970-01-01T00:00:00Z",
        "",
        "1970-01-01T00:00:00",
        "1970-01-01 00:00:00Z",
        "1970-01-01T00:00:00+00:00",
        "1970-13-01T00:00:00Z",
        "1970-01-01T00:00:00.Z",
        "1970-01-01T00:00:00,5Z",
        "1970-01-01T00:00:00.1234567890Z",
        "1970-01-01T00:00:00.-5Z",
        "1970-01-01T00:00:00.12aZ",
        "1970-01-01T00:00:00.\uff11\uff12\uff13Z",  # fullwidth digits: str.isdigit() and int() take them
        "1970-01-01T00:00:00.\uff11Z",
    ],
)
def test_ms_of_iso_rejects_without_raising(bad: object) -> None:
    assert times.ms_of_iso("1970-01-01T00:00:00.000Z") == 0  # its second is cached: the fast path must refuse too
    assert times.ms_of_iso(bad) is None


@given(
    st.integers(min_value=MIN_MS, max_value=MAX_MS), st.sampled_from(["", ".", ".5", ".12", ".123", ".1234", ".12a", ".\uff11\uff12\uff13"])
)
def test_ms_of_iso_agrees_with_strptime_whether_or_not_the_second_is_cached(ms: int, frac: str) -> None:
    head = times.iso_ms(ms)[:19]
    text = f"{head}{frac}Z"
    try:
        t = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ" if frac else "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        expected: int | None = times.to_ms(t)
    except ValueError:
        expected = None
    first = times.ms_of_iso(text)  # the second may be new
    assert first == expected, text
    assert times.ms_of_iso(text) == expected, text  # now it is cached


def test_parse_iso_ms_raises_naming_the_text() -> None:
    with pytest.raises(ValueError, match="'nope'"):
        times.parse_iso_ms("nope")


def test_parse_datetime() -> None:
    assert times.parse_datetime("2026-11-26T15:00:00Z") == datetime(2026, 11, 26, 15, tzinfo=UTC)
    assert times.parse_datetime("2026-11-26T16:00:00+01:00") == datetime(2026, 11, 26, 15, tzinfo=UTC)
    naive = times.parse_datetime("2026-11-26T15:00:00")
    assert naive == datetime(2026, 11, 26, 15, tzinfo=UTC) and naive.tzinfo is not None
    assert times.parse_datetime("yesterday") is None
    assert times.parse_datetime(None) is None
    assert times.parse_datetime(1_795_705_200) is None


def test_parse_utc_converts_to_utc() -> None:
    t = times.parse_utc("2026-11-26T16:30:00+01:30")
    assert t == datetime(2026, 11, 26, 15, tzinfo=UTC) and t.utcoffset() == timedelta(0)
    assert times.parse_utc("2026-11-26T15:00:00") == datetime(2026, 11, 26, 15, tzinfo=UTC)
    assert times.parse_utc("2026-11-26T15:00:00Z").tzinfo is UTC


def test_parse_utc_error_is_one_line_naming_the_flag() -> None:
    with pytest.raises(ValueError) as err:
        times.parse_utc("yesterday", "--start")
    msg = str(err.value)
    assert msg == "--start must be an ISO-8601 time such as 2026-11-26T15:00:00Z, got 'yesterday'"
    assert "\n" not in msg


@given(st.integers(min_value=MIN_MS, max_value=MAX_MS))
def test_iso_round_trip(ms: int) -> None:
    text = times.iso_ms(ms)
    assert len(text) == 24 and text.endswith("Z")
    assert times.parse_iso_ms(text) == ms
    assert times.to_ms(times.from_ms(ms)) == ms
    parsed = times.parse_datetime(text)
    assert parsed is not None and times.to_ms(parsed) == ms


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)))
def test_datetime_round_trip_to_the_millisecond(t: datetime) -> None:
    ms = times.to_ms(t)
    assert times.from_ms(ms) == t.replace(microsecond=t.microsecond // 1000 * 1000)
    assert times.parse_utc(times.iso_z(t)) == t.replace(microsecond=t.microsecond // 1000 * 1000)
