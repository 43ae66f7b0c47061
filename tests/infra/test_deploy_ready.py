"""Issue 10: `cdk deploy --all` works for a real user. Template-level checks for points
2 and 4-8 (points 1 and 3 are in test_synth_real_account.py, test_stacks.py and
tests/lambdas/test_msk_connectivity.py). Each fails on the templates before issue 10.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from functools import cache

import boto3
import pytest
from botocore.stub import Stubber

from tests.infra.conftest import ROOT, Synth

ACCOUNT, REGION = "123456789012", "us-west-2"  # dev and prod fixtures: one account, one region

# The properties that are a resource's name in the account and region (names scoped by a
# parent, such as a topic in its cluster or a stage in its API, may repeat).
NAME_PROPERTIES = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::MSK::Cluster": "ClusterName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::EC2::SecurityGroup": "GroupName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::Athena::WorkGroup": "Name",
    "AWS::ApiGatewayV2::Api": "Name",
    "AWS::KinesisFirehose::DeliveryStream": "DeliveryStreamName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Events::Rule": "Name",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::SSM::Parameter": "Name",
    "AWS::IAM::Role": "RoleName",
}


def physical_names(s: Synth | dict) -> dict[tuple[str, str], str]:
    """(resource type, name) -> where, for every name the templates set (Glue databases and
    stack exports included). `s`: a Synth, or stack id -> template."""
    found: dict[tuple[str, str], str] = {}
    for sid, t in (s if isinstance(s, dict) else s.templates).items():
        for lid, res in t["Resources"].items():
            props = res.get("Properties", {})
            key = NAME_PROPERTIES.get(res["Type"])
            value = props.get(key) if key else None
            if res["Type"] == "AWS::Glue::Database":
                value = props["DatabaseInput"]["Name"]
            name = _literal(value)
            if name is not None:
                found[(res["Type"], name)] = f"{sid}/{lid}"
        for out in t.get("Outputs", {}).values():
            if "Export" in out:
                found[("Export", json.dumps(out["Export"]["Name"]))] = sid
    return found


def _literal(value) -> str | None:
    """A name fixed at synth: a string, or a join of strings and pseudo parameters. A name
    built from a resource's generated name (a Ref) is unique by construction: None."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        rendered = [
            _literal(p) if not (isinstance(p, dict) and str(p.get("Ref", "")).startswith("AWS::")) else f"<{p['Ref']}>" for p in parts
        ]
        return None if None in rendered else sep.join(rendered)  # type: ignore[arg-type]
    return None


@cache
def synth_with(profile: str, **overrides: object) -> Synth:
    import aws_cdk as cdk

    from data_stack.config import load_profile
    from data_stack.stacks import build

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    tag = "-".join(f"{k}-{v}" for k, v in sorted(overrides.items())).replace(".", "_")
    outdir = ROOT / "cdk.out" / f"test-{profile}-{tag}"
    app = cdk.App(context={**context, "aws:cdk:enable-asset-metadata": True}, outdir=str(outdir), builtin_cloud_formation_validation=False)
    config = load_profile(profile, dict(overrides))
    stacks = build(app, config)
    assembly = app.synth()
    return Synth(config, stacks, {st.id: st.template for st in assembly.stacks}, outdir)


# --- 2. profiles side by side -----------------------------------------------------------------
def test_two_profiles_in_one_account_and_region_share_no_stack_name_and_no_physical_name(dev, prod):
    assert (dev.config.account or ACCOUNT, dev.config.region) == (prod.config.account or ACCOUNT, prod.config.region)
    dev_stacks, prod_stacks = {s.stack_name for s in dev.stacks.all()}, {s.stack_name for s in prod.stacks.all()}
    assert len(dev_stacks) == len(prod_stacks) == 6 and not dev_stacks & prod_stacks
    dev_names, prod_names = physical_names(dev), physical_names(prod)
    assert len(dev_names) >= 37, sorted(dev_names)  # the issue counted 37 shared names
    shared = set(dev_names) & set(prod_names)
    assert not shared, sorted((k, dev_names[k], prod_names[k]) for k in shared)


def test_a_stage_qualifier_puts_two_copies_of_one_profile_side_by_side(dev):
    alice = synth_with("dev", stage="alice")
    assert {s.stack_name for s in alice.stacks.all()} == {f"{s.node.id}-alice" for s in dev.stacks.all()}
    shared = set(physical_names(alice)) & set(physical_names(dev))
    assert not shared, sorted(shared)
    # recognizable: the plan's names with the stage in them
    cluster = alice.resources("AcmeMskStack", "AWS::MSK::Cluster")["MskCluster"]["Properties"]["ClusterName"]
    assert cluster == "acme-msk-cluster-alice"
    names = {
        f["Properties"]["FunctionName"] for _, _, f in alice.all_resources("AWS::Lambda::Function") if "FunctionName" in f["Properties"]
    }
    assert {"acme-data-alice-producer", "acme-data-alice-generator", "acme-data-alice-consumer"} <= names


