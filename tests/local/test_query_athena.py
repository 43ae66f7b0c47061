"""`query` speaks Athena's SQL: Trino functions as DuckDB macros, the CDK app's named queries
unchanged, a one-line error for empty or non-SELECT SQL, and Athena's CSV (true/false, empty NULL)."""

from __future__ import annotations

import collections
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from acme_telemetry import lake
from acme_telemetry.errors import CliError
from acme_telemetry.local.query import run_query, to_csv
from acme_telemetry.simulator import SimConfig, iter_records
from data_stack.queries import NAMED_QUERIES

ROOT = Path(__file__).resolve().parents[2]
ARRIVAL = datetime.now(UTC)  # the named queries look at today's (UTC) partitions


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return [orjson.loads(v) for _, v in iter_records(3000, SimConfig(seed=21))]


@pytest.fixture(scope="module")
def lake_dir(tmp_path_factory, events) -> Path:
    root = tmp_path_factory.mktemp("lake")
    lines = [orjson.dumps(e) for e in events]
    for i in range(0, len(lines), 1000):  # three objects in the named queries' partition
        lake.write_object(root, lake.partition_path(ARRIVAL) + lake.object_name(ARRIVAL), lines[i : i + 1000])
    return root


@pytest.mark.parametrize("name", sorted(NAMED_QUERIES))
def test_the_cdk_apps_named_queries_run_unchanged(name: str, lake_dir: Path, events: list[dict]) -> None:
    _, sql = NAMED_QUERIES[name]
    columns, rows = run_query(sql, lake_dir)
    assert columns
    if name == "events-by-type":
        assert dict(rows) == dict(collections.Counter(e["event_type"] for e in events))
    elif name == "errors-by-device-type":
        assert sum(r[-1] for r in rows) == sum(1 for e in events if e["event_type"] == "error")
    elif name == "hourly-volume":
        assert rows == [(f"{ARRIVAL:%H}", len(events))]
    else:
        assert rows, f"{name} returned nothing on a lake that has today's partition"


def test_trino_functions_work_as_macros(lake_dir: Path, events: list[dict]) -> None:
    sql = (
        "SELECT approx_distinct(session_id) AS sessions, "
        "approx_percentile(startup_time_ms, 0.5) AS p50, "
        "date_format(date_trunc('hour', min(from_iso8601_timestamp(event_timestamp))), '%Y-%m-%d %H:%i:%s') AS first_hour, "
        "count_if(regexp_like(device_os, '^(iOS|Android)')) AS mobile_os, "
        "cardinality(array_agg(DISTINCT device_type)) AS device_types "
        "FROM acme_telemetry.streaming_events"
    )
    columns, [row] = run_query(sql, lake_dir)
    got = dict(zip(columns, row, strict=True))
    sessions = {e["session_id"] for e in events}
    assert abs(got["sessions"] - len(sessions)) <= 0.05 * len(sessions)
    startups = sorted(e["startup_time_ms"] for e in events if e["startup_time_ms"] is not None)
    assert startups[len(startups) // 4] <= got["p50"] <= startups[3 * len(startups) // 4]
    first = min(datetime.fromisoformat(e["event_timestamp"].replace("Z", "+00:00")) for e in events)
    assert got["first_hour"] == first.strftime("%Y-%m-%d %H:00:00")
    import re

    assert got["mobile_os"] == sum(1 for e in events if re.match(r"^(iOS|Android)", e["device_os"]))
    assert got["device_types"] == len({e["device_type"] for e in events})


@pytest.mark.parametrize("sql", ["", "   ", " ; ", "\n\t"])
def test_empty_sql_is_a_one_line_error(sql: str, lake_dir: Path) -> None:
    with pytest.raises(CliError) as err:
        run_query(sql, lake_dir)
    assert "the SQL is empty" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "sql",
    [
        "DROP VIEW acme_telemetry.streaming_events",
        "CREATE TABLE t AS SELECT 1",
        "INSERT INTO t VALUES (1)",
        "COPY (SELECT 1) TO '/tmp/x.csv'",
    ],
)
def test_non_select_statements_are_refused_in_one_line(sql: str, lake_dir: Path) -> None:
    with pytest.raises(CliError) as err:
        run_query(sql, lake_dir)
    assert str(err.value).startswith("only SELECT queries run on the lake") and "\n" not in str(err.value)


def test_csv_prints_booleans_as_athena_does_and_null_as_empty(lake_dir: Path) -> None:
    columns, rows = run_query("SELECT true AS t, false AS f, NULL AS n, 1.5 AS x", lake_dir)
    assert to_csv(columns, rows) == "t,f,n,x\ntrue,false,,1.5\n"


def test_query_command_with_empty_sql_exits_with_one_line_and_no_traceback(lake_dir: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "acme_telemetry", "query", "", "--lake", str(lake_dir)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr and "the SQL is empty" in proc.stderr
