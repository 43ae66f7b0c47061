"""Template assertions for the five stacks: the plan's defects (items 1-15 of issue 2)
and the key properties. Each `item N` test fails on the plan's version of that part."""

from __future__ import annotations

import base64
import json
import re

from aws_cdk.assertions import Match

from acme_telemetry import lake, schema
from data_stack.config import SUPPORTED_KAFKA_VERSIONS
from data_stack.queries import README_QUERY, qualify

# Lambda's reserved environment variables (Lambda rejects them at deploy).
RESERVED_ENV = {
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
}
STACKS = {"AcmeNetworkStack", "AcmeMskStack", "AcmeMskConnectivityStack", "AcmeDataLakeStack", "AcmeDataGenStack", "AcmeDashboardStack"}


def fn_by_name(s, suffix):
    for sid, lid, res in s.all_resources("AWS::Lambda::Function"):
        if res["Properties"].get("FunctionName") == f"{s.config.name_prefix}-{suffix}":
            return sid, lid, res
    raise AssertionError(f"no function {suffix}")


def statements(s, stack_id):
    for lid, pol in {**s.resources(stack_id, "AWS::IAM::Policy")}.items():
        for st in pol["Properties"]["PolicyDocument"]["Statement"]:
            yield lid, pol, st


def as_list(x):
    return x if isinstance(x, list) else [x]


def test_six_stacks_with_the_plan_names_qualified_by_stage(any_profile):
    s = any_profile
    stage = s.config.profile  # no -c stage=: the profile's name
    assert set(s.templates) == STACKS
    assert {st.stack_name for st in s.stacks.all()} == {f"{sid}-{stage}" for sid in STACKS}
    assert s.resources("AcmeMskStack", "AWS::MSK::Cluster")["MskCluster"]["Properties"]["ClusterName"] == f"acme-msk-cluster-{stage}"
    buckets = [b["Properties"].get("BucketName") for _, _, b in s.all_resources("AWS::S3::Bucket")]
    named = [b for b in buckets if b]
    assert f"acme-msk-logs-{stage}-123456789012-us-west-2" in named
    assert all(b.endswith("-123456789012-us-west-2") and f"-{stage}-" in b for b in named)


def test_three_azs_for_prod_without_credentials(prod, dev):
    def private_subnets(s):
        return [k for k in s.resources("AcmeNetworkStack", "AWS::EC2::Subnet") if "Private" in k]

    assert len(private_subnets(prod)) == 3
    assert len(private_subnets(dev)) == 2
    cluster = prod.resources("AcmeMskStack", "AWS::MSK::Cluster")["MskCluster"]["Properties"]
    assert len(cluster["BrokerNodeGroupInfo"]["ClientSubnets"]) == 3
    assert cluster["NumberOfBrokerNodes"] == 3


# --- item 1: AWS_REGION is reserved ------------------------------------------------------
def test_item1_no_lambda_sets_aws_region(any_profile):
    fns = list(any_profile.all_resources("AWS::Lambda::Function"))
    assert len(fns) >= 8
    for _, lid, fn in fns:
        env = fn["Properties"].get("Environment", {}).get("Variables", {})
        assert not (RESERVED_ENV & set(env)), f"{lid} sets a reserved variable: {sorted(env)}"


# --- item 2: bootstrap brokers from GetBootstrapBrokers, real cross-stack reference ---------
def ssm_parameter_name(s, stack_id, value):
    """The SSM parameter a `{"Ref": <AWS::SSM::Parameter::Value<String> parameter>}` reads."""
    param = s.templates[stack_id]["Parameters"][value["Ref"]]
    assert param["Type"] == "AWS::SSM::Parameter::Value<String>", param
    return param["Default"]


def published(s, name):
    """The value the MSK stack writes to SSM parameter `name`."""
    params = [p["Properties"] for p in s.resources("AcmeMskStack", "AWS::SSM::Parameter").values() if p["Properties"]["Name"] == name]
    assert len(params) == 1, name
    return params[0]["Value"]


