"""Athena named queries, shared by the CDK app (AWS::Athena::NamedQuery), the README and
the local DuckDB tests (`python -m acme_telemetry query ...` runs the same SQL)."""

from __future__ import annotations

from acme_telemetry.schema import DATABASE, TABLE

QUALIFIED_TABLE = f"{DATABASE}.{TABLE}"

# The README's query, verbatim.
README_QUERY = (
    f"SELECT event_type, COUNT(*) AS count FROM {QUALIFIED_TABLE} "
    "WHERE year = '2026' AND month = '01' GROUP BY event_type;"
)

# name -> (description, SQL). Every query filters on partition columns so Athena prunes.
NAMED_QUERIES: dict[str, tuple[str, str]] = {
    "events-by-type": ("Event counts by type for one month (the README's query)", README_QUERY),
    "errors-by-device-type": (
        "Player errors by device type and error code for one day",
        f"SELECT device_type, error_code, COUNT(*) AS errors FROM {QUALIFIED_TABLE} "
        "WHERE year = '2026' AND month = '01' AND day = '15' AND event_type = 'error' "
        "GROUP BY device_type, error_code ORDER BY errors DESC;",
    ),
    "hourly-volume": (
        "Events per hour for one day",
        f"SELECT hour, COUNT(*) AS events FROM {QUALIFIED_TABLE} "
        "WHERE year = '2026' AND month = '01' AND day = '15' GROUP BY hour ORDER BY hour;",
    ),
}
