#!/usr/bin/env python3
"""CDK entry: pick the config profile, build the six stacks, check them with cdk-nag.

    npx cdk synth --all -c profile=dev      # or -c profile=prod
    npx cdk deploy --all -c profile=prod -c account=111122223333

Optional context (README, "Deploy to AWS"):
- account: `-c account=`, else the CLI's CDK_DEFAULT_ACCOUNT (set when it found
  credentials), else a placeholder, so synth works offline without credentials.
- region: `-c region=`, else the CLI's CDK_DEFAULT_REGION when the CLI knows the account
  (it resolved both from the same credentials and profile), else the profile's region.
  Without credentials the CLI still sets CDK_DEFAULT_REGION (to us-east-1 by default),
  so it is not taken then.
- stage: `-c stage=NAME` qualifies every stack and physical name (default: the profile),
  so two copies of a profile can live side by side in one account and region.
- alarmEmail: an email address subscribed to the alarm topic.
- generatorEnabled: true/false, the generator schedule's state (dev: false).
- incidents: incidents for the generator to rehearse, e.g.
  "cdn=fastly,at=2026-12-01T19:00:00Z,for=10m,kind=outage" (';' between several).
- apiGatewayAccount: true to let this app own the account's API Gateway CloudWatch role.
"""

from __future__ import annotations

import os
import sys

import aws_cdk as cdk

from data_stack.config import ConfigError, load_profile, parse_flag
from data_stack.stacks import build


def main() -> None:
    app = cdk.App()
    ctx = app.node.try_get_context
    profile = ctx("profile") or "dev"
    cli_account = os.environ.get("CDK_DEFAULT_ACCOUNT")
    try:
        overrides = {
            "account": ctx("account") or cli_account,
            "region": ctx("region") or (os.environ.get("CDK_DEFAULT_REGION") if cli_account else None),
            "stage": ctx("stage"),
            "alarms.email": ctx("alarmEmail"),
            "generator.schedule_enabled": parse_flag("generatorEnabled", ctx("generatorEnabled")),
            "generator.incidents": ctx("incidents"),
            "manage_api_gateway_account": parse_flag("apiGatewayAccount", ctx("apiGatewayAccount")),
        }
        config = load_profile(profile, overrides)
    except ConfigError as exc:
        sys.exit(f"cdk app: {exc}")
    build(app, config)
    app.synth()


if __name__ == "__main__":
    main()