def test_item2_bootstrap_servers_from_get_bootstrap_brokers_through_ssm(dev):
    _, _, producer = fn_by_name(dev, "producer")
    value = producer["Properties"]["Environment"]["Variables"]["BOOTSTRAP_SERVERS"]
    name = ssm_parameter_name(dev, "AcmeDataGenStack", value)
    assert name == "/acme-data-dev/msk/bootstrap-brokers-sasl-iam"
    source = published(dev, name)
    lookup = dev.templates["AcmeMskStack"]["Resources"][source["Fn::GetAtt"][0]]
    assert source["Fn::GetAtt"][1] == "BootstrapBrokerStringSaslIam" and lookup["Type"] == "Custom::AWS"
    call = json.loads("".join(p if isinstance(p, str) else "X" for p in lookup["Properties"]["Create"]["Fn::Join"][1]))
    assert call["service"] == "Kafka" and call["action"] == "getBootstrapBrokers"
    for sid, text in ((k, json.dumps(t)) for k, t in dev.templates.items()):
        assert not re.search(r'"Fn::GetAtt": \["[^"]+", "BootstrapBrokers"\]', text), (
            f"{sid} reads a BootstrapBrokers attribute MSK does not have"
        )


# --- item 3: no cross-stack security-group ingress (cycle) --------------------------------
def test_item3_security_groups_and_rules_only_in_network(any_profile):
    s = any_profile
    for sid in STACKS - {"AcmeNetworkStack"}:
        for t in ("AWS::EC2::SecurityGroup", "AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
            assert not s.resources(sid, t), f"{sid} creates {t}"
    ingress = s.resources("AcmeNetworkStack", "AWS::EC2::SecurityGroupIngress")
    sources = {json.dumps(r["Properties"].get("SourceSecurityGroupId")) for r in ingress.values()}
    assert any("ProducerSecurityGroup" in x for x in sources) and any("ConsumerSecurityGroup" in x for x in sources)
    assert all(r["Properties"]["FromPort"] != -1 for r in ingress.values())
    # the Network stack depends on nothing, so no cycle can run through it
    assert [d.stack_name for d in s.stacks.network.dependencies] == []


# --- item 4: the topic is declared ------------------------------------------------------
def test_item4_topic_declared_from_config(any_profile):
    s = any_profile
    topics = s.resources("AcmeMskStack", "AWS::MSK::Topic")
    assert len(topics) == 1
    t = next(iter(topics.values()))["Properties"]
    assert t["TopicName"] == schema.TOPIC == s.config.topic.name
    assert t["PartitionCount"] == s.config.topic.partitions
    assert t["ReplicationFactor"] == s.config.topic.replication_factor
    configs = json.loads(base64.b64decode(t["Configs"]))
    assert configs["retention.ms"] == str(s.config.topic.retention_hours * 3_600_000)
    assert configs["min.insync.replicas"] == str(s.config.topic.min_insync_replicas)


# --- item 5: multi-VPC connectivity + cluster policy, stream after both -------------------
def test_item5_connectivity_is_its_own_stack_and_the_stream_waits_for_it(dev):
    conn = dev.templates["AcmeMskConnectivityStack"]["Resources"]
    cr = conn["MultiVpcConnectivity"]
    assert cr["Type"] == "Custom::MskMultiVpcConnectivity"
    assert ssm_parameter_name(dev, "AcmeMskConnectivityStack", cr["Properties"]["ClusterArn"]) == "/acme-data-dev/msk/cluster-arn"
    assert published(dev, "/acme-data-dev/msk/cluster-arn") == {"Fn::GetAtt": ["MskCluster", "Arn"]}
    handlers = [f["Properties"]["Handler"] for _, _, f in dev.all_resources("AWS::Lambda::Function")]
    assert "handler.on_event" in handlers and "handler.poll" in handlers
    stream = next(iter(dev.resources("AcmeDataGenStack", "AWS::KinesisFirehose::DeliveryStream").values()))
    arn = stream["Properties"]["MSKSourceConfiguration"]["MSKClusterARN"]
    assert ssm_parameter_name(dev, "AcmeDataGenStack", arn) == "/acme-data-dev/msk/cluster-arn"
    assert stream["Properties"]["MSKSourceConfiguration"]["AuthenticationConfiguration"]["Connectivity"] == "PRIVATE"
    deps = {d.node.id for d in dev.stacks.data_gen.dependencies}
    assert {"AcmeMskConnectivityStack", "AcmeMskStack"} <= deps
    assert "AcmeMskStack" in {d.node.id for d in dev.stacks.connectivity.dependencies}


def test_item5_cluster_policy_is_what_the_firehose_docs_list_for_this_account_only(any_profile):
    """Firehose developer guide, "Grant Firehose access to your private Amazon MSK
    cluster": firehose.amazonaws.com gets kafka:CreateVpcConnection on the cluster."""
    (policy,) = any_profile.resources("AcmeMskStack", "AWS::MSK::ClusterPolicy").values()
    (st,) = policy["Properties"]["Policy"]["Statement"]
    assert st["Principal"] == {"Service": "firehose.amazonaws.com"}
    assert st["Action"] == ["kafka:CreateVpcConnection"] and st["Effect"] == "Allow"
    assert st["Resource"] == {"Fn::GetAtt": ["MskCluster", "Arn"]}
    assert st["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


# --- item 6: newline between records ----------------------------------------------------
def test_item6_append_delimiter_processor(dev):
    stream = next(iter(dev.resources("AcmeDataGenStack", "AWS::KinesisFirehose::DeliveryStream").values()))["Properties"]
    dest = stream["ExtendedS3DestinationConfiguration"]
    procs = dest["ProcessingConfiguration"]
    assert procs["Enabled"] is True
    assert [p["Type"] for p in procs["Processors"]] == ["AppendDelimiterToRecord"]
    # Firehose API Processor: AppendDelimiterToRecord needs no parameter (it appends "\n").
    # The plan's port passed Delimiter="\\n", a literal backslash-n, into the template.
    assert "Parameters" not in procs["Processors"][0], procs["Processors"][0]
    assert "\\\\n" not in json.dumps(stream)
    assert dest["CompressionFormat"] == "GZIP"
    assert dest["BufferingHints"] == {
        "IntervalInSeconds": dev.config.firehose.buffer_interval_s,
        "SizeInMBs": dev.config.firehose.buffer_size_mb,
    }


# --- item 7: partition projection matching the prefix, Athena workgroup and queries -------
def test_item7_projection_matches_firehose_prefix(dev):
    table = next(iter(dev.resources("AcmeDataLakeStack", "AWS::Glue::Table").values()))["Properties"]["TableInput"]
    p = table["Parameters"]
    assert p["projection.enabled"] == "true"
    for key, digits in (("year", "4"), ("month", "2"), ("day", "2"), ("hour", "2")):
        assert p[f"projection.{key}.type"] == "integer" and p[f"projection.{key}.digits"] == digits
    bucket = "acme-telemetry-data-dev-123456789012-us-west-2"
    template = p["storage.location.template"]
    assert template == f"s3://{bucket}/" + lake.PROJECTION_LOCATION_SUFFIX
    # The Firehose prefix, with its timestamp namespaces swapped for projection variables,
    # is exactly the projection template: Athena finds every object Firehose writes.
    stream = next(iter(dev.resources("AcmeDataGenStack", "AWS::KinesisFirehose::DeliveryStream").values()))["Properties"]
    prefix = stream["ExtendedS3DestinationConfiguration"]["Prefix"]
    as_projection = re.sub(
        r"!\{timestamp:(yyyy|MM|dd|HH)\}", lambda m: "${" + {"yyyy": "year", "MM": "month", "dd": "day", "HH": "hour"}[m[1]] + "}", prefix
    )
    assert f"s3://{bucket}/" + as_projection == template
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == list(schema.FIELD_NAMES)
    assert [c["Name"] for c in table["PartitionKeys"]] == ["year", "month", "day", "hour"]


def test_item7_athena_workgroup_enforced_encrypted_and_readme_query(dev):
    wg = next(iter(dev.resources("AcmeDataLakeStack", "AWS::Athena::WorkGroup").values()))["Properties"]
    conf = wg["WorkGroupConfiguration"]
    assert conf["EnforceWorkGroupConfiguration"] is True
    assert conf["ResultConfiguration"]["EncryptionConfiguration"]["EncryptionOption"] == "SSE_S3"
    assert conf["ResultConfiguration"]["OutputLocation"].startswith("s3://acme-athena-results-")
    queries = {q["Properties"]["Name"]: q["Properties"] for q in dev.resources("AcmeDataLakeStack", "AWS::Athena::NamedQuery").values()}
    # The README's query, on the stage's database, and for the current month (any day).
    assert queries["events-by-type"]["QueryString"] == qualify(README_QUERY, "acme_telemetry_dev")
    assert "acme_telemetry_dev.streaming_events" in queries["events-by-type"]["QueryString"]
    assert all(q["Database"] == "acme_telemetry_dev" for q in queries.values())
    for q in queries.values():
        assert "current_date" in q["QueryString"] and not re.search(r"'20\d\d'", q["QueryString"]), q


# --- item 8: a supported Kafka version ---------------------------------------------------
def test_item8_kafka_version_supported(any_profile):
    v = any_profile.resources("AcmeMskStack", "AWS::MSK::Cluster")["MskCluster"]["Properties"]["KafkaVersion"]
    assert v == any_profile.config.msk.kafka_version and v in SUPPORTED_KAFKA_VERSIONS and v != "3.5.1"
    assert any_profile.config.local_kafka_release.startswith(v.split(".x")[0] + ".")


# --- item 9: no deprecated runtimes ---------------------------------------------------------
def test_item9_runtimes(any_profile):
    for _, lid, fn in any_profile.all_resources("AWS::Lambda::Function"):
        rt = fn["Properties"]["Runtime"]
        if rt.startswith("python"):
            assert tuple(map(int, rt.removeprefix("python").split("."))) >= (3, 12), (lid, rt)
        else:  # only CDK's own framework functions (custom-resource providers) are Node.js
            assert lid.startswith(("ConnectivityProviderframework", "Custom", "AWS679f53fac002430cb0da5b7982bd2287")), (lid, rt)
            assert int(rt.removeprefix("nodejs").split(".")[0]) >= 20, (lid, rt)
    ours = [f for _, _, f in any_profile.all_resources("AWS::Lambda::Function") if f["Properties"]["Handler"].startswith("handler.")]
    assert len(ours) == 9 and {f["Properties"]["Runtime"] for f in ours} == {"python3.12"}


# --- item 10: dependencies are bundled --------------------------------------------------
def test_item10_producer_asset_has_dependencies_but_not_the_sdk(dev):
    _, _, producer = fn_by_name(dev, "producer")
    meta = producer["Metadata"]["aws:asset:path"]
    asset = dev.outdir / meta
    assert (asset / "handler.py").is_file()
    assert (asset / "acme_telemetry" / "kafka.py").is_file()
    assert (asset / "kafka").is_dir() and (asset / "aws_msk_iam_sasl_signer").is_dir()
    assert not (asset / "boto3").exists() and not (asset / "botocore").exists()
    assert not list(asset.rglob("*.pyc"))
    assert producer["Properties"]["Handler"] == "handler.handler"


def test_item10_every_function_asset_has_its_handler(dev):
    """Each bundle holds its handler and every acme_telemetry module the handler imports
    (a bundle may leave out the core when its handler does not use it)."""
    checked = 0
    for _, lid, fn in dev.all_resources("AWS::Lambda::Function"):
        if fn["Properties"]["Handler"].startswith("handler."):
            asset = dev.outdir / fn["Metadata"]["aws:asset:path"]
            assert (asset / "handler.py").is_file(), lid
            imported = re.findall(r"^\s*(?:from|import)\s+(acme_telemetry(?:\.\w+)*)", (asset / "handler.py").read_text(), re.M)
            for module in imported:
                path = asset.joinpath(*module.split("."))
                assert (path / "__init__.py").is_file() or path.with_suffix(".py").is_file(), f"{lid}: {module} missing"
            checked += 1
    assert checked >= 8


# --- item 13: IAM scoped to cluster/topic/group -------------------------------------------
# Kafka actions with no resource types in the Service Authorization Reference: '*' is the
# only possible resource, so these (and only these) may appear on it, alone in a statement.
KAFKA_ACTIONS_WITHOUT_RESOURCE_TYPES = {"kafka:DescribeClusterOperationV2"}


def test_item13_no_kafka_action_on_star(any_profile):
    s = any_profile
    for sid in STACKS:
        for lid, _, st in statements(s, sid):
            actions = as_list(st["Action"])
            if any(a.startswith(("kafka-cluster:", "kafka:")) for a in actions) and "*" in as_list(st["Resource"]):
                assert set(actions) <= KAFKA_ACTIONS_WITHOUT_RESOURCE_TYPES, (sid, lid, actions)


def _actions_of_role(s, stack_id, role_fragment):
    found = set()
    for _lid, pol, st in statements(s, stack_id):
        if any(role_fragment in json.dumps(r) for r in pol["Properties"].get("Roles", [])):
            found.update(as_list(st["Action"]))
    return found


def test_item13_producer_and_consumer_grants(dev):
    prod_actions = _actions_of_role(dev, "AcmeDataGenStack", "ProducerFunctionServiceRole")
    assert {
        "kafka-cluster:Connect",
        "kafka-cluster:WriteData",
        "kafka-cluster:WriteDataIdempotently",
        "kafka-cluster:DescribeTopic",
    } <= prod_actions
    assert "kafka-cluster:CreateTopic" not in prod_actions
    cons = _actions_of_role(dev, "AcmeDashboardStack", "ConsumerFunctionServiceRole")
    assert {
        "kafka:DescribeClusterV2",
        "kafka:GetBootstrapBrokers",
        "kafka-cluster:Connect",
        "kafka-cluster:AlterGroup",
        "kafka-cluster:DescribeGroup",
        "kafka-cluster:DescribeTopic",
        "kafka-cluster:ReadData",
    } <= cons
    text = json.dumps(dev.templates["AcmeDashboardStack"])
    assert ":group/acme-msk-cluster-dev/" in text and "acme-data-dev-kpi-consumer" in text


# --- item 14: authorizer on $connect ----------------------------------------------------
def test_item14_connect_route_has_token_authorizer(dev):
    t = dev.template("AcmeDashboardStack")
    t.has_resource_properties(
        "AWS::ApiGatewayV2::Authorizer",
        {
            "AuthorizerType": "REQUEST",
            "IdentitySource": ["route.request.querystring.token"],
        },
    )
    t.has_resource_properties(
        "AWS::ApiGatewayV2::Route", {"RouteKey": "$connect", "AuthorizationType": "CUSTOM", "AuthorizerId": Match.any_value()}
    )
    _, _, auth = fn_by_name(dev, "ws-authorizer")
    assert "TOKEN_SECRET_ARN" in auth["Properties"]["Environment"]["Variables"]
    secret = next(iter(dev.resources("AcmeDashboardStack", "AWS::SecretsManager::Secret").values()))
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32


# --- item 15: the delivery stream waits for its role's policy -------------------------------
def test_item15_delivery_stream_depends_on_role_policy(dev):
    res = dev.templates["AcmeDataGenStack"]["Resources"]
    stream_id, stream = next((k, v) for k, v in res.items() if v["Type"] == "AWS::KinesisFirehose::DeliveryStream")
    policy_ids = [
        k
        for k, v in res.items()
        if v["Type"] == "AWS::IAM::Policy" and any("FirehoseRole" in json.dumps(r) for r in v["Properties"]["Roles"])
    ]
    assert policy_ids and set(policy_ids) <= set(stream.get("DependsOn", []))
    role_id = stream["Properties"]["ExtendedS3DestinationConfiguration"]["RoleARN"]["Fn::GetAtt"][0]
    assert role_id.startswith("FirehoseRole")


# --- generator -> producer, consumer event source mapping ----------------------------------
def test_producer_failures_have_destination_and_alarm(dev):
    t = dev.template("AcmeDataGenStack")
    t.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "DestinationConfig": {"OnFailure": {"Destination": Match.any_value()}},
            "MaximumRetryAttempts": 2,
        },
    )
    t.has_resource_properties("AWS::CloudWatch::Alarm", {"MetricName": "ApproximateNumberOfMessagesVisible", "Threshold": 1})
    _, _, gen = fn_by_name(dev, "generator")
    env = gen["Properties"]["Environment"]["Variables"]
    assert int(env["MAX_ASYNC_PAYLOAD_BYTES"]) < 1_048_576
    t.has_resource_properties("AWS::Events::Rule", {"ScheduleExpression": f"rate({dev.config.generator.schedule_minutes} minutes)"})


