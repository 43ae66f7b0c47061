"""data_stack.nag: acknowledgement ids rendered from tokens exactly as cdk-nag 3.0.2
reports findings, so an acknowledgement never spells a hash, an account or a region."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from data_stack.nag import acknowledge, acknowledged_ids, flatten_cfn_reference

BASIC = "service-role/AWSLambdaBasicExecutionRole"


@pytest.mark.parametrize(
    ("value", "flat"),
    [
        ("arn:aws:s3:::b/*", "arn:aws:s3:::b/*"),
        ("arn:${AWS::Partition}:s3:::b}", "arn:<AWS::Partition>:s3:::b>"),
        ({"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::", {"Ref": "Bkt1"}, "/*"]]}, "arn:<AWS::Partition>:s3:::<Bkt1>/*"),
        ({"Fn::GetAtt": ["Fn9A", "Arn"]}, "<Fn9A.Arn>"),
        ({"Fn::Sub": "arn:${AWS::Region}:x"}, "arn:<AWS::Region>:x"),
        ({"Fn::ImportValue": "A:ExportsOutputRefX"}, "A:ExportsOutputRefX"),
        ({"Fn::Select": [2, {"Fn::Split": ["/", "a/b/c"]}]}, '{"Fn::Select":[2,{"Fn::Split":["/","a/b/c"]}]}'),
        (None, ""),
    ],
)
def test_flatten_matches_cdk_nag(value, flat):
    assert flatten_cfn_reference(value) == flat


def _app(account: str, region: str, *, late_override: bool = False, ack: bool = True) -> cdk.App:
    app = cdk.App(builtin_cloud_formation_validation=False)
    env = cdk.Environment(account=account, region=region)
    lake, consumer = cdk.Stack(app, "Lake", env=env), cdk.Stack(app, "Consumer", env=env)
    bucket = s3.Bucket(lake, "Bucket", enforce_ssl=True)
    fn = lambda_.Function(consumer, "Reader", runtime=lambda_.Runtime.PYTHON_3_12, handler="h.h", code=lambda_.Code.from_inline("h = None"))
    bucket.grant_read(fn)  # a cross-stack import in fn's DefaultPolicy
    fn.grant_invoke(iam.Role(consumer, "Invoker", assumed_by=iam.AccountRootPrincipal()))  # <Reader....Arn>:*
    policy = fn.role.node.find_child("DefaultPolicy")  # type: ignore[union-attr]
    acknowledge(bucket, "AwsSolutions-S1", "A test bucket: its access logs are not the point here.")
    acknowledge(fn, "AwsSolutions-L1", "A test function: its runtime is not the point here.")
    if ack:
        acknowledge(
            fn.role,
            "AwsSolutions-IAM4",
            "Basic execution: the function writes its own logs.",  # type: ignore[arg-type]
            policy=iam.ManagedPolicy.from_aws_managed_policy_name(BASIC),
        )
        acknowledge(
            policy,
            "AwsSolutions-IAM5",
            "Reading every object of this one bucket is the grant.",
            resource=[bucket.bucket_arn, bucket.arn_for_objects("*")],
        )
        acknowledge(
            policy,
            "AwsSolutions-IAM5",
            "grant_read's actions, on this one bucket only.",
            action=["s3:GetObject*", "s3:GetBucket*", "s3:List*"],
        )
        invoker_policy = consumer.node.find_child("Invoker").node.find_child("DefaultPolicy")
        acknowledge(invoker_policy, "AwsSolutions-IAM5", "Invoking the function's versions and aliases.", resource=fn.function_arn + ":*")
    if late_override:  # after acknowledge: the id must follow the final logical id
        fn.node.default_child.override_logical_id("RenamedReader")  # type: ignore[union-attr]
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


@pytest.mark.parametrize(("account", "region"), [("111122223333", "us-west-2"), ("444455556666", "eu-west-1")])
def test_ids_follow_tokens_and_nag_passes(account, region):
    app = _app(account, region, late_override=True)
    app.synth()  # raises ValidationFailed on any unacknowledged finding
    ids = acknowledged_ids(app)
    assert "AwsSolutions-IAM5[Resource::<RenamedReader.Arn>:*]" in ids
    assert any(i.startswith("AwsSolutions-IAM5[Resource::Lake:ExportsOutputFnGetAttBucket") and i.endswith("/*]") for i in ids)
    assert f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{BASIC}]" in ids
    assert not [i for i in ids if account in i or region in i]


def test_an_open_finding_still_fails_the_synth():
    with pytest.raises(Exception, match="ValidationFailed|Validation failed"):
        _app("111122223333", "us-west-2", ack=False).synth()


def test_reason_and_bare_rule_guards():
    stack = cdk.Stack(cdk.App())
    with pytest.raises(ValueError, match="real reason"):
        acknowledge(stack, "AwsSolutions-S1", "because")
    with pytest.raises(ValueError, match="bare rule"):
        acknowledge(stack, "AwsSolutions-IAM5[Resource::*]", "a hand-written finding id is refused")
