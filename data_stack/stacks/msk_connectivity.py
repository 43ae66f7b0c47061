"""AcmeMskConnectivityStack: multi-VPC private connectivity on the cluster, waited for up
to 12 hours (data_stack.constructs.msk_connectivity.MskMultiVpcConnectivity).

A stack of its own so that a failed or timed-out wait rolls back only this stack: the
cluster (AcmeMskStack) is never deleted by it. The data generation stack, which holds the
Firehose delivery stream, depends on this one; the cluster ARN arrives as an SSM
parameter value.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from data_stack.constructs.msk_cluster import MskCluster
from data_stack.constructs.msk_connectivity import MskMultiVpcConnectivity


class MskConnectivityStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        prefix: str,
        cluster: MskCluster,
        timeout_hours: int,
        log_retention_days: int,
        architecture: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        self.cluster = cluster.reference(self)
        self.connectivity = MskMultiVpcConnectivity(
            self,
            "Default",
            cluster_arn=self.cluster.cluster_arn,
            timeout_hours=timeout_hours,
            state_machine_name=f"{prefix}-connectivity-poller",
            log_retention_days=log_retention_days,
            architecture=architecture,
        )
        cdk.CfnOutput(self, "ConnectivityPollerStateMachineArn", value=self.connectivity.state_machine.state_machine_arn)