def test_a_bad_stage_fails_naming_the_setting():
    from data_stack.config import ConfigError, load_profile

    for bad in ("Dev", "my-stage", "averyverylongstage", "1st"):
        with pytest.raises(ConfigError, match=r"dev\.stage"):
            load_profile("dev", {"stage": bad})


# --- 4. redeploy after destroy ----------------------------------------------------------------
def buckets(s: Synth):
    return [(sid, lid, b) for sid, lid, b in s.all_resources("AWS::S3::Bucket")]


def test_dev_destroy_removes_every_bucket_so_a_redeploy_starts_clean(dev):
    for sid, lid, b in buckets(dev):
        assert b["DeletionPolicy"] == "Delete", (sid, lid)
    # emptied first (versions too), or CloudFormation cannot delete a non-empty bucket
    auto = [r for _, _, r in dev.all_resources("Custom::S3AutoDeleteObjects")]
    assert len(auto) == len(buckets(dev))


def test_prod_retains_data_under_unique_names_so_destroy_then_deploy_succeeds(prod):
    res = prod.templates["AcmeDataLakeStack"]["Resources"]
    for lid in ("DataBucketE3889A50", "AccessLogsBucket83982689"):
        assert res[lid]["DeletionPolicy"] == "Retain" and res[lid]["UpdateReplacePolicy"] == "Retain"
        # a fixed name would collide with the bucket the destroy left behind
        assert "BucketName" not in res[lid]["Properties"], lid
    for sid, lid, b in buckets(prod):
        if b.get("DeletionPolicy") == "Retain":
            assert "BucketName" not in b["Properties"], (sid, lid)
    # the table follows the generated name
    table = next(iter(prod.resources("AcmeDataLakeStack", "AWS::Glue::Table").values()))["Properties"]["TableInput"]
    assert "DataBucketE3889A50" in json.dumps(table["StorageDescriptor"]["Location"])


def test_no_fixed_name_is_left_behind_by_destroy(any_profile):
    """The secret is scheduled for deletion (recovery window) on destroy: it must not
    have a fixed name either. Log groups are deleted with their stacks."""
    for _, lid, sec in any_profile.all_resources("AWS::SecretsManager::Secret"):
        assert "Name" not in sec["Properties"], lid
    for sid, lid, g in any_profile.all_resources("AWS::Logs::LogGroup"):
        if isinstance(g["Properties"].get("LogGroupName"), str):  # a fixed name would block a redeploy
            assert g["DeletionPolicy"] == "Delete", (sid, lid)


# --- 5. data stays queryable ------------------------------------------------------------------
ATHENA_READABLE = {"STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR"}


def test_lake_lifecycle_only_uses_classes_athena_reads(any_profile):
    res = any_profile.templates["AcmeDataLakeStack"]["Resources"]["DataBucketE3889A50"]["Properties"]
    transitions = [t for r in res["LifecycleConfiguration"]["Rules"] for t in r.get("Transitions", [])]
    assert transitions and {t["StorageClass"] for t in transitions} <= ATHENA_READABLE, transitions
    assert "GLACIER_IR" in {t["StorageClass"] for t in transitions}


def test_the_lake_refuses_an_archive_class_athena_skips():
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3

    from data_stack.constructs.telemetry_lake import TelemetryLake

    with pytest.raises(ValueError, match="Athena cannot read"):
        TelemetryLake(
            cdk.Stack(cdk.App()),
            "Lake",
            data_bucket_name="b",
            results_bucket_name="r",
            access_logs_bucket_name="l",
            database_name="d",
            table_name="t",
            workgroup_name="w",
            named_queries={},
            retain_data=False,
            archive_class=s3.StorageClass.GLACIER,
        )


# --- 6. least privilege and account hygiene ------------------------------------------------------
def test_api_gateway_account_is_opt_in_and_retained_when_owned(dev):
    assert not list(dev.all_resources("AWS::ApiGateway::Account"))
    owned = synth_with("dev", manage_api_gateway_account=True)
    ((sid, lid, account),) = list(owned.all_resources("AWS::ApiGateway::Account"))
    assert lid == "ApiGatewayAccount" and account["DeletionPolicy"] == "Retain"
    role_id = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    assert owned.templates[sid]["Resources"][role_id]["DeletionPolicy"] == "Retain"


