"""Small helpers the constructs and stacks share: log groups, data buckets, alarms, names."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from data_stack.constructs.python_function import PythonFunction

_RETENTION = [
    (1, logs.RetentionDays.ONE_DAY),
    (3, logs.RetentionDays.THREE_DAYS),
    (5, logs.RetentionDays.FIVE_DAYS),
    (7, logs.RetentionDays.ONE_WEEK),
    (14, logs.RetentionDays.TWO_WEEKS),
    (30, logs.RetentionDays.ONE_MONTH),
    (60, logs.RetentionDays.TWO_MONTHS),
    (90, logs.RetentionDays.THREE_MONTHS),
    (120, logs.RetentionDays.FOUR_MONTHS),
    (150, logs.RetentionDays.FIVE_MONTHS),
    (180, logs.RetentionDays.SIX_MONTHS),
    (365, logs.RetentionDays.ONE_YEAR),
    (400, logs.RetentionDays.THIRTEEN_MONTHS),
    (545, logs.RetentionDays.EIGHTEEN_MONTHS),
    (731, logs.RetentionDays.TWO_YEARS),
    (1827, logs.RetentionDays.FIVE_YEARS),
    (3653, logs.RetentionDays.TEN_YEARS),
]


def retention(days: int) -> logs.RetentionDays:
    """The smallest CloudWatch Logs retention that keeps at least `days`."""
    return next((r for d, r in _RETENTION if d >= days), logs.RetentionDays.TEN_YEARS)


def bucket_name(stack: cdk.Stack, base: str) -> str:
    """The plan's naming: <base>-<account>-<region> (base already carries the stage)."""
    return f"{base}-{stack.account}-{stack.region}"


def log_group(scope: Construct, cid: str, days: int, name: str | None = None) -> logs.LogGroup:
    """A log group kept at least `days` and removed with its stack (logs are not data)."""
    return logs.LogGroup(scope, cid, log_group_name=name, retention=retention(days), removal_policy=cdk.RemovalPolicy.DESTROY)


def private_bucket(scope: Construct, cid: str, *, name: str | None, retain: bool, **props: Any) -> s3.Bucket:
    """A private bucket: S3-managed encryption, no public access, TLS only.

    - retain=True (data kept when its stack is deleted): RETAIN, and no fixed name: a
      destroy leaves it behind, so a fixed name would make the next deploy fail with
      "already exists"; CloudFormation generates a unique name instead (`name` must be None).
    - retain=False: emptied (every version) and deleted with its stack, under `name`.

    `props` add to (or override) these defaults."""
    if retain and name is not None:
        raise ValueError(f"{cid}: a retained bucket gets a generated name (a fixed one blocks a deploy after destroy)")
    defaults: dict[str, Any] = dict(
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        removal_policy=cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY,
        auto_delete_objects=not retain,
    )
    return s3.Bucket(scope, cid, bucket_name=name, **{**defaults, **props})


def alarm_topic_arn(stack: cdk.Stack, name: str) -> str:
    """The alarm topic's ARN built from its name (no cross-stack export for it)."""
    return stack.format_arn(service="sns", resource=name, arn_format=cdk.ArnFormat.NO_RESOURCE_NAME)


def alarm_on_any(
    scope: Construct,
    cid: str,
    *,
    name: str,
    description: str,
    metric: cloudwatch.IMetric,
    topic: sns.ITopic | None = None,
    threshold: float = 1,
) -> cloudwatch.Alarm:
    """An alarm that fires as soon as `metric` reaches `threshold` in one period, and
    notifies `topic` (the alarm topic) when it fires and when it recovers."""
    alarm = cloudwatch.Alarm(
        scope,
        cid,
        alarm_name=name,
        alarm_description=description,
        metric=metric,
        threshold=threshold,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    if topic is not None:
        alarm.add_alarm_action(cw_actions.SnsAction(topic))
        alarm.add_ok_action(cw_actions.SnsAction(topic))
    return alarm


def prefixed_function(
    scope: Construct, cid: str, name: str, description: str, *, name_prefix: str, log_retention_days: int, architecture: str, **props: Any
) -> PythonFunction:
    """lambdas/<name> deployed as <prefix>-<name> ('_' -> '-') with its own log group
    /aws/lambda/<prefix>-<name>; 256 MB unless `props` say otherwise."""
    dashed = name.replace("_", "-")
    group = log_group(scope, f"{cid}Logs", log_retention_days, name=f"/aws/lambda/{name_prefix}-{dashed}")
    props.setdefault("memory_size", 256)
    return PythonFunction(
        scope,
        cid,
        name=name,
        function_name=f"{name_prefix}-{dashed}",
        description=description,
        log_group=group,
        architecture=architecture,
        **props,
    )
