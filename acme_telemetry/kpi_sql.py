"""The headline KPIs as SQL over acme_telemetry.streaming_events: what data engineers run in
Athena (named queries, data_stack/queries.py) and locally (`python -m acme_telemetry query`).

Same definitions as acme_telemetry.kpis (its docstring), over event time, per UTC hour and
by slice, so a query over the lake equals the live engine over the same events:

- concurrent_viewers: heartbeat-weighted presence, (H x beats - H/2 x ends) / span, with
  beats the `start` and `heartbeat` events, ends the `stop`, `complete` and fatal `error`
  events, H the heartbeat interval (HEARTBEAT_MS) and span one hour;
- play_attempts, video_start_failures, exits_before_video_start and their percentages;
- startup_time_ms_p50 / _p95: Athena's approx_percentile (the live engine's sketch is
  within 1% of the exact nearest rank; the test allows the sketch's 2% bound);
- rebuffer_ratio = sum(stalled_ms) / (sum(played_ms) + sum(stalled_ms)), and
  avg_bitrate_kbps = sum(played_bitrate_kbps x played_ms) / sum(played_ms).

The hour is taken from the text of event_timestamp (its first 13 characters,
'YYYY-MM-DDTHH'), which Athena (Trino) and DuckDB read alike. Events are counted as they
are in the lake; a redelivered event would count twice, as in the live view (use
`count(DISTINCT event_id)` style deduplication upstream if the lake may hold duplicates).
"""

from __future__ import annotations

from acme_telemetry.schema import DATABASE, TABLE
from acme_telemetry.settings import HEARTBEAT_INTERVAL_MS as HEARTBEAT_MS
from acme_telemetry.settings import KPI_SLICE_DIMENSIONS

HOUR_MS = 3_600_000

_HOUR = "substr(event_timestamp, 1, 13) || ':00:00Z'"
_IS_END = "(event_type IN ('stop', 'complete') OR (event_type = 'error' AND fatal))"


def _figures(heartbeat_ms: int, span_ms: int) -> str:
    h = int(heartbeat_ms)
    return f"""count(*) AS events,
    round((CAST({h} AS double) * count_if(event_type IN ('start', 'heartbeat'))
           - CAST({h} AS double) / 2 * count_if({_IS_END})) / {span_ms}, 1) AS concurrent_viewers,
    count_if(event_type = 'start') AS play_attempts,
    count_if(event_type = 'error' AND fatal AND NOT video_started) AS video_start_failures,
    round(100.0 * count_if(event_type = 'error' AND fatal AND NOT video_started)
          / nullif(count_if(event_type = 'start'), 0), 3) AS video_start_failure_pct,
    count_if(event_type = 'stop' AND NOT video_started) AS exits_before_video_start,
    round(100.0 * count_if(event_type = 'stop' AND NOT video_started)
          / nullif(count_if(event_type = 'start'), 0), 3) AS exits_before_video_start_pct,
    approx_percentile(CASE WHEN event_type = 'first_frame' THEN startup_time_ms END, 0.5) AS startup_time_ms_p50,
    approx_percentile(CASE WHEN event_type = 'first_frame' THEN startup_time_ms END, 0.95) AS startup_time_ms_p95,
    count_if(event_type = 'first_frame' AND startup_time_ms IS NOT NULL) AS startup_samples,
    round(CAST(sum(stalled_ms) AS double) / nullif(sum(played_ms) + sum(stalled_ms), 0), 6) AS rebuffer_ratio,
    round(CAST(sum(CAST(played_bitrate_kbps AS bigint) * played_ms) AS double) / nullif(sum(played_ms), 0), 1) AS avg_bitrate_kbps,
    count_if(event_type = 'error' AND fatal AND video_started) AS playback_failures"""


def _where(where: str | None) -> str:
    return f"\nWHERE {where}" if where else ""


def kpis_per_hour(database: str = DATABASE, table: str = TABLE, heartbeat_ms: int = HEARTBEAT_MS, where: str | None = None) -> str:
    """The headline KPIs per UTC hour of event time (`where`: e.g. a partition filter)."""
    return f"""-- Headline QoE KPIs per UTC hour (definitions: acme_telemetry/kpi_sql.py, acme_telemetry/kpis)
SELECT {_HOUR} AS hour,
    {_figures(heartbeat_ms, HOUR_MS)}
FROM {database}.{table}{_where(where)}
GROUP BY 1
ORDER BY 1"""


def kpis_by_slice(
    dimension: str, database: str = DATABASE, table: str = TABLE, heartbeat_ms: int = HEARTBEAT_MS, where: str | None = None
) -> str:
    """The headline KPIs per UTC hour and value of one slice dimension (settings.KPI_SLICE_DIMENSIONS)."""
    if dimension not in KPI_SLICE_DIMENSIONS:
        raise ValueError(f"dimension must be one of {', '.join(KPI_SLICE_DIMENSIONS)}, got {dimension!r}")
    return f"""-- Headline QoE KPIs per UTC hour and {dimension} (definitions: acme_telemetry/kpi_sql.py)
SELECT {_HOUR} AS hour, {dimension},
    {_figures(heartbeat_ms, HOUR_MS)}
FROM {database}.{table}{_where(where)}
GROUP BY 1, 2
ORDER BY 1, 2"""


# name -> (description, SQL): for Athena named queries (data_stack/queries.py) and the README.
def kpi_queries(where: str | None = None) -> dict[str, tuple[str, str]]:
    """name -> (description, SQL) for every headline query, each filtered by `where`."""
    return {
        "kpis-per-hour": ("Headline QoE KPIs per UTC hour of event time", kpis_per_hour(where=where)),
        **{
            f"kpis-by-{d.replace('_', '-')}": (f"Headline QoE KPIs per UTC hour and {d}", kpis_by_slice(d, where=where))
            for d in ("device_type", "connection_type", "state", "cdn", "isp")
        },
    }


KPI_QUERIES: dict[str, tuple[str, str]] = kpi_queries()
