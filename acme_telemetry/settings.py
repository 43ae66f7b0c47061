"""What the CDK app and the embedded pipeline share: one source of truth, in the core.

The core owns these facts; `data_stack.config` composes them into deployment profiles
(it may import this module, never the other way round):

- the Kafka line: the MSK `KafkaVersion` and the Apache Kafka release the embedded broker
  runs on the same line;
- the topic: its partitions, replication and retention;
- Firehose's buffering (interval and size), which the local lake writer copies;
- the KPI window, which is the consumer's batching window on AWS and the feed's window
  locally.

`EMBEDDED` is what the local pipeline runs with, and it is also the `dev` profile's
values, so a laptop run rehearses what `dev` deploys.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from acme_telemetry import schema

# MSK KafkaVersion identifiers AWS supports as of 2026-11 (3.5.1 reached end of support
# 2025-10-23). MSK names its Kafka 4.x lines "4.0.x.kraft" and "4.1.x.kraft" (4.x has no
# ZooKeeper mode); a bare "4.0.x" is not a valid KafkaVersion and CreateCluster rejects it
# (MSK developer guide, "Supported Apache Kafka versions"; CDK's msk-alpha
# KafkaVersion.V4_0_X_KRAFT / V4_1_X_KRAFT).
SUPPORTED_KAFKA_VERSIONS = ("3.8.x", "3.9.x", "4.0.x.kraft", "4.1.x.kraft")
# The Apache Kafka release the local broker runs for each MSK line (same line).
LOCAL_KAFKA_RELEASE = {"3.8.x": "3.8.1", "3.9.x": "3.9.1", "4.0.x.kraft": "4.0.1", "4.1.x.kraft": "4.1.1"}
DEFAULT_KAFKA_VERSION = "3.9.x"


# KPI facts the live engine (kpis) and the SQL over the lake (kpi_sql) share.
# Slices: every event has the first three; cdn and isp are sliced when present.
KPI_REQUIRED_DIMENSIONS: tuple[str, ...] = ("device_type", "connection_type", "state")
KPI_OPTIONAL_DIMENSIONS: tuple[str, ...] = ("cdn", "isp")
KPI_SLICE_DIMENSIONS: tuple[str, ...] = KPI_REQUIRED_DIMENSIONS + KPI_OPTIONAL_DIMENSIONS
# The player's beacon interval: the simulator's default (SimConfig.heartbeat_interval_s) and the KPIs' weight.
HEARTBEAT_INTERVAL_MS = 10_000


@dataclass(frozen=True)
class TopicSettings:
    name: str = schema.TOPIC
    partitions: int = 6
    replication_factor: int = 3
    retention_hours: int = 168
    min_insync_replicas: int = 2


@dataclass(frozen=True)
class FirehoseSettings:
    """Firehose's S3 buffering hints; the local writer flushes on the same two bounds."""

    buffer_interval_s: int = 60
    buffer_size_mb: int = 5


@dataclass(frozen=True)
class SharedSettings:
    kafka_version: str = DEFAULT_KAFKA_VERSION
    topic: TopicSettings = field(default_factory=TopicSettings)
    firehose: FirehoseSettings = field(default_factory=FirehoseSettings)
    # KPI window in seconds: the consumer ESM's batching window, the local feed's window.
    kpi_window_s: int = 5

    @property
    def local_kafka_release(self) -> str:
        """The Apache Kafka release on this MSK line (what the embedded broker runs)."""
        return LOCAL_KAFKA_RELEASE[self.kafka_version]


# The embedded pipeline's settings, and the `dev` profile's: 3 partitions, 24 h retention.
EMBEDDED = SharedSettings(
    topic=TopicSettings(partitions=3, replication_factor=2, retention_hours=24, min_insync_replicas=1),
)
