"""Typed, validated deployment profiles for the CDK app.

The settings the CDK app shares with the embedded pipeline (the Kafka line, the topic,
Firehose's buffering, the KPI window) live in the core, `acme_telemetry.settings`; the
profiles here compose them with what only AWS has (network, brokers, Lambda sizes, names).
The `dev` profile deploys exactly the core's `EMBEDDED` settings.

Pick a profile with `cdk synth -c profile=NAME` (default: dev) or, locally,
`load_profile(NAME)`. An invalid setting raises ConfigError naming the setting.

Profiles side by side: every stack name and every physical name carries the *stage*
(`-c stage=NAME`, by default the profile's name), so `dev` and `prod` (or two people's
`dev`) deploy into one account and region without touching each other's resources:

- stacks: `AcmeNetworkStack-<stage>`, `AcmeMskStack-<stage>`, ... (the plan's names + stage);
- names: `acme-data-<stage>-producer`, `acme-msk-cluster-<stage>`, `/aws/lambda/acme-data-<stage>-...`,
  the Glue database `acme_telemetry_<stage>`, the work group `acme-telemetry-<stage>`,
  SSM parameters under `/acme-data-<stage>/`, buckets `acme-telemetry-data-<stage>-<account>-<region>`;
- a bucket whose data is retained on destroy (`retain_data`, prod) gets no fixed name:
  CloudFormation generates a unique one, so a destroy followed by a deploy is never
  blocked by the bucket the destroy left behind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from acme_telemetry import schema
from acme_telemetry.settings import (
    EMBEDDED,
    LOCAL_KAFKA_RELEASE,
    SUPPORTED_KAFKA_VERSIONS,
    FirehoseSettings,
    TopicSettings,
)
from acme_telemetry.simulator.incidents import parse_incident

# Lambda's instruction sets (aws_lambda.Architecture names).
LAMBDA_ARCHITECTURES = ("x86_64", "arm64")


class ConfigError(ValueError):
    """A setting is invalid; the message names it as profile.section.setting."""


@dataclass(frozen=True)
class NetworkConfig:
    max_azs: int = 3
    nat_gateways: int = 1
    cidr: str = "10.40.0.0/16"
    # AZ suffixes filled into the CDK AZ-lookup context when it is empty, so a synth
    # without credentials still sees max_azs zones (CDK falls back to 2 otherwise).
    az_suffixes: tuple[str, ...] = ("a", "b", "c")
    flow_log_retention_days: int = 30


@dataclass(frozen=True)
class MskConfig:
    cluster_name: str = "acme-msk-cluster"
    kafka_version: str = EMBEDDED.kafka_version
    broker_instance_type: str = "kafka.m5.large"
    broker_count: int = 3
    ebs_volume_gb: int = 100
    log_retention_days: int = 7
    # How long the deploy waits for multi-VPC connectivity (a WaitCondition; 12 h is
    # CloudFormation's maximum). Real clusters report more than an hour.
    connectivity_timeout_hours: int = 12


# The topic and Firehose's buffering are the core's settings, composed here.
TopicConfig = TopicSettings
FirehoseConfig = FirehoseSettings


@dataclass(frozen=True)
class LambdaConfig:
    generator_memory_mb: int = 256
    producer_memory_mb: int = 512
    consumer_memory_mb: int = 512
    producer_timeout_s: int = 300
    generator_timeout_s: int = 60
    consumer_timeout_s: int = 60
    ws_timeout_s: int = 10
    log_retention_days: int = 30
    # Async invoke payloads are limited to 1 MB; the generator chunks to stay below this.
    max_async_payload_bytes: int = 900_000
    # The functions' instruction set; the pip platform tags and the simulator kernel's
    # build target follow it (data_stack/constructs/python_function.py). arm64 (Graviton):
    # about 20% cheaper per GB-second than x86_64, and every requirement in
    # lambdas/*/requirements.txt has a manylinux aarch64 cp312 wheel (numpy, orjson) or is
    # pure Python (kafka-python, aws-msk-iam-sasl-signer-python, aws-lambda-powertools).
    architecture: str = "arm64"


@dataclass(frozen=True)
class GeneratorConfig:
    # False: the EventBridge schedule is deployed DISABLED (nothing is generated, nothing
    # charged per invocation); `-c generatorEnabled=true`, or
    # `aws events enable-rule --name acme-data-<stage>-generator-schedule`, turns it on.
    schedule_enabled: bool = True
    schedule_minutes: int = 5
    concurrent_viewers: int = 200
    heartbeat_interval_s: int = 10
    seed: int = 42
    # Incidents to rehearse on the dashboard: ';'-separated specs with absolute start times,
    # e.g. "cdn=fastly,at=2026-12-01T19:00:00Z,for=10m,kind=outage" (the generator's
    # INCIDENTS; acme_telemetry/simulator/incidents.py). `-c incidents=...` sets it.
    incidents: str = ""


@dataclass(frozen=True)
class DashboardConfig:
    # Consumer event source mapping: one broadcast per batching window.
    batch_size: int = 10_000
    batching_window_s: int = EMBEDDED.kpi_window_s
    stage_name: str = "prod"
    connection_ttl_hours: int = 24
    # API Gateway stage throttling for the WebSocket API.
    throttle_rate_limit: int = 50
    throttle_burst_limit: int = 100
    # The consumer's event source mapping (Lambda "Configuring error handling controls
    # for Kafka event sources"; provisioned mode): a batch that keeps failing is retried
    # this many times, split in halves, and then sent to the on-failure queue, instead
    # of the Kafka default (-1: retried until the records expire from the topic).
    consumer_retry_attempts: int = 2
    consumer_max_record_age_s: int = 3600
    consumer_min_pollers: int = 1
    consumer_max_pollers: int = 2


@dataclass(frozen=True)
class AlarmConfig:
    # Every alarm notifies one SNS topic (<prefix>-<stage>-alarms); with an address here
    # (or `-c alarmEmail=...`) the topic gets an email subscription (confirm the email).
    email: str | None = None


@dataclass(frozen=True)
class AppConfig:
    profile: str
    # Qualifies every stack and physical name (see the module doc); None: the profile name.
    stage: str | None = None
    prefix: str = "acme-data"
    region: str = "us-west-2"
    account: str | None = None
    data_bucket_name: str = "acme-telemetry-data"
    logs_bucket_name: str = "acme-msk-logs"
    # Athena query results and S3 server access logs (names get -<account>-<region>).
    athena_results_bucket_name: str = "acme-athena-results"
    access_logs_bucket_name: str = "acme-access-logs"
    athena_workgroup: str = "acme-telemetry"
    glue_database: str = schema.DATABASE
    glue_table: str = schema.TABLE
    network: NetworkConfig = field(default_factory=NetworkConfig)
    msk: MskConfig = field(default_factory=MskConfig)
    topic: TopicConfig = field(default_factory=TopicConfig)
    lambdas: LambdaConfig = field(default_factory=LambdaConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    firehose: FirehoseConfig = field(default_factory=FirehoseConfig)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    alarms: AlarmConfig = field(default_factory=AlarmConfig)
    # True: the data buckets (lake, access logs) are retained on destroy, with unique
    # generated names; False: every bucket is emptied and deleted with its stack.
    retain_data: bool = True
    # AWS::ApiGateway::Account is ONE setting per account and region (the CloudWatch role
    # every REST/WebSocket API there logs through). Opt in to let this app own it;
    # otherwise it must already be set (README, "Deploy to AWS", prerequisites).
    manage_api_gateway_account: bool = False
    # Athena's lake lifecycle: objects move to a class Athena still reads (Glacier
    # Instant Retrieval; never Glacier Flexible Retrieval or Deep Archive, which Athena skips).
    lake_ia_after_days: int = 30
    lake_archive_after_days: int = 90

    @property
    def stage_name(self) -> str:
        """The qualifier of every stack and physical name."""
        return self.stage or self.profile

    @property
    def name_prefix(self) -> str:
        """`<prefix>-<stage>`: functions, queues, security groups, the API, the secret..."""
        return f"{self.prefix}-{self.stage_name}"

    @property
    def cluster_name(self) -> str:
        return f"{self.msk.cluster_name}-{self.stage_name}"

    @property
    def database_name(self) -> str:
        """The Glue database (Athena names allow no '-')."""
        return f"{self.glue_database}_{self.stage_name}"

    @property
    def workgroup_name(self) -> str:
        return f"{self.athena_workgroup}-{self.stage_name}"

    def stack_name(self, stack_id: str) -> str:
        """`AcmeMskStack` -> `AcmeMskStack-<stage>`."""
        return f"{stack_id}-{self.stage_name}"

    def bucket_base(self, base: str) -> str:
        """`<base>-<stage>`; the stack appends `-<account>-<region>`."""
        return f"{base}-{self.stage_name}"

    @property
    def availability_zones(self) -> list[str]:
        """The AZ names CDK sees for this region when no lookup result is in context."""
        return [self.region + s for s in self.network.az_suffixes[: self.network.max_azs]]

    @property
    def local_kafka_release(self) -> str:
        return LOCAL_KAFKA_RELEASE[self.msk.kafka_version]

    def validate(self) -> AppConfig:
        _validate(self)
        return self


PROFILES: dict[str, AppConfig] = {
    # Small and cheap: two small brokers, 2 AZs. kafka.t3.small cannot do multi-VPC
    # connectivity, which Firehose's private MSK source needs, so m7g.large is the floor.
    "dev": AppConfig(
        profile="dev",
        network=NetworkConfig(max_azs=2, nat_gateways=1),
        msk=MskConfig(broker_instance_type="kafka.m7g.large", broker_count=2, ebs_volume_gb=20, log_retention_days=3),
        # The embedded pipeline's topic and buffering: a laptop run rehearses what dev deploys.
        topic=EMBEDDED.topic,
        firehose=EMBEDDED.firehose,
        # dev deploys paused: enable with -c generatorEnabled=true or `aws events enable-rule`.
        generator=GeneratorConfig(concurrent_viewers=100, schedule_enabled=False),
        # dev is disposable: destroy empties and deletes every bucket.
        retain_data=False,
    ),
    # The plan's sizes: 3 AZs, 3 x kafka.m5.large, 100 GB each.
    "prod": AppConfig(profile="prod"),
}


_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_TOPIC_RE = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
_GLUE_NAME_RE = re.compile(r"^[a-z0-9_]{1,255}$")
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9-]{1,30}$")
_CLUSTER_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]{0,63}$")
# Lower-case letters and digits only: it goes into bucket names, Glue names ('_'), stack
# names and IAM names; 12 characters keep every bucket name within 63.
_STAGE_RE = re.compile(r"^[a-z][a-z0-9]{0,11}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _fail(cfg: AppConfig, setting: str, problem: str) -> None:
    raise ConfigError(f"invalid setting {cfg.profile}.{setting}: {problem}")


def _range(cfg: AppConfig, setting: str, value: int, lo: int, hi: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        _fail(cfg, setting, f"{value!r} is outside {lo}..{hi}")


def _validate(cfg: AppConfig) -> None:
    if not _STAGE_RE.match(cfg.stage_name):
        _fail(cfg, "stage", f"{cfg.stage_name!r} must be a lower-case letter, then letters or digits, at most 12 chars")
    if not _PREFIX_RE.match(cfg.prefix):
        _fail(cfg, "prefix", f"{cfg.prefix!r} must be lower-case letters, digits and '-', 2-31 chars")
    if cfg.account is not None and not re.fullmatch(r"\d{12}", cfg.account):
        _fail(cfg, "account", f"{cfg.account!r} is not a 12-digit AWS account id")
    if not re.fullmatch(r"[a-z]{2}(-gov)?-[a-z]+-\d", cfg.region):
        _fail(cfg, "region", f"{cfg.region!r} is not an AWS region name")
    # Buckets are suffixed with -<account>-<region>; the whole name must stay <= 63.
    for setting, name in (
        ("data_bucket_name", cfg.data_bucket_name),
        ("logs_bucket_name", cfg.logs_bucket_name),
        ("athena_results_bucket_name", cfg.athena_results_bucket_name),
        ("access_logs_bucket_name", cfg.access_logs_bucket_name),
    ):
        full = f"{cfg.bucket_base(name)}-123456789012-{cfg.region}"
        if not _BUCKET_RE.match(name) or ".." in name or len(full) > 63:
            _fail(cfg, setting, f"{name!r} is not a valid S3 bucket name once suffixed with account and region ({full!r})")
    for setting, name in (("glue_database", cfg.glue_database), ("glue_table", cfg.glue_table)):
        if not _GLUE_NAME_RE.match(name):
            _fail(cfg, setting, f"{name!r} must be lower-case letters, digits and '_' (Athena rejects others)")

    if not re.fullmatch(r"[a-zA-Z0-9._-]{1,128}", cfg.athena_workgroup):
        _fail(cfg, "athena_workgroup", f"{cfg.athena_workgroup!r} must be letters, digits, '.', '_' or '-', 1-128 chars")

    n = cfg.network
    _range(cfg, "network.max_azs", n.max_azs, 2, 3)
    _range(cfg, "network.nat_gateways", n.nat_gateways, 1, n.max_azs)
    if len(set(n.az_suffixes)) < n.max_azs or not all(re.fullmatch(r"[a-z]", s) for s in n.az_suffixes):
        _fail(cfg, "network.az_suffixes", f"{n.az_suffixes!r} needs at least network.max_azs={n.max_azs} distinct single letters")
    _range(cfg, "network.flow_log_retention_days", n.flow_log_retention_days, 1, 3653)

    m = cfg.msk
    if not _CLUSTER_RE.match(cfg.cluster_name):
        _fail(cfg, "msk.cluster_name", f"{cfg.cluster_name!r} (with the stage) must be letters, digits and '-', at most 64 chars")
    _range(cfg, "msk.connectivity_timeout_hours", m.connectivity_timeout_hours, 1, 12)
    if m.kafka_version not in SUPPORTED_KAFKA_VERSIONS:
        _fail(
            cfg,
            "msk.kafka_version",
            f"{m.kafka_version!r} is not a supported MSK version; use one of {', '.join(SUPPORTED_KAFKA_VERSIONS)}",
        )
    if not m.broker_instance_type.startswith("kafka."):
        _fail(cfg, "msk.broker_instance_type", f"{m.broker_instance_type!r} is not an MSK broker type (kafka.*)")
    if m.broker_instance_type.startswith("kafka.t3."):
        _fail(
            cfg,
            "msk.broker_instance_type",
            f"{m.broker_instance_type!r} cannot use multi-VPC connectivity, which Firehose's MSK source needs",
        )
    _range(cfg, "msk.broker_count", m.broker_count, 2, 30)
    if m.broker_count % n.max_azs:
        _fail(cfg, "msk.broker_count", f"{m.broker_count} is not a multiple of network.max_azs={n.max_azs}")
    _range(cfg, "msk.ebs_volume_gb", m.ebs_volume_gb, 1, 16384)
    _range(cfg, "msk.log_retention_days", m.log_retention_days, 1, 3653)

    t = cfg.topic
    if not _TOPIC_RE.match(t.name) or t.name in (".", ".."):
        _fail(cfg, "topic.name", f"{t.name!r} is not a valid Kafka topic name")
    _range(cfg, "topic.partitions", t.partitions, 1, 1000)
    _range(cfg, "topic.replication_factor", t.replication_factor, 1, m.broker_count)
    _range(cfg, "topic.min_insync_replicas", t.min_insync_replicas, 1, t.replication_factor)
    _range(cfg, "topic.retention_hours", t.retention_hours, 1, 24 * 365)

    lam = cfg.lambdas
    for name in ("generator_memory_mb", "producer_memory_mb", "consumer_memory_mb"):
        _range(cfg, f"lambdas.{name}", getattr(lam, name), 128, 10240)
    _range(cfg, "lambdas.producer_timeout_s", lam.producer_timeout_s, 1, 900)
    _range(cfg, "lambdas.generator_timeout_s", lam.generator_timeout_s, 1, 900)
    _range(cfg, "lambdas.consumer_timeout_s", lam.consumer_timeout_s, 1, 900)
    _range(cfg, "lambdas.ws_timeout_s", lam.ws_timeout_s, 1, 29)
    _range(cfg, "lambdas.log_retention_days", lam.log_retention_days, 1, 3653)
    # Async invoke payloads are limited to 1 MB (1,048,576 bytes), envelope included.
    _range(cfg, "lambdas.max_async_payload_bytes", lam.max_async_payload_bytes, 1024, 1_000_000)
    if lam.architecture not in LAMBDA_ARCHITECTURES:
        _fail(cfg, "lambdas.architecture", f"{lam.architecture!r} is not one of {', '.join(LAMBDA_ARCHITECTURES)}")

    g = cfg.generator
    _range(cfg, "generator.schedule_minutes", g.schedule_minutes, 1, 60)
    _range(cfg, "generator.concurrent_viewers", g.concurrent_viewers, 1, 1_000_000)
    _range(cfg, "generator.heartbeat_interval_s", g.heartbeat_interval_s, 1, 300)
    for spec in (s.strip() for s in g.incidents.split(";")):
        if not spec:
            continue
        at = next((kv.split("=", 1)[1].strip() for kv in spec.split(",") if kv.strip().startswith("at=")), "")
        if not at or at.startswith("+"):
            _fail(cfg, "generator.incidents", f"{spec!r} needs an absolute at= time such as at=2026-12-01T19:00:00Z")
        try:
            parse_incident(spec, 0)
        except ValueError as exc:
            _fail(cfg, "generator.incidents", f"{spec!r}: {exc}")

    f = cfg.firehose
    # Firehose S3 destination limits: 0-900 s and 1-128 MB (64+ MB with format conversion).
    _range(cfg, "firehose.buffer_interval_s", f.buffer_interval_s, 0, 900)
    _range(cfg, "firehose.buffer_size_mb", f.buffer_size_mb, 1, 128)

    d = cfg.dashboard
    _range(cfg, "dashboard.batch_size", d.batch_size, 1, 10_000)
    # >= 1: the page and the KPI window need a real period (Lambda would allow 0).
    _range(cfg, "dashboard.batching_window_s", d.batching_window_s, 1, 300)
    if not re.fullmatch(r"[a-zA-Z0-9_]{1,128}", d.stage_name):
        _fail(cfg, "dashboard.stage_name", f"{d.stage_name!r} must be letters, digits and '_'")
    _range(cfg, "dashboard.connection_ttl_hours", d.connection_ttl_hours, 1, 24 * 30)
    _range(cfg, "dashboard.throttle_rate_limit", d.throttle_rate_limit, 1, 10_000)
    _range(cfg, "dashboard.throttle_burst_limit", d.throttle_burst_limit, 1, 5_000)
    # Lambda's ranges for Kafka error handling: retries 0..10000 (-1 would be infinite,
    # which never reaches the on-failure queue), record age 60..604800 s.
    _range(cfg, "dashboard.consumer_retry_attempts", d.consumer_retry_attempts, 0, 10_000)
    _range(cfg, "dashboard.consumer_max_record_age_s", d.consumer_max_record_age_s, 60, 604_800)
    _range(cfg, "dashboard.consumer_min_pollers", d.consumer_min_pollers, 1, 200)
    _range(cfg, "dashboard.consumer_max_pollers", d.consumer_max_pollers, d.consumer_min_pollers, 2000)

    if cfg.alarms.email is not None and not _EMAIL_RE.match(cfg.alarms.email):
        _fail(cfg, "alarms.email", f"{cfg.alarms.email!r} is not an email address")
    _range(cfg, "lake_ia_after_days", cfg.lake_ia_after_days, 30, 3650)
    _range(cfg, "lake_archive_after_days", cfg.lake_archive_after_days, cfg.lake_ia_after_days + 30, 3650)


def load_profile(name: str = "dev", overrides: dict[str, Any] | None = None) -> AppConfig:
    """The named profile with overrides, validated. A key is a top-level setting
    (`account`, `region`, `stage`, ...) or `section.setting` (`generator.schedule_enabled`);
    None values are ignored."""
    if name not in PROFILES:
        raise ConfigError(f"invalid setting profile: {name!r} is not one of {', '.join(sorted(PROFILES))}")
    cfg = PROFILES[name]
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        section, _, setting = key.partition(".")
        if setting:
            nested.setdefault(section, {})[setting] = value
        else:
            top[key] = value
    for section, values in nested.items():
        current = getattr(cfg, section, None)
        if current is None or not hasattr(current, "__dataclass_fields__"):
            raise ConfigError(f"invalid setting {name}.{section}: no such section")
        unknown = set(values) - set(current.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"invalid setting {name}.{section}.{sorted(unknown)[0]}: no such setting")
        top[section] = replace(current, **values)
    if top:
        cfg = replace(cfg, **top)
    return cfg.validate()


_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def parse_flag(setting: str, value: Any) -> bool | None:
    """A CDK context flag (`-c generatorEnabled=true` arrives as the string 'true')."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"invalid setting {setting}: {value!r} is not true or false")
