"""The KPI SQL (acme_telemetry.kpi_sql) on a local lake, through DuckDB as `query` runs it,
equals acme_telemetry.kpis over the same events: counts and ratios exactly (to the rounding
both apply), percentiles within the sketch's 2% bound."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from acme_telemetry import kpi_sql, kpis
from acme_telemetry.local.query import connect
from acme_telemetry.simulator import SimConfig, iter_window, parse_incident
from acme_telemetry.times import parse_iso_ms, to_ms

A = datetime(2026, 12, 1, 5, 30, tzinfo=UTC)  # 90 minutes: one partial and one whole hour


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    inc = parse_incident("cdn=akamai,at=2026-12-01T06:20:00Z,for=5m,kind=outage", 0)
    cfg = SimConfig(seed=17, concurrent_viewers=400, incidents=(inc,))
    values = [v for _, v in iter_window(cfg, A, A + timedelta(minutes=90))]
    root = tmp_path_factory.mktemp("lake")
    folder = root / "telemetry" / "year=2026" / "month=12" / "day=01" / "hour=06"
    folder.mkdir(parents=True)
    (folder / "part-0.gz").write_bytes(gzip.compress(b"\n".join(values) + b"\n"))
    return root, [orjson.loads(v) for v in values]


def _rows(lake_dir: Path, sql: str) -> list[dict]:
    con = connect(lake_dir)  # with Athena's functions as macros (approx_percentile among them)
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _compare(row: dict, want: dict) -> None:
    for k, v in want.items():
        if k not in row or k in ("quality_share", "play_attempts_per_min", "rebuffers_per_minute"):
            continue
        got = row[k]
        if k.startswith("startup_time_ms_p") and v is not None:
            assert got == pytest.approx(v, rel=0.02), k
        elif isinstance(v, float):
            assert float(got) == pytest.approx(v, abs=1.01e-1 if k in ("concurrent_viewers", "avg_bitrate_kbps") else 1.01e-3), k
        else:
            assert got == v, k


def test_kpis_per_hour_equal_the_engine(lake):
    root, events = lake
    rows = _rows(root, kpi_sql.kpis_per_hour())
    assert [r["hour"] for r in rows] == ["2026-12-01T05:00:00Z", "2026-12-01T06:00:00Z"]
    for r in rows:
        a = parse_iso_ms(r["hour"])
        state = kpis.WindowState(a, a + 3_600_000).add_all(events)
        want = state.kpis()
        assert want["events"] > 1000
        _compare(r, want)
    # the whole hour: presence over it is the audience, about 400 less the akamai sessions
    # the 5-minute outage ended (new ones arrive over the following half hour)
    assert 300 < rows[1]["concurrent_viewers"] < 440


def test_kpis_by_slice_equal_the_engine_and_show_the_incident(lake):
    root, events = lake
    rows = _rows(root, kpi_sql.kpis_by_slice("cdn"))
    six = to_ms(datetime(2026, 12, 1, 6, tzinfo=UTC))
    state = kpis.WindowState(six, six + 3_600_000).add_all(events)
    got = {r["cdn"]: r for r in rows if r["hour"] == "2026-12-01T06:00:00Z"}
    assert set(got) == set(state.by["cdn"])
    for cdn, r in got.items():
        _compare(r, state.kpis(state.by["cdn"][cdn]))
    assert got["akamai"]["video_start_failures"] > 3 * max(1, got["fastly"]["video_start_failures"])
    for dim in ("device_type", "connection_type", "state", "isp"):
        assert _rows(root, kpi_sql.kpis_by_slice(dim)), dim
    with pytest.raises(ValueError, match="dimension"):
        kpi_sql.kpis_by_slice("customer_id")


def test_the_named_queries_are_the_same_text():
    assert kpi_sql.KPI_QUERIES["kpis-per-hour"][1] == kpi_sql.kpis_per_hour()
    assert set(kpi_sql.KPI_QUERIES) == {
        "kpis-per-hour",
        "kpis-by-device-type",
        "kpis-by-connection-type",
        "kpis-by-state",
        "kpis-by-cdn",
        "kpis-by-isp",
    }
    for _, sql in kpi_sql.KPI_QUERIES.values():
        assert "acme_telemetry.streaming_events" in sql and "session_id" not in sql
