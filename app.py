#!/usr/bin/env python3
"""CDK entry: pick the config profile, build the five stacks, check them with cdk-nag.

    npx cdk synth --all -c profile=dev      # or -c profile=prod
    npx cdk deploy --all -c profile=prod -c account=111122223333

Optional context: account, region (override the profile's).
- account: `-c account=`, else the CLI's CDK_DEFAULT_ACCOUNT (set when it found
  credentials), else a placeholder, so synth works offline without credentials.
- region: `-c region=`, else the CLI's CDK_DEFAULT_REGION when the CLI knows the account
  (it resolved both from the same credentials and profile), else the profile's region.
  Without credentials the CLI still sets CDK_DEFAULT_REGION (to us-east-1 by default),
  so it is not taken then.
"""

from __future__ import annotations

import os
import sys

import aws_cdk as cdk

from data_stack.config import ConfigError, load_profile
from data_stack.stacks import build


def main() -> None:
    app = cdk.App()
    profile = app.node.try_get_context("profile") or "dev"
    cli_account = os.environ.get("CDK_DEFAULT_ACCOUNT")
    overrides = {
        "account": app.node.try_get_context("account") or cli_account,
        "region": app.node.try_get_context("region") or (os.environ.get("CDK_DEFAULT_REGION") if cli_account else None),
    }
    try:
        config = load_profile(profile, overrides)
    except ConfigError as exc:
        sys.exit(f"cdk app: {exc}")
    build(app, config)
    app.synth()


if __name__ == "__main__":
    main()