def test_no_strong_export_of_values_that_change_when_the_cluster_is_replaced(any_profile):
    msk = any_profile.templates["AcmeMskStack"]
    exported = [json.dumps(o["Value"]) for o in msk.get("Outputs", {}).values() if "Export" in o]
    assert not [e for e in exported if "MskCluster" in e or "BootstrapBrokers" in e], exported
    for sid, t in any_profile.templates.items():
        imports = [json.dumps(v) for v in _find(t, "Fn::ImportValue")]
        assert not [i for i in imports if "AcmeMskStack" in i], (sid, imports)


def _find(node, key):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            yield from _find(v, key)
    elif isinstance(node, list):
        for v in node:
            yield from _find(v, key)


# --- 7. failures reach a person -------------------------------------------------------------------
def test_every_alarm_notifies_the_alarm_topic_and_email_is_optional(dev):
    ((topic_id, topic),) = dev.resources("AcmeNetworkStack", "AWS::SNS::Topic").items()
    name = topic["Properties"]["TopicName"]
    assert name == "acme-data-dev-alarms"
    assert not list(dev.all_resources("AWS::SNS::Subscription"))
    alarms = list(dev.all_resources("AWS::CloudWatch::Alarm"))
    assert len(alarms) >= 4
    for sid, lid, alarm in alarms:
        actions = json.dumps(alarm["Properties"].get("AlarmActions", []))
        assert f":{name}" in actions or topic_id in actions, (sid, lid, actions)
    with_email = synth_with("dev", **{"alarms.email": "oncall@example.com"})
    ((_, _, sub),) = list(with_email.all_resources("AWS::SNS::Subscription"))
    assert sub["Properties"]["Protocol"] == "email" and sub["Properties"]["Endpoint"] == "oncall@example.com"


def test_consumer_mapping_retry_and_record_age_are_explicit(any_profile):
    (esm,) = any_profile.resources("AcmeDashboardStack", "AWS::Lambda::EventSourceMapping").values()
    p, d = esm["Properties"], any_profile.config.dashboard
    assert p["MaximumRetryAttempts"] == d.consumer_retry_attempts >= 0
    assert p["MaximumRecordAgeInSeconds"] == d.consumer_max_record_age_s
    assert p["BisectBatchOnFunctionError"] is True
    assert p["ProvisionedPollerConfig"] == {"MinimumPollers": d.consumer_min_pollers, "MaximumPollers": d.consumer_max_pollers}