def test_consumer_event_source_mapping_batches_per_window(any_profile):
    s = any_profile
    t = s.template("AcmeDashboardStack")
    t.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "StartingPosition": "LATEST",
            "BatchSize": s.config.dashboard.batch_size,
            "MaximumBatchingWindowInSeconds": s.config.dashboard.batching_window_s,
            "Topics": [schema.TOPIC],
            "AmazonManagedKafkaEventSourceConfig": {"ConsumerGroupId": f"acme-data-{s.config.profile}-kpi-consumer"},
            "DestinationConfig": {"OnFailure": {"Destination": Match.any_value()}},
        },
    )
    assert s.config.dashboard.batch_size > 100


def test_stage_logs_and_throttles(dev):
    t = dev.template("AcmeDashboardStack")
    t.has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {
            "AccessLogSettings": {"DestinationArn": Match.any_value(), "Format": Match.string_like_regexp("connectionId")},
            "DefaultRouteSettings": {"ThrottlingRateLimit": dev.config.dashboard.throttle_rate_limit},
        },
    )
    fmt = next(iter(dev.resources("AcmeDashboardStack", "AWS::ApiGatewayV2::Stage").values()))["Properties"]["AccessLogSettings"]["Format"]
    assert "querystring" not in fmt.lower()  # the token travels in the query string


