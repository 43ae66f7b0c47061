"""Small helpers shared by the stacks (no stack imports another stack's globals)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from constructs import IConstruct

_RETENTION = [
    (1, logs.RetentionDays.ONE_DAY), (3, logs.RetentionDays.THREE_DAYS), (5, logs.RetentionDays.FIVE_DAYS),
    (7, logs.RetentionDays.ONE_WEEK), (14, logs.RetentionDays.TWO_WEEKS), (30, logs.RetentionDays.ONE_MONTH),
    (60, logs.RetentionDays.TWO_MONTHS), (90, logs.RetentionDays.THREE_MONTHS), (120, logs.RetentionDays.FOUR_MONTHS),
    (150, logs.RetentionDays.FIVE_MONTHS), (180, logs.RetentionDays.SIX_MONTHS), (365, logs.RetentionDays.ONE_YEAR),
    (400, logs.RetentionDays.THIRTEEN_MONTHS), (545, logs.RetentionDays.EIGHTEEN_MONTHS),
    (731, logs.RetentionDays.TWO_YEARS), (1827, logs.RetentionDays.FIVE_YEARS), (3653, logs.RetentionDays.TEN_YEARS),
]


def retention(days: int) -> logs.RetentionDays:
    """The smallest CloudWatch Logs retention that keeps at least `days`."""
    return next((r for d, r in _RETENTION if d >= days), logs.RetentionDays.TEN_YEARS)


def ack(scope: IConstruct, finding: str, reason: str) -> None:
    """Acknowledge one specific cdk-nag finding on `scope`, with the reason."""
    if not reason or len(reason) < 20:
        raise ValueError(f"acknowledgement of {finding} needs a real reason")
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=finding, reason=reason))


def bucket_name(stack: cdk.Stack, base: str) -> str:
    """The plan's naming: <base>-<account>-<region>."""
    return f"{base}-{stack.account}-{stack.region}"
