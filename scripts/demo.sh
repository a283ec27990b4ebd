#!/usr/bin/env bash
# Runs the xvs demo on its embedded default configuration.
# Usage: scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cc >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential
fi
exec cargo run --release --quiet -p xvs-dataplane --example demo
