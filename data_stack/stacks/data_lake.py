"""AcmeDataLakeStack: the lake (data_stack.constructs.telemetry_lake.TelemetryLake) and its outputs.

Bucket names follow the plan's scheme, <base>-<stage>-<account>-<region>; a bucket kept on
destroy (retain_data) gets a generated, unique name instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from constructs import Construct

from data_stack.constructs.common import bucket_name
from data_stack.constructs.telemetry_lake import TelemetryLake


class DataLakeStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        data_bucket_base_name: str,
        results_bucket_base_name: str,
        access_logs_bucket_base_name: str,
        database_name: str,
        table_name: str,
        workgroup_name: str,
        named_queries: Mapping[str, tuple[str, str]],
        retain_data: bool,
        ia_after_days: int,
        archive_after_days: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        # Id "Default": CDK leaves it out of logical ids, so the buckets, database, table
        # and work group keep the logical ids they had before the move into the construct.
        self.lake = TelemetryLake(
            self,
            "Default",
            data_bucket_name=bucket_name(self, data_bucket_base_name),
            results_bucket_name=bucket_name(self, results_bucket_base_name),
            access_logs_bucket_name=bucket_name(self, access_logs_bucket_base_name),
            database_name=database_name,
            table_name=table_name,
            workgroup_name=workgroup_name,
            named_queries=named_queries,
            retain_data=retain_data,
            ia_after_days=ia_after_days,
            archive_after_days=archive_after_days,
        )
        self.data_bucket = self.lake.data_bucket

        cdk.CfnOutput(self, "DataBucketName", value=self.data_bucket.bucket_name)
        cdk.CfnOutput(self, "GlueDatabaseName", value=database_name)
        cdk.CfnOutput(self, "GlueTableName", value=f"{database_name}.{table_name}")
        cdk.CfnOutput(self, "AthenaWorkGroupName", value=self.lake.workgroup.ref)
        cdk.CfnOutput(self, "AthenaResultsBucketName", value=self.lake.results_bucket.bucket_name)
