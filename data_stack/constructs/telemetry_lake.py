"""TelemetryLake: the telemetry bucket, the Glue table Athena reads, and Athena itself.

Fixes against the plan:
- The Glue table has partition projection that matches the Firehose prefix exactly
  (zero-padded year/month/day/hour and storage.location.template), so partitions are
  visible to Athena without crawlers or MSCK REPAIR.
- Columns come from acme_telemetry.schema, the one schema (no second copy here).
- An Athena workgroup with an enforced, encrypted results location, and named queries
  (the README's query among them), qualified with this stack's database. The plan
  promised Athena but created none.
- The lake's lifecycle only uses classes Athena reads: Standard-IA, then Glacier Instant
  Retrieval. Athena skips objects in Glacier Flexible Retrieval and Deep Archive (Athena
  guide, "Query restored Amazon S3 Glacier objects"), so the plan's GLACIER transition
  made old partitions silently vanish from every query.
- `retain_data`: the data and access-log buckets are kept on destroy, with generated
  (unique) names so the next deploy is not blocked; otherwise every bucket is emptied
  and deleted with the stack.
"""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from constructs import Construct

from acme_telemetry import lake, schema
from data_stack.constructs.common import private_bucket
from data_stack.nag import acknowledge
from data_stack.queries import qualify

# Storage classes Athena can read without a restore (the lifecycle may only use these).
ATHENA_READABLE_CLASSES = (
    s3.StorageClass.INFREQUENT_ACCESS,
    s3.StorageClass.ONE_ZONE_INFREQUENT_ACCESS,
    s3.StorageClass.INTELLIGENT_TIERING,
    s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
)

# Partition projection ranges: zero-padded like Firehose's !{timestamp:MM} etc.
PROJECTION_RANGES = {
    "year": ("2024,2099", 4),
    "month": ("1,12", 2),
    "day": ("1,31", 2),
    "hour": ("0,23", 2),
}


def projection_parameters(bucket: str) -> dict[str, str]:
    params = {"projection.enabled": "true"}
    for key in schema.PARTITION_KEYS:
        rng, digits = PROJECTION_RANGES[key]
        params[f"projection.{key}.type"] = "integer"
        params[f"projection.{key}.range"] = rng
        params[f"projection.{key}.digits"] = str(digits)
    params["storage.location.template"] = f"s3://{bucket}/" + lake.PROJECTION_LOCATION_SUFFIX
    return params


class TelemetryLake(Construct):
    """Access-log, data and Athena-results buckets, the Glue database and table (with
    partition projection over the Firehose layout), an Athena work group and its named
    queries. Bucket names are given whole (the stack decides the naming scheme)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        data_bucket_name: str,
        results_bucket_name: str,
        access_logs_bucket_name: str,
        database_name: str,
        table_name: str,
        workgroup_name: str,
        named_queries: Mapping[str, tuple[str, str]],
        retain_data: bool,
        ia_after_days: int = 30,
        archive_after_days: int = 90,
        archive_class: s3.StorageClass = s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
    ) -> None:
        super().__init__(scope, id)
        account = cdk.Stack.of(self).account
        if archive_class.value not in {c.value for c in ATHENA_READABLE_CLASSES}:
            raise ValueError(f"archive_class {archive_class.value}: Athena cannot read objects in it without a restore")
        self.access_logs_bucket = private_bucket(
            self,
            "AccessLogsBucket",
            name=None if retain_data else access_logs_bucket_name,
            retain=retain_data,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(id="ExpireAccessLogs", expiration=cdk.Duration.days(90))],
        )
        acknowledge(
            self.access_logs_bucket,
            "AwsSolutions-S1",
            "This is the server access log destination for the data and Athena results buckets; logging it into itself would loop.",
        )

        self.data_bucket = private_bucket(
            self,
            "DataBucket",
            name=None if retain_data else data_bucket_name,
            retain=retain_data,
            versioned=True,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="data/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="MoveToIA",
                    transitions=[
                        s3.Transition(storage_class=s3.StorageClass.INFREQUENT_ACCESS, transition_after=cdk.Duration.days(ia_after_days)),
                        s3.Transition(storage_class=archive_class, transition_after=cdk.Duration.days(archive_after_days)),
                    ],
                ),
                s3.LifecycleRule(id="DeleteOldVersions", noncurrent_version_expiration=cdk.Duration.days(30)),
                s3.LifecycleRule(id="AbortIncompleteUploads", abort_incomplete_multipart_upload_after=cdk.Duration.days(7)),
            ],
        )

        self.results_bucket = private_bucket(
            self,
            "AthenaResultsBucket",
            name=results_bucket_name,
            retain=False,  # query results are not data: they expire after 30 days anyway
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="athena-results/",
            lifecycle_rules=[s3.LifecycleRule(id="ExpireResults", expiration=cdk.Duration.days(30))],
        )

        self.database = glue.CfnDatabase(
            self,
            "GlueDatabase",
            catalog_id=account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(name=database_name, description="ACME video streaming telemetry data"),
        )

        # The literal name when it is fixed (the table reads as it will deploy), else the
        # generated one (a retained bucket).
        lake_bucket = self.data_bucket.bucket_name if retain_data else data_bucket_name
        self.table = glue.CfnTable(
            self,
            "StreamingEventsTable",
            catalog_id=account,
            database_name=database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=table_name,
                description="Video streaming telemetry events (gzip NDJSON written by Firehose)",
                table_type="EXTERNAL_TABLE",
                parameters={
                    "classification": "json",
                    "compressionType": "gzip",
                    "EXTERNAL": "TRUE",
                    **projection_parameters(lake_bucket),
                },
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=f"s3://{lake_bucket}/{schema.LAKE_PREFIX}",
                    input_format="org.apache.hadoop.mapred.TextInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library="org.openx.data.jsonserde.JsonSerDe",
                        parameters={"ignore.malformed.json": "true"},
                    ),
                    columns=[glue.CfnTable.ColumnProperty(**c) for c in schema.glue_columns()],
                ),
                partition_keys=[glue.CfnTable.ColumnProperty(**c) for c in schema.glue_partition_keys()],
            ),
        )
        self.table.add_resource_dependency(self.database)
        self.table.node.add_dependency(self.data_bucket)

        self.workgroup = athena.CfnWorkGroup(
            self,
            "AthenaWorkGroup",
            name=workgroup_name,
            description="ACME telemetry queries; results encrypted in the results bucket",
            state="ENABLED",
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=10 * 1024**3,
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{results_bucket_name}/results/",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(encryption_option="SSE_S3"),
                ),
            ),
        )
        self.named_queries: list[athena.CfnNamedQuery] = []
        for name, (description, sql) in named_queries.items():
            q = athena.CfnNamedQuery(
                self,
                f"Query-{name}",
                name=name,
                description=description,
                database=database_name,
                query_string=qualify(sql, database_name, table_name),
                work_group=self.workgroup.ref,
            )
            q.add_resource_dependency(self.table)
            self.named_queries.append(q)
