"""Athena named queries, shared by the CDK app (AWS::Athena::NamedQuery), the README,
scripts/verify-aws and the local DuckDB tests (`python -m acme_telemetry query ...` runs
the same SQL).

The queries work on any day: they filter on the current date's partitions, computed
with functions Athena (Trino) and DuckDB both have (`current_date`, `year`/`month`/`day`,
`lpad`, `CAST(... AS varchar)`), so the partition strings are the zero-padded
`year=YYYY/month=MM/day=DD` values Firehose writes and partition projection prunes on.
No `?` parameters: a named query opens ready to run, and DuckDB runs the same text.

The SQL names the table as `acme_telemetry.streaming_events` (the local view's name);
the CDK app qualifies it with the stage's Glue database (`qualify`).
"""

from __future__ import annotations

from acme_telemetry.kpi_sql import kpi_queries
from acme_telemetry.schema import DATABASE, TABLE

QUALIFIED_TABLE = f"{DATABASE}.{TABLE}"

# The current UTC date's partition values, zero-padded like the lake's folders.
THIS_YEAR = "CAST(year(current_date) AS varchar)"
THIS_MONTH = "lpad(CAST(month(current_date) AS varchar), 2, '0')"
TODAY = "lpad(CAST(day(current_date) AS varchar), 2, '0')"
THIS_MONTH_FILTER = f"year = {THIS_YEAR} AND month = {THIS_MONTH}"
TODAY_FILTER = f"{THIS_MONTH_FILTER} AND day = {TODAY}"

# The README's query, verbatim: this month's events by type.
README_QUERY = f"SELECT event_type, COUNT(*) AS count FROM {QUALIFIED_TABLE} WHERE {THIS_MONTH_FILTER} GROUP BY event_type;"

# name -> (description, SQL). Every query filters on partition columns so Athena prunes.
NAMED_QUERIES: dict[str, tuple[str, str]] = {
    "events-by-type": ("Event counts by type for the current month (the README's query)", README_QUERY),
    "errors-by-device-type": (
        "Player errors by device type and error code for today (UTC)",
        f"SELECT device_type, error_code, COUNT(*) AS errors FROM {QUALIFIED_TABLE} "
        f"WHERE {TODAY_FILTER} AND event_type = 'error' "
        "GROUP BY device_type, error_code ORDER BY errors DESC;",
    ),
    "hourly-volume": (
        "Events per hour for today (UTC)",
        f"SELECT hour, COUNT(*) AS events FROM {QUALIFIED_TABLE} WHERE {TODAY_FILTER} GROUP BY hour ORDER BY hour;",
    ),
}


# The headline QoE KPIs (acme_telemetry/kpi_sql.py: the same definitions as the live
# dashboard), over today's partitions (UTC) so each run scans one day.
NAMED_QUERIES.update(
    {f"{name}-today": (f"{description}, today (UTC)", sql) for name, (description, sql) in kpi_queries(TODAY_FILTER).items()}
)


def qualify(sql: str, database: str, table: str = TABLE) -> str:
    """`sql` with the local table name replaced by `database.table` (a stage's Glue
    database, e.g. acme_telemetry_dev)."""
    return sql.replace(QUALIFIED_TABLE, f"{database}.{table}")
