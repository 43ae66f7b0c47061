"""DashboardSite synthesized alone in a throwaway stack, with cdk-nag (AwsSolutions) on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("site")
    (d / "index.html").write_text("<!doctype html><title>t</title>")
    (d / "app.js").write_text("console.log(1)")
    return d


def _synth(site_dir: Path, outdir: Path, **props):
    import aws_cdk as cdk
    from cdk_nag import AwsSolutionsChecks

    from data_stack.constructs.dashboard_site import DashboardSite

    app = cdk.App(outdir=str(outdir), builtin_cloud_formation_validation=False)
    stack = cdk.Stack(app, "SiteTest", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    url = props.pop("websocket_url", "wss://abc123.execute-api.eu-west-1.amazonaws.com/prod")
    site = DashboardSite(stack, "Site", site_dir=site_dir, websocket_url=url, window_seconds=5, **props)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    assembly = app.synth()  # raises on any unacknowledged cdk-nag finding
    return site, assembly.get_stack_by_name("SiteTest").template, outdir


@pytest.fixture(scope="module")
def synth(site_dir, tmp_path_factory):
    return _synth(site_dir, tmp_path_factory.mktemp("cdkout"))


def _of(template: dict, type_: str) -> dict:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def test_bucket_is_private_encrypted_ssl_only_and_logged(synth) -> None:
    site, template, _ = synth
    buckets = _of(template, "AWS::S3::Bucket")
    site_bucket_id = template["Resources"][next(k for k in buckets if k.startswith("SiteBucket"))]
    props = site_bucket_id["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert props["LoggingConfiguration"]["LogFilePrefix"] == "s3-access/"
    policies = [p["Properties"]["PolicyDocument"]["Statement"] for p in _of(template, "AWS::S3::BucketPolicy").values()]
    denies = [s for stmts in policies for s in stmts if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)
    # nothing grants the public: the only reader of the site bucket is CloudFront, by service principal + distribution
    allows = [s for stmts in policies for s in stmts if s["Effect"] == "Allow"]
    assert all(s["Principal"] != "*" and s["Principal"] != {"AWS": "*"} for s in allows)
    cf_reads = [s for s in allows if s["Principal"] == {"Service": "cloudfront.amazonaws.com"}]
    assert cf_reads and all("AWS:SourceArn" in json.dumps(s["Condition"]) for s in cf_reads)


def test_distribution_uses_oac_https_headers_and_index(synth) -> None:
    _, template, _ = synth
    (oac,) = _of(template, "AWS::CloudFront::OriginAccessControl").values()
    assert oac["Properties"]["OriginAccessControlConfig"]["OriginAccessControlOriginType"] == "s3"
    assert oac["Properties"]["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    (dist,) = _of(template, "AWS::CloudFront::Distribution").values()
    cfg = dist["Properties"]["DistributionConfig"]
    assert cfg["DefaultRootObject"] == "index.html"
    assert cfg["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    assert "OriginAccessControlId" in cfg["Origins"][0]
    assert cfg["Origins"][0]["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    assert cfg["Logging"]["Prefix"] == "cloudfront/"
    (policy,) = _of(template, "AWS::CloudFront::ResponseHeadersPolicy").values()
    sec = policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    csp = sec["ContentSecurityPolicy"]["ContentSecurityPolicy"]
    assert "default-src 'self'" in csp and "connect-src 'self' wss:" in csp and "frame-ancestors 'none'" in csp
    assert sec["StrictTransportSecurity"]["AccessControlMaxAgeSec"] == 365 * 86400
    assert sec["FrameOptions"]["FrameOption"] == "DENY"
    assert sec["ContentTypeOptions"]["Override"] is True


def test_config_json_carries_the_websocket_url(synth) -> None:
    site, template, outdir = synth
    assert site.config == {
        "websocketUrl": "wss://abc123.execute-api.eu-west-1.amazonaws.com/prod",
        "windowSeconds": 5,
        "environment": "aws",
    }
    (deploy,) = _of(template, "Custom::CDKBucketDeployment").values()
    assert len(deploy["Properties"]["SourceObjectKeys"]) == 2  # the page and config.json
    assert deploy["Properties"]["DistributionPaths"] == ["/*"]
    # Source.json_data stages config.json as a zip asset in the assembly: find it and read it
    import zipfile

    found = []
    for z in Path(outdir).glob("asset.*/"):
        if (z / "config.json").is_file():
            found.append(json.loads((z / "config.json").read_text()))
    for z in Path(outdir).glob("asset.*.zip"):
        with zipfile.ZipFile(z) as zf:
            if "config.json" in zf.namelist():
                found.append(json.loads(zf.read("config.json")))
    assert {"websocketUrl": "wss://abc123.execute-api.eu-west-1.amazonaws.com/prod", "windowSeconds": 5, "environment": "aws"} in found
    outputs = template["Outputs"]
    assert any(k.startswith("SiteDashboardUrl") for k in outputs)


def test_token_url_from_another_stack_resource_is_resolved_at_deploy(site_dir, tmp_path) -> None:
    import aws_cdk as cdk
    from cdk_nag import AwsSolutionsChecks

    from data_stack.constructs.dashboard_site import DashboardSite

    app = cdk.App(outdir=str(tmp_path), builtin_cloud_formation_validation=False)
    stack = cdk.Stack(app, "TokenTest", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    param = cdk.CfnParameter(stack, "WsUrl", default="wss://example/prod")
    DashboardSite(stack, "Site", site_dir=site_dir, websocket_url=param.value_as_string)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    template = app.synth().get_stack_by_name("TokenTest").template
    (deploy,) = _of(template, "Custom::CDKBucketDeployment").values()
    # the URL is a deploy-time value: it travels as a source marker, replaced in config.json on deploy
    assert "WsUrl" in json.dumps(deploy["Properties"].get("SourceMarkers"))


@pytest.mark.parametrize(
    "props, message",
    [
        ({"websocket_url": "http://insecure/ws"}, "websocket_url must be a wss:// URL"),
        ({"window_seconds": 0}, "window_seconds must be > 0"),
    ],
)
def test_bad_props_fail_at_synth_naming_the_setting(site_dir, tmp_path, props, message) -> None:
    import aws_cdk as cdk

    from data_stack.constructs.dashboard_site import DashboardSite

    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Bad")
    kwargs = {"site_dir": site_dir, "websocket_url": "wss://x/prod", "window_seconds": 5, **props}
    with pytest.raises(ValueError, match=message):
        DashboardSite(stack, "Site", **kwargs)


def test_unbuilt_page_fails_with_the_build_command(tmp_path) -> None:
    import aws_cdk as cdk

    from data_stack.constructs.dashboard_site import DashboardSite

    stack = cdk.Stack(cdk.App(outdir=str(tmp_path / "out")), "Bad")
    with pytest.raises(ValueError, match=r"site_dir=.*node dashboard/build.mjs"):
        DashboardSite(stack, "Site", site_dir=tmp_path / "nothing", websocket_url="wss://x/prod")


def test_local_and_cloudfront_policies_agree() -> None:
    from acme_telemetry.local.web import CSP
    from data_stack.constructs.dashboard_site import CONTENT_SECURITY_POLICY

    assert CSP.replace("connect-src 'self' ws: wss:", "connect-src 'self' wss:") == CONTENT_SECURITY_POLICY
