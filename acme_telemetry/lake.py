"""The lake layout, shared by Firehose (CDK), the Glue table and the local lake writer.

Objects go to telemetry/year=YYYY/month=MM/day=DD/hour=HH/, zero-padded, from the UTC
arrival time, as Firehose's !{timestamp:...} namespace does. Each object is gzip of
newline-delimited JSON. Records that cannot be parsed go under errors/ with the reason.
"""

from __future__ import annotations

from datetime import datetime, timezone

from acme_telemetry.schema import ERROR_PREFIX, LAKE_PREFIX

# Firehose S3 prefix: arrival time, zero-padded, exactly what the Glue projection expects.
FIREHOSE_PREFIX = (
    LAKE_PREFIX + "year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/"
)
# Firehose requires an expression in the error prefix when the prefix has one.
FIREHOSE_ERROR_PREFIX = (
    ERROR_PREFIX + "!{firehose:error-output-type}/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/"
)
# Glue partition projection: storage.location.template relative to the bucket.
PROJECTION_LOCATION_SUFFIX = LAKE_PREFIX + "year=${year}/month=${month}/day=${day}/hour=${hour}/"


def partition_path(arrival: datetime) -> str:
    """'telemetry/year=YYYY/month=MM/day=DD/hour=HH/' for a UTC arrival time."""
    t = arrival.astimezone(timezone.utc)
    return f"{LAKE_PREFIX}year={t:%Y}/month={t:%m}/day={t:%d}/hour={t:%H}/"