def kafka_batch(n: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "acme_telemetry", "generate", "--events", str(n), "--seed", "3"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.splitlines()
    recs = [
        {
            "topic": "acme-telemetry",
            "partition": 0,
            "offset": i,
            "timestamp": 1767225600000 + i,
            "timestampType": "CREATE_TIME",
            "key": base64.b64encode(b"s").decode(),
            "value": base64.b64encode(line.encode()).decode(),
            "headers": [],
        }
        for i, line in enumerate(out)
    ]
    return {
        "eventSource": "aws:kafka",
        "eventSourceArn": "arn:aws:kafka:us-west-2:123456789012:cluster/c/u-1",
        "bootstrapServers": "b-1:9098",
        "records": {"acme-telemetry-0": recs},
    }


def run_mapping(esm: dict, invoke, event: dict, limit: int = 200) -> tuple[list[dict], int]:
    """Lambda's documented Kafka error handling, on this mapping's settings: a failed batch
    is retried MaximumRetryAttempts times (-1: forever), split in halves when
    BisectBatchOnFunctionError is set, and then handed to the on-failure destination.
    Returns (batches sent to the destination, invocations); stops at `limit` invocations."""
    retries = esm.get("MaximumRetryAttempts", -1)
    bisect = esm.get("BisectBatchOnFunctionError", False)
    discarded: list[dict] = []
    calls = 0

    def process(records: list[dict]) -> None:
        nonlocal calls
        attempt = 0
        while calls < limit:
            calls += 1
            try:
                invoke({**event, "records": {"acme-telemetry-0": records}})
                return
            except Exception:
                attempt += 1
                if retries != -1 and attempt > retries:
                    break
        if calls >= limit:
            return
        if bisect and len(records) > 1:
            mid = len(records) // 2
            process(records[:mid])
            process(records[mid:])
            return
        discarded.append({"records": records, "destination": esm["DestinationConfig"]["OnFailure"]["Destination"]})

    process(next(iter(event["records"].values())))
    return discarded, calls


def test_a_batch_that_keeps_failing_ends_at_the_on_failure_destination(dev, monkeypatch):
    """The real consumer handler, its table scan failing every time (DynamoDB throttled),
    run under the template's mapping settings: every record reaches the failure queue
    within a bounded number of invocations (Kafka's default of -1 would retry forever)."""
    from tests.lambdas.conftest import FakeLambdaContext, load_handler

    (esm,) = dev.resources("AcmeDashboardStack", "AWS::Lambda::EventSourceMapping").values()
    props = esm["Properties"]
    queue_id = props["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
    assert dev.templates["AcmeDashboardStack"]["Resources"][queue_id]["Type"] == "AWS::SQS::Queue"

    _, _, consumer = next(
        x for x in dev.all_resources("AWS::Lambda::Function") if x[2]["Properties"].get("FunctionName") == "acme-data-dev-consumer"
    )
    env = consumer["Properties"]["Environment"]["Variables"]
    for k, v in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-west-2",
        "CONNECTIONS_TABLE": "acme-data-dev-connections",
        "WEBSOCKET_ENDPOINT": "https://abc.execute-api.us-west-2.amazonaws.com/dev",
        "KPI_WINDOW_S": env["KPI_WINDOW_S"],
        "HEARTBEAT_INTERVAL_S": env["HEARTBEAT_INTERVAL_S"],
        "POWERTOOLS_METRICS_NAMESPACE": "Test",
    }.items():
        monkeypatch.setenv(k, v)
    mod = load_handler("consumer")
    mod.dynamodb = boto3.resource("dynamodb", region_name="us-west-2")
    stub = Stubber(mod.dynamodb.meta.client)
    for _ in range(500):
        stub.add_client_error("scan", service_error_code="ProvisionedThroughputExceededException", http_status_code=400)
    event = kafka_batch(8)
    with stub:
        discarded, calls = run_mapping(props, lambda ev: mod.handler(ev, FakeLambdaContext()), event)
    sent = [r["offset"] for d in discarded for r in d["records"]]
    assert sorted(sent) == list(range(8)), (sent, calls)
    assert all(d["destination"] == props["DestinationConfig"]["OnFailure"]["Destination"] for d in discarded)
    assert calls < 200
    # ... and with Kafka's default (no MaximumRetryAttempts) it would never get there.
    with Stubber(mod.dynamodb.meta.client) as again:
        for _ in range(60):
            again.add_client_error("scan", service_error_code="ProvisionedThroughputExceededException", http_status_code=400)
        default = {k: v for k, v in props.items() if k != "MaximumRetryAttempts"}
        never, _ = run_mapping(default, lambda ev: mod.handler(ev, FakeLambdaContext()), event, limit=50)
    assert never == []


def test_health_dashboard_is_a_stack_output_and_covers_the_pipeline(any_profile):
    s = any_profile
    (dash,) = s.resources("AcmeDashboardStack", "AWS::CloudWatch::Dashboard").values()
    assert dash["Properties"]["DashboardName"] == f"{s.config.name_prefix}-health"
    body = json.dumps(dash["Properties"]["DashboardBody"])
    for metric in (
        "CpuUser",
        "KafkaDataLogsDiskUsed",
        "DeliveryToS3.DataFreshness",
        "OffsetLag",
        "ConnectCount",
        "MessageCount",
        "Broadcasts",
        "EventsGenerated",
        f"{s.config.name_prefix}-producer",
        f"{s.config.name_prefix}-generator",
        s.config.cluster_name,
        f"{s.config.name_prefix}-delivery-stream",
    ):
        assert metric in body, metric
    outputs = s.templates["AcmeDashboardStack"]["Outputs"]
    url = next(o["Value"] for k, o in outputs.items() if k.startswith("HealthDashboardUrl"))
    assert f"dashboards:name={s.config.name_prefix}-health" in json.dumps(url)


# --- 8. operable after deploy -------------------------------------------------------------------------
def test_generator_schedule_is_paused_in_dev_running_in_prod_and_a_flag_flips_it(dev, prod):
    def state(s):
        (rule,) = s.resources("AcmeDataGenStack", "AWS::Events::Rule").values()
        return rule["Properties"]["State"], rule["Properties"]["Name"]

    assert state(dev) == ("DISABLED", "acme-data-dev-generator-schedule")
    assert state(prod) == ("ENABLED", "acme-data-prod-generator-schedule")
    assert state(synth_with("dev", **{"generator.schedule_enabled": True}))[0] == "ENABLED"
    outputs = dev.templates["AcmeDataGenStack"]["Outputs"]
    assert any(k.startswith("GeneratorScheduleRuleName") for k in outputs)


def test_app_reads_the_context_flags(monkeypatch):
    from data_stack.config import ConfigError, parse_flag

    assert parse_flag("x", "true") is True and parse_flag("x", "False") is False and parse_flag("x", None) is None
    with pytest.raises(ConfigError, match="generatorEnabled"):
        parse_flag("generatorEnabled", "maybe")


def test_named_queries_work_on_any_day_and_on_the_local_lake(tmp_path):
    """No query names a fixed year/month/day; each returns today's rows from a lake
    written today (DuckDB through `python -m acme_telemetry query`)."""
    import datetime as dt
    import gzip
    import re

    from data_stack.queries import NAMED_QUERIES

    now = dt.datetime.now(dt.UTC)
    part = tmp_path / "telemetry" / f"year={now:%Y}" / f"month={now:%m}" / f"day={now:%d}" / f"hour={now:%H}"
    part.mkdir(parents=True)
    events = subprocess.run(
        [sys.executable, "-m", "acme_telemetry", "generate", "--events", "400", "--seed", "5"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    with gzip.open(part / "part-0.gz", "wt") as f:
        f.write(events)
    for name, (_desc, sql) in NAMED_QUERIES.items():
        assert not re.search(r"'20\d\d'|'0[1-9]'|'1[0-2]'", sql), name
        out = subprocess.run(
            [sys.executable, "-m", "acme_telemetry", "query", sql, "--lake", str(tmp_path)], capture_output=True, text=True, cwd=ROOT
        )
        assert out.returncode == 0, out.stderr
        rows = out.stdout.strip().splitlines()
        assert len(rows) >= 2 if name != "errors-by-device-type" else len(rows) >= 1, (name, out.stdout)


def test_every_function_gets_each_setting_its_handler_requires(any_profile):
    """A handler reads its settings with lambdas._env.require (no defaults), so a variable
    the stack forgets fails every invocation after a deploy that looked fine. The KPI
    consumer now needs KPI_WINDOW_S and HEARTBEAT_INTERVAL_S (mergeable windows)."""
    import re

    s, checked = any_profile, 0
    for folder in sorted((ROOT / "lambdas").iterdir()):
        handler = folder / "handler.py"
        if not handler.is_file():
            continue
        required = set(re.findall(r"require\(\s*\"([A-Z0-9_]+)\"", handler.read_text()))
        name = f"{s.config.name_prefix}-{folder.name.replace('_', '-')}"
        fns = [f for _, _, f in s.all_resources("AWS::Lambda::Function") if f["Properties"].get("FunctionName") == name]
        if not fns:
            assert not required, f"{folder.name} requires {required} but no function {name} is deployed"
            continue
        env = set(fns[0]["Properties"].get("Environment", {}).get("Variables", {}))
        assert required <= env, (folder.name, sorted(required - env))
        checked += 1
    assert checked >= 7


def test_headline_kpi_queries_are_named_queries_over_todays_partitions():
    """The dashboard's KPIs as Athena named queries (acme_telemetry/kpi_sql.py), each
    pruned to today's partitions so a run scans one day, not the whole lake."""
    from acme_telemetry.kpi_sql import KPI_QUERIES
    from data_stack.queries import NAMED_QUERIES, TODAY_FILTER

    for name in KPI_QUERIES:
        _desc, sql = NAMED_QUERIES[f"{name}-today"]
        assert f"WHERE {TODAY_FILTER}" in sql, name


def test_generator_incidents_come_from_config_and_a_relative_time_fails_synth():
    from data_stack.config import ConfigError, load_profile

    spec = "cdn=fastly,at=2026-12-01T19:00:00Z,for=10m,kind=outage"
    s = synth_with("dev", **{"generator.incidents": spec})
    gen = [
        f
        for _, _, f in s.all_resources("AWS::Lambda::Function")
        if f["Properties"].get("FunctionName") == f"{s.config.name_prefix}-generator"
    ][0]
    assert gen["Properties"]["Environment"]["Variables"]["INCIDENTS"] == spec
    with pytest.raises(ConfigError, match=r"dev\.generator\.incidents: .*absolute at="):
        load_profile("dev", {"generator.incidents": "cdn=fastly,at=+2m,for=3m,kind=outage"})
    with pytest.raises(ConfigError, match=r"dev\.generator\.incidents: .*kind"):
        load_profile("dev", {"generator.incidents": "cdn=fastly,at=2026-12-01T19:00:00Z,for=3m,kind=meteor"})
