"""DashboardSite: the static dashboard page on AWS, private S3 behind CloudFront.

- The bucket is private (block public access, SSL only, S3-managed encryption, server
  access logs to a log bucket); only CloudFront reads it, through origin access control.
- CloudFront redirects HTTP to HTTPS and adds the same security headers as the local
  server (acme_telemetry.local.web: CSP default-src 'self', connect-src 'self' wss:, ...).
- The deployment copies the built page (`node dashboard/build.mjs` -> dashboard/dist) and
  writes `config.json` with the WebSocket URL, so one page serves every environment:
  {"websocketUrl": "wss://.../prod", "windowSeconds": N, "environment": "aws"}.
- `.url` is the page's HTTPS URL; it is also a stack output (DashboardUrl).

The WebSocket token is not in config.json (anyone can fetch that): it reaches the page
in the URL fragment, https://<domain>/#token=..., which browsers never send to a server
(docs/protocol.md).
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from data_stack.nag import acknowledge

REPO_ROOT = Path(__file__).resolve().parents[2]

# Kept equal to acme_telemetry.local.web.CSP, except that the page on AWS only ever needs
# wss: (API Gateway); a test checks both.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' wss:; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'none'"
)


class DashboardSite(Construct):
    """Private S3 + CloudFront (OAC, HTTPS only, security headers) + config.json."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        site_dir: Path | str,
        websocket_url: str,
        window_seconds: float = 5.0,
        environment: str = "aws",
        price_class: cloudfront.PriceClass = cloudfront.PriceClass.PRICE_CLASS_100,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.DESTROY,
    ) -> None:
        super().__init__(scope, id)
        site = Path(site_dir)
        if not site.is_absolute() and not site.exists():
            site = REPO_ROOT / site
        if not (site / "index.html").is_file():
            raise ValueError(
                f"DashboardSite site_dir={str(site_dir)!r} has no index.html: build the page first "
                "with `node dashboard/build.mjs` (it writes dashboard/dist)"
            )
        if (site / "config.json").exists():
            raise ValueError(f"DashboardSite site_dir={str(site_dir)!r} contains config.json; the construct writes it")
        if not window_seconds or window_seconds <= 0:
            raise ValueError(f"DashboardSite window_seconds must be > 0, got {window_seconds!r}")
        if not cdk.Token.is_unresolved(websocket_url) and not str(websocket_url).startswith("wss://"):
            raise ValueError(f"DashboardSite websocket_url must be a wss:// URL, got {websocket_url!r}")
        auto_delete = removal_policy == cdk.RemovalPolicy.DESTROY

        self.log_bucket = s3.Bucket(
            self,
            "LogBucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            # CloudFront standard logs are delivered with ACLs; S3 access logs need the
            # logging service principal (CDK adds the bucket policy).
            object_ownership=s3.ObjectOwnership.OBJECT_WRITER,
            lifecycle_rules=[s3.LifecycleRule(expiration=cdk.Duration.days(90))],
            removal_policy=removal_policy,
            auto_delete_objects=auto_delete,
        )
        acknowledge(
            self.log_bucket, "AwsSolutions-S1", "This is the access-log bucket of the dashboard site; logging it into itself would loop."
        )

        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=False,
            server_access_logs_bucket=self.log_bucket,
            server_access_logs_prefix="s3-access/",
            removal_policy=removal_policy,
            auto_delete_objects=auto_delete,
        )

        headers = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            comment="ACME dashboard: CSP, HSTS, nosniff, no framing, no referrer",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=CONTENT_SECURITY_POLICY, override=True
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(frame_option=cloudfront.HeadersFrameOption.DENY, override=True),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=cdk.Duration.days(365), include_subdomains=True, override=True
                ),
                xss_protection=cloudfront.ResponseHeadersXSSProtection(protection=True, mode_block=True, override=True),
            ),
        )

        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="ACME telemetry dashboard",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                response_headers_policy=headers,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                compress=True,
            ),
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=price_class,
            enable_logging=True,
            log_bucket=self.log_bucket,
            log_file_prefix="cloudfront/",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR1",
            "The dashboard shows aggregate, PII-free KPIs to operators who may travel; no country needs blocking.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR2",
            "Static page of a demo dashboard behind CloudFront's built-in Shield Standard; the data path (WebSocket) has its own authorizer. WAF's fixed monthly cost is not justified here.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR4",
            "The distribution uses the default *.cloudfront.net certificate, for which CloudFront fixes the viewer policy (TLSv1); with a custom domain and certificate, set minimum_protocol_version TLS_V1_2_2021 (CDK warns that it has no effect without one, so it is not set here).",
        )

        self.config = {"websocketUrl": websocket_url, "windowSeconds": window_seconds, "environment": environment}
        self.deployment = s3deploy.BucketDeployment(
            self,
            "Deploy",
            sources=[s3deploy.Source.asset(str(site)), s3deploy.Source.json_data("config.json", self.config)],
            destination_bucket=self.bucket,
            distribution=self.distribution,
            distribution_paths=["/*"],
            # File names are not content-hashed, so browsers revalidate (ETag) every load.
            cache_control=[s3deploy.CacheControl.no_cache()],
            prune=True,
            memory_limit=256,
        )

        self._acknowledge_deployment_handler()

        self.url = f"https://{self.distribution.distribution_domain_name}/"
        cdk.CfnOutput(
            self,
            "DashboardUrl",
            value=self.url,
            description="The dashboard page; append #token=<the DashboardToken secret> (see docs/protocol.md)",
        )

    def _acknowledge_deployment_handler(self) -> None:
        """cdk-nag findings on CDK's own BucketDeployment handler (a singleton per stack)."""
        role = self.deployment.handler_role
        handler = role.node.scope
        acknowledge(
            handler,
            "AwsSolutions-L1",  # type: ignore[arg-type]
            "CDK's BucketDeployment handler: its runtime is pinned by aws-cdk-lib and moves with CDK upgrades, not set by us.",
        )
        acknowledge(
            role,
            "AwsSolutions-IAM4",
            "CDK's BucketDeployment handler writes its own CloudWatch logs; this is the managed policy CDK attaches for that.",
            policy=iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSLambdaBasicExecutionRole"),
        )
        policy = role.node.find_child("DefaultPolicy")
        why = (
            "CDK's BucketDeployment handler syncs the page from the CDK asset bucket into this site bucket "
            "(object keys are unknown at synth) and invalidates this distribution (CloudFront has no "
            "resource-level permission for CreateInvalidation on the handler's generated policy)."
        )
        # The page's asset (Source.asset binds an s3_assets.Asset named Asset1 under the
        # deployment): its bucket is the bootstrap asset bucket, whatever its name.
        page_asset = self.deployment.node.find_child("Asset1")
        acknowledge(
            policy, "AwsSolutions-IAM5", why, action=("s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:DeleteObject*", "s3:Abort*")
        )
        acknowledge(
            policy,
            "AwsSolutions-IAM5",
            why,
            resource=[
                self.bucket.arn_for_objects("*"),
                "*",
                page_asset.bucket.arn_for_objects("*"),  # type: ignore[attr-defined]
            ],
        )