def test_data_buckets_encrypted_and_tls_only(any_profile):
    for _sid, lid, b in any_profile.all_resources("AWS::S3::Bucket"):
        assert b["Properties"]["BucketEncryption"], lid
        assert b["Properties"]["PublicAccessBlockConfiguration"]["BlockPublicAcls"] is True
    for _sid, lid, p in any_profile.all_resources("AWS::S3::BucketPolicy"):
        assert "aws:SecureTransport" in json.dumps(p), lid


def test_dashboard_site_hook_is_wired_or_marked(dev):
    import inspect

    from data_stack.stacks import dashboard

    src = inspect.getsource(dashboard)
    assert ">>> DashboardSite hook" in src and 'site_dir=site_dir or Path("dashboard/dist")' in src


# --- deploy-time review fixes -------------------------------------------------------------
def render(template, value):
    """A CloudFormation value as the string it resolves to in us-west-2/123456789012:
    Fn::Join rendered, AWS::Partition -> aws, a Ref to a named resource -> its name."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(render(template, p) for p in parts)
    if "Ref" in value:
        ref = value["Ref"]
        if ref == "AWS::Partition":
            return "aws"
        res = template["Resources"][ref]
        name_of = {"AWS::Logs::LogGroup": "LogGroupName", "AWS::Logs::LogStream": "LogStreamName"}
        return res["Properties"][name_of[res["Type"]]]
    raise AssertionError(f"cannot render {value}")


def test_firehose_put_log_events_resource_is_the_log_stream_arn(dev):
    t = dev.templates["AcmeDataGenStack"]
    arns = [
        render(t, r)
        for _, _, st in statements(dev, "AcmeDataGenStack")
        if "logs:PutLogEvents" in as_list(st["Action"])
        for r in as_list(st["Resource"])
    ]
    assert arns == ["arn:aws:logs:us-west-2:123456789012:log-group:/aws/firehose/acme-data-dev-delivery:log-stream:delivery"]
    # and it names the group and stream the delivery stream logs to
    stream = next(iter(dev.resources("AcmeDataGenStack", "AWS::KinesisFirehose::DeliveryStream").values()))["Properties"]
    opts = stream["ExtendedS3DestinationConfiguration"]["CloudWatchLoggingOptions"]
    assert arns[0].endswith(f"log-group:{render(t, opts['LogGroupName'])}:log-stream:{render(t, opts['LogStreamName'])}")


def test_consumer_role_has_what_the_lambda_msk_esm_needs(any_profile):
    s = any_profile
    role = "ConsumerFunctionServiceRole"
    by_resource = {}
    for _, pol, st in statements(s, "AcmeDashboardStack"):
        if any(role in json.dumps(r) for r in pol["Properties"].get("Roles", [])):
            for r in as_list(st["Resource"]):
                by_resource.setdefault(json.dumps(r), set()).update(as_list(st["Action"]))
    # Lambda "Configuring Lambda permissions for Amazon MSK event source mappings" / AWSLambdaMSKExecutionRole
    assert {"ec2:DescribeVpcs", "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets"} <= by_resource['"*"']
    assert all(a.startswith("ec2:Describe") for a in by_resource['"*"']), by_resource['"*"']
    on_cluster = next(v for k, v in by_resource.items() if k.startswith('{"Ref": "SsmParameterValue') and "mskclusterarn" in k)
    assert {
        "kafka:DescribeClusterV2",
        "kafka:GetBootstrapBrokers",
        "kafka-cluster:Connect",
        "kafka-cluster:DescribeClusterDynamicConfiguration",
    } <= on_cluster
    on_topic = next(v for k, v in by_resource.items() if ":topic/" in k)
    on_group = next(v for k, v in by_resource.items() if ":group/" in k)
    assert {"kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"} <= on_topic
    assert {"kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"} <= on_group
    # the ENI actions come from the VPC execution managed policy
    roles = s.resources("AcmeDashboardStack", "AWS::IAM::Role")
    consumer_role = next(v for k, v in roles.items() if k.startswith(role))
    assert "AWSLambdaVPCAccessExecutionRole" in json.dumps(consumer_role["Properties"]["ManagedPolicyArns"])


def test_connectivity_wait_is_a_wait_condition_not_bounded_by_the_custom_resource_hour(any_profile):
    """Issue 10, point 3: the custom resource only starts the work (it returns within
    minutes); a WaitCondition, signalled by the poller, holds the deploy for up to 12 h."""
    s = any_profile
    res = s.templates["AcmeMskConnectivityStack"]["Resources"]
    ((wait_id, wait),) = ((k, v) for k, v in res.items() if v["Type"] == "AWS::CloudFormation::WaitCondition")
    assert int(wait["Properties"]["Timeout"]) == s.config.msk.connectivity_timeout_hours * 3600 == 43200 > 3600
    assert wait["Properties"]["Count"] == 1
    handle = wait["Properties"]["Handle"]["Ref"]
    assert res[handle]["Type"] == "AWS::CloudFormation::WaitConditionHandle"
    assert "MultiVpcConnectivity" in wait["DependsOn"]
    cr = res["MultiVpcConnectivity"]["Properties"]
    assert cr["WaitHandleUrl"] == {"Ref": handle}
    assert int(cr["ServiceTimeout"]) <= 600  # no waiter: on_event returns at once
    # No Provider waiter (is_complete) bounded by the hour; the poller is a state machine
    # that loops once a minute and may run past the wait's 12 h.
    ((machine_id, machine),) = ((k, v) for k, v in res.items() if v["Type"] == "AWS::StepFunctions::StateMachine")
    assert "isComplete" not in json.dumps(machine) and "waiter" not in machine_id.lower()
    definition = json.loads("".join(p if isinstance(p, str) else "X" for p in machine["Properties"]["DefinitionString"]["Fn::Join"][1]))
    assert definition["TimeoutSeconds"] > 43200
    waits = [st for st in definition["States"].values() if st["Type"] == "Wait"]
    assert [w["Seconds"] for w in waits] == [60]
    assert cr["PollerStateMachineArn"] == {"Ref": machine_id}
    # The signal is a PUT to S3's presigned URL: the functions run outside the VPC.
    for _, _, fn in s.all_resources("AWS::Lambda::Function"):
        if fn["Properties"]["Handler"] in ("handler.on_event", "handler.poll"):
            assert "VpcConfig" not in fn["Properties"]


def test_a_failed_connectivity_step_cannot_delete_the_cluster(any_profile):
    """The cluster and the connectivity step are in different stacks: a failed wait rolls
    back only AcmeMskConnectivityStack."""
    s = any_profile
    assert s.resources("AcmeMskStack", "AWS::MSK::Cluster")
    assert not s.resources("AcmeMskConnectivityStack", "AWS::MSK::Cluster")
    assert not s.resources("AcmeMskStack", "AWS::CloudFormation::WaitCondition")
    assert not [r for r in s.templates["AcmeMskStack"]["Resources"].values() if r["Type"] == "Custom::MskMultiVpcConnectivity"]


def _role_actions(s, stack_id, role_fragment):
    out = []
    for _, pol, st in statements(s, stack_id):
        if any(role_fragment in json.dumps(r) for r in pol["Properties"].get("Roles", [])):
            out.append((set(as_list(st["Action"])), as_list(st["Resource"]), st.get("Condition")))
    return out


def test_connectivity_handlers_have_update_connectivity_permissions(dev):
    stack = "AcmeMskConnectivityStack"
    cluster = [
        {"Ref": next(k for k, p in dev.templates[stack]["Parameters"].items() if p.get("Default") == "/acme-data-dev/msk/cluster-arn")}
    ]
    on_event = _role_actions(dev, stack, "ConnectivityOnEventServiceRole")
    on_cluster = set().union(*(a for a, r, _ in on_event if r == cluster))
    assert {"kafka:DescribeClusterV2", "kafka:UpdateConnectivity"} <= on_cluster
    ec2_st = [(a, c) for a, r, c in on_event if r == ["*"] and c]
    assert len(ec2_st) == 1 and ec2_st[0][0] == {"ec2:DescribeSubnets", "ec2:DescribeRouteTables"}
    assert ec2_st[0][1] == {"StringEquals": {"ec2:Region": "us-west-2"}}
    assert any("states:StartExecution" in a for a, _, _ in on_event)
    poller = _role_actions(dev, stack, "ConnectivityPollerServiceRole")
    polled = set().union(*(a for a, _, _ in poller))
    assert {"kafka:DescribeClusterOperationV2", "kafka:DescribeClusterV2"} <= polled
    assert "kafka:UpdateConnectivity" not in polled  # the poller never (re-)issues the update


def test_sqs_endpoint_for_the_esm_on_failure_destination(any_profile):
    s = any_profile
    net = s.templates["AcmeNetworkStack"]["Resources"]
    endpoints = [v["Properties"] for v in net.values() if v["Type"] == "AWS::EC2::VPCEndpoint"]
    sqs_eps = [e for e in endpoints if e["ServiceName"] == "com.amazonaws.us-west-2.sqs"]
    assert len(sqs_eps) == 1
    ep = sqs_eps[0]
    assert ep["VpcEndpointType"] == "Interface" and ep["PrivateDnsEnabled"] is True
    private = sorted(k for k in s.resources("AcmeNetworkStack", "AWS::EC2::Subnet") if "Private" in k)
    assert sorted(x["Ref"] for x in ep["SubnetIds"]) == private
    sg_id = ep["SecurityGroupIds"][0]["Fn::GetAtt"][0]
    ingress = net[sg_id]["Properties"]["SecurityGroupIngress"]
    assert ingress == [
        {"CidrIp": s.config.network.cidr, "Description": Match.any_value(), "FromPort": 443, "IpProtocol": "tcp", "ToPort": 443}
    ] or [(i["CidrIp"], i["FromPort"], i["ToPort"]) for i in ingress] == [(s.config.network.cidr, 443, 443)]
    # the destination it serves: the consumer ESM's on-failure queue
    esm = next(iter(s.resources("AcmeDashboardStack", "AWS::Lambda::EventSourceMapping").values()))["Properties"]
    assert "ConsumerFailures" in json.dumps(esm["DestinationConfig"]["OnFailure"]["Destination"])


def test_az_context_is_filled_only_for_the_placeholder_account(tmp_path):
    import aws_cdk as cdk

    from data_stack.config import load_profile
    from data_stack.stacks import SYNTH_ACCOUNT, az_context_key, fill_placeholder_az_context
    from data_stack.stacks.network import NetworkStack

    prod = load_profile("prod")
    app = cdk.App()
    assert fill_placeholder_az_context(app, SYNTH_ACCOUNT, prod) is True
    assert app.node.try_get_context(az_context_key(SYNTH_ACCOUNT, "us-west-2")) == ["us-west-2a", "us-west-2b", "us-west-2c"]

    # A real account: CDK looks the AZs up (the CLI fills cdk.context.json); nothing forced.
    real = "111122223333"
    app = cdk.App(outdir=str(tmp_path))
    assert fill_placeholder_az_context(app, real, load_profile("prod", {"account": real})) is False
    assert app.node.try_get_context(az_context_key(real, "us-west-2")) is None
    real_prod = load_profile("prod", {"account": real})
    NetworkStack(
        app,
        "AcmeNetworkStack",
        prefix=real_prod.name_prefix,
        network=real_prod.network,
        alarm_topic_name="alarms",
        env=cdk.Environment(account=real, region="us-west-2"),
    )
    app.synth()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    missing = [m["key"] for m in manifest.get("missing", [])]
    assert az_context_key(real, "us-west-2") in missing

    # ... and a cached real answer for the placeholder is never overwritten
    app = cdk.App(context={az_context_key(SYNTH_ACCOUNT, "us-west-2"): ["us-west-2a", "us-west-2b", "us-west-2d"]})
    assert fill_placeholder_az_context(app, SYNTH_ACCOUNT, prod) is False
