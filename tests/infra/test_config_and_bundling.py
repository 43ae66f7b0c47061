"""Config validation (bad settings fail synth naming the setting), the bundler's asset
hash, and cdk-nag actually guarding synth."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from data_stack import config as cfgmod
from data_stack.config import ConfigError, load_profile

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "change, setting",
    [
        (lambda c: replace(c, msk=replace(c.msk, broker_count=4)), "prod.msk.broker_count"),  # 4 brokers on 3 AZs
        (lambda c: replace(c, firehose=replace(c.firehose, buffer_interval_s=1000)), "prod.firehose.buffer_interval_s"),
        (lambda c: replace(c, firehose=replace(c.firehose, buffer_size_mb=0)), "prod.firehose.buffer_size_mb"),
        (lambda c: replace(c, topic=replace(c.topic, name="bad topic!")), "prod.topic.name"),
        (lambda c: replace(c, data_bucket_name="Bad_Bucket"), "prod.data_bucket_name"),
        (lambda c: replace(c, data_bucket_name="a" * 45), "prod.data_bucket_name"),  # too long once suffixed
        (lambda c: replace(c, msk=replace(c.msk, kafka_version="3.5.1")), "prod.msk.kafka_version"),
        # MSK names its 4.x lines "4.0.x.kraft"/"4.1.x.kraft"; a bare "4.0.x" is rejected by CreateCluster
        (lambda c: replace(c, msk=replace(c.msk, kafka_version="4.0.x")), "prod.msk.kafka_version"),
        (lambda c: replace(c, msk=replace(c.msk, kafka_version="4.1.x")), "prod.msk.kafka_version"),
        (lambda c: replace(c, lambdas=replace(c.lambdas, max_async_payload_bytes=2_000_000)), "prod.lambdas.max_async_payload_bytes"),
        (lambda c: replace(c, network=replace(c.network, az_suffixes=("a", "b"))), "prod.network.az_suffixes"),
    ],
)
def test_invalid_setting_is_named(change, setting):
    with pytest.raises(ConfigError, match="invalid setting " + re.escape(setting) + ":"):
        change(cfgmod.PROFILES["prod"]).validate()


def test_profiles_valid_and_sized():
    dev, prod = load_profile("dev"), load_profile("prod")
    assert (prod.msk.broker_count, prod.network.max_azs, prod.msk.broker_instance_type) == (3, 3, "kafka.m5.large")
    assert dev.msk.broker_count < prod.msk.broker_count and dev.msk.ebs_volume_gb < prod.msk.ebs_volume_gb
    assert prod.availability_zones == ["us-west-2a", "us-west-2b", "us-west-2c"]


# MSK's KafkaVersion identifiers (MSK "Supported Apache Kafka versions"; 4.x exists only in KRaft mode).
MSK_KAFKA_VERSION_RE = re.compile(r"^3\.\d+\.x$|^[4-9]\.\d+\.x\.kraft$")


def test_kafka_versions_are_msk_identifiers_and_local_release_on_the_same_line():
    assert load_profile("dev").msk.kafka_version == load_profile("prod").msk.kafka_version == "3.9.x"
    assert {"4.0.x.kraft", "4.1.x.kraft"} <= set(cfgmod.SUPPORTED_KAFKA_VERSIONS)
    for v in cfgmod.SUPPORTED_KAFKA_VERSIONS:
        assert MSK_KAFKA_VERSION_RE.match(v), f"{v!r} is not an MSK KafkaVersion identifier"
        line = v.split(".x")[0] + "."
        assert cfgmod.LOCAL_KAFKA_RELEASE[v].startswith(line), (v, cfgmod.LOCAL_KAFKA_RELEASE[v])
    assert set(cfgmod.LOCAL_KAFKA_RELEASE) == set(cfgmod.SUPPORTED_KAFKA_VERSIONS)
    prod = cfgmod.PROFILES["prod"]
    four = replace(prod, msk=replace(prod.msk, kafka_version="4.1.x.kraft")).validate()
    assert four.local_kafka_release == "4.1.1"


def test_bad_context_fails_synth_with_the_setting_name():
    env = {**os.environ, "CDK_CONTEXT_JSON": '{"profile": "prod", "region": "moon-1"}', "CDK_OUTDIR": str(ROOT / "cdk.out" / "test-bad")}
    r = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "invalid setting prod.region" in r.stderr
    assert "Traceback" not in r.stderr


def test_asset_hash_follows_requirements_core_and_bundler(tmp_path, monkeypatch):
    from data_stack.constructs import python_function as pf

    fn = tmp_path / "lambdas" / "fn"
    fn.mkdir(parents=True)
    (fn / "handler.py").write_text("from acme_telemetry import kpis\n\ndef handler(e, c): return kpis.X\n")
    (fn / "requirements.txt").write_text("orjson==3.13.0\n")
    core = tmp_path / "acme_telemetry"
    core.mkdir()
    (core / "__init__.py").write_text("")
    (core / "kpis.py").write_text("X = 1\n")
    monkeypatch.setattr(pf, "ROOT", tmp_path)
    h0 = pf.asset_hash(fn, "x86_64")
    assert pf.asset_hash(fn, "x86_64") == h0  # stable
    (fn / "requirements.txt").write_text("orjson==3.12.0\n")
    h1 = pf.asset_hash(fn, "x86_64")
    assert h1 != h0
    (core / "kpis.py").write_text("X = 2\n")  # a core module the handler imports
    h2 = pf.asset_hash(fn, "x86_64")
    assert h2 != h1
    (core / "web.py").write_text("PORT = 8000\n")  # one it does not
    assert pf.asset_hash(fn, "x86_64") == h2
    bundler_copy = tmp_path / "python_function.py"
    bundler_copy.write_text(Path(pf.__file__).read_text() + "\n# changed bundler\n")
    monkeypatch.setattr(pf, "__file__", str(bundler_copy))
    assert pf.asset_hash(fn, "x86_64") != h2


@pytest.mark.parametrize("architecture, machine", [("x86_64", "x86_64"), ("arm64", "aarch64")])
def test_pip_bundle_is_manylinux_and_runtime_sdk_free(architecture, machine, tmp_path):
    from data_stack.constructs import python_function as pf

    fn = ROOT / "lambdas" / "producer"
    out = tmp_path / "out"
    out.mkdir()
    pf.bundle(fn, out, architecture)
    assert (out / "handler.py").is_file() and (out / "acme_telemetry" / "kafka.py").is_file()
    assert (out / "aws_lambda_powertools").is_dir() and (out / "kafka").is_dir()
    # only what the handler imports: no simulator (and its kernel), no local pipeline
    assert not (out / "acme_telemetry" / "simulator").exists() and not (out / "acme_telemetry" / "local").exists()
    orjson_so = list((out / "orjson").glob("*.so"))
    assert orjson_so and all(f"{machine}-linux-gnu" in p.name and "cpython-312" in p.name for p in orjson_so)
    assert not (out / "boto3").exists() and not (out / "botocore").exists()
    assert not list(out.rglob("__pycache__"))


def test_cdk_nag_blocks_an_unacknowledged_finding():
    """The same plugin wiring as build(): an open finding fails synth."""
    import aws_cdk as cdk
    from aws_cdk import aws_sqs as sqs
    from cdk_nag import AwsSolutionsChecks

    app = cdk.App(builtin_cloud_formation_validation=False)
    stack = cdk.Stack(app, "NagProbe")
    sqs.Queue(stack, "Plain")  # no DLQ, no SSL enforcement: AwsSolutions-SQS3/SQS4
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(Exception, match="ValidationFailed"):
        app.synth()


def test_lambda_architecture_is_a_validated_setting():
    import dataclasses

    from data_stack.config import PROFILES

    # arm64 by default (cheaper per GB-second; every requirement has a manylinux aarch64
    # cp312 wheel or is pure Python: tests/infra/test_bundle_architecture.py bundles them all)
    assert cfgmod.LambdaConfig().architecture == "arm64"
    assert load_profile("dev").lambdas.architecture == load_profile("prod").lambdas.architecture == "arm64"
    bad = dataclasses.replace(PROFILES["dev"], lambdas=dataclasses.replace(PROFILES["dev"].lambdas, architecture="sparc"))
    with pytest.raises(ConfigError, match=r"dev\.lambdas\.architecture: 'sparc' is not one of x86_64, arm64"):
        bad.validate()
