"""SQL over the local lake with DuckDB, as Athena sees the S3 lake.

The view acme_telemetry.streaming_events reads every telemetry object with the schema's
columns and types (schema.duckdb_columns(), the same source as the Glue table) and the
partition columns year/month/day/hour as zero-padded strings, as Glue's partition
projection declares them. DuckDB's hive autocast would otherwise type them from the
folder values (BIGINT for month=11, VARCHAR once month=09 appears), so the types are fixed.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from acme_telemetry import schema
from acme_telemetry.errors import CliError

PARTITION_TYPES = {k: "VARCHAR" for k in schema.PARTITION_KEYS}

# Athena (Trino) functions the QoE queries use, as DuckDB macros, so the same SQL runs on
# both sides unchanged. date_format takes MySQL-style patterns, as Trino does; the macro maps
# the common ones to strftime's (%i minutes, %s seconds, %T time, %k/%l hours, %M month name).
ATHENA_MACROS: tuple[str, ...] = (
    # Athena's approx_percentile is within ~1% of the exact rank; DuckDB's approx_quantile
    # (t-digest) strays further on small slices, so locally it is the exact quantile_disc.
    "CREATE OR REPLACE MACRO approx_percentile(x, p) AS quantile_disc(x, p)",
    "CREATE OR REPLACE MACRO approx_distinct(x) AS approx_count_distinct(x)",
    "CREATE OR REPLACE MACRO from_iso8601_timestamp(s) AS CAST(s AS TIMESTAMPTZ)",
    "CREATE OR REPLACE MACRO regexp_like(s, pattern) AS regexp_matches(s, pattern)",
    "CREATE OR REPLACE MACRO cardinality(x) AS len(x)",
    "CREATE OR REPLACE MACRO date_format(ts, fmt) AS strftime(ts, "
    "replace(replace(replace(replace(replace(replace(replace(replace(fmt, "
    "'%i', '%M\x01'), '%M', '%B'), '%B\x01', '%M'), '%s', '%S'), '%T', '%H:%M:%S'), '%k', '%-H'), '%l', '%-I'), '%W', '%A'))",
)


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _struct(d: dict[str, str]) -> str:
    return "{" + ", ".join(f"{_sql_str(k)}: {_sql_str(v)}" for k, v in d.items()) + "}"


def telemetry_glob(lake_dir: Path | str) -> str:
    depth = "/".join("*" for _ in schema.PARTITION_KEYS)
    return f"{Path(lake_dir).resolve()}/{schema.LAKE_PREFIX.rstrip('/')}/{depth}/*.gz"


def has_objects(lake_dir: Path | str) -> bool:
    root = Path(lake_dir) / schema.LAKE_PREFIX
    return root.is_dir() and any(root.glob("*/*/*/*/*.gz"))


def view_sql(lake_dir: Path | str) -> str:
    """CREATE VIEW acme_telemetry.streaming_events over the lake's telemetry objects."""
    return (
        f"CREATE OR REPLACE VIEW {schema.DATABASE}.{schema.TABLE} AS "
        f"SELECT * FROM read_json({_sql_str(telemetry_glob(lake_dir))}, "
        "format = 'newline_delimited', "
        f"columns = {_struct(schema.duckdb_columns())}, "
        "hive_partitioning = true, "
        f"hive_types = {_struct(PARTITION_TYPES)}, "
        "hive_types_autocast = false)"
    )


def connect(lake_dir: Path | str) -> Any:
    """An in-memory DuckDB connection with the schema and the view; CliError if no lake."""
    import duckdb

    lake_dir = Path(lake_dir)
    if not has_objects(lake_dir):
        raise CliError(
            f"no telemetry objects in {lake_dir / schema.LAKE_PREFIX} yet; "
            "run `python -m acme_telemetry local --events 1000` first, or pass --lake DIR",
            exit_code=1,
        )
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")  # Athena's session zone: timestamps print and truncate in UTC
    for macro in ATHENA_MACROS:
        con.execute(macro)
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema.DATABASE}")
    con.execute(view_sql(lake_dir))
    return con


def check_select(sql: str) -> None:
    """CliError (one line) unless `sql` is one read-only statement (SELECT, WITH ... SELECT,
    VALUES, SHOW, DESCRIBE, which DuckDB all types SELECT, or EXPLAIN), as in Athena."""
    import duckdb

    if not sql or not sql.strip() or not sql.strip().strip(";").strip():
        raise CliError(
            'the SQL is empty; give one SELECT statement, e.g. "SELECT COUNT(*) FROM acme_telemetry.streaming_events"', exit_code=2
        )
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CliError(f"query failed: {first}", exit_code=1) from None
    if len(statements) != 1:
        raise CliError(f"give one SQL statement, got {len(statements)}", exit_code=2)
    kind = statements[0].type
    allowed = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
    if kind not in allowed:
        name = str(kind).rsplit(".", 1)[-1]
        raise CliError(f"only SELECT queries run on the lake (read-only, as in Athena), not {name}", exit_code=2)


def run_query(sql: str, lake_dir: Path | str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """(column names, rows) of `sql`; a bad query raises CliError with DuckDB's message."""
    import duckdb

    check_select(sql)
    con = connect(lake_dir)
    try:
        try:
            cur = con.execute(sql)
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CliError(f"query failed: {first}", exit_code=1) from None
        if cur.description is None:
            return [], []
        columns = [d[0] for d in cur.description]
        return columns, cur.fetchall()
    finally:
        con.close()


def csv_value(v: Any) -> Any:
    """A value as Athena's CSV results show it: empty for NULL, true/false for booleans."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return v


def to_csv(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for row in rows:
        w.writerow([csv_value(v) for v in row])
    return buf.getvalue()
