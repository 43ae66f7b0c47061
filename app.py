#!/usr/bin/env python3
"""CDK entry: pick the config profile, build the five stacks, check them with cdk-nag.

    npx cdk synth --all -c profile=dev      # or -c profile=prod
    npx cdk deploy --all -c profile=prod -c account=111122223333

Optional context: account, region (override the profile's). Without an account the
CLI's CDK_DEFAULT_ACCOUNT is used, and without credentials a placeholder, so synth
works offline.
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
    overrides = {
        "account": app.node.try_get_context("account") or os.environ.get("CDK_DEFAULT_ACCOUNT"),
        "region": app.node.try_get_context("region"),
    }
    try:
        config = load_profile(profile, overrides)
    except ConfigError as exc:
        sys.exit(f"cdk app: {exc}")
    build(app, config)
    app.synth()


if __name__ == "__main__":
    main()
