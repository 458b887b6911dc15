#!/usr/bin/env bash
# Lints template.yaml with the pinned SAM CLI and cfn-lint; any finding, warnings included,
# fails. Offline: no AWS account or network needed.
set -euo pipefail

cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
# sam validate builds an AWS client even with --lint; a region is all it needs.
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export SAM_CLI_TELEMETRY=0

for tool in .venv/bin/sam .venv/bin/cfn-lint; do
    [ -x "$tool" ] || { echo "check-template: $tool missing; run 'make deps'" >&2; exit 1; }
done

echo "check-template: sam validate --lint" >&2
.venv/bin/sam validate --lint --template template.yaml

echo "check-template: cfn-lint" >&2
.venv/bin/cfn-lint template.yaml

echo "check-template: ok" >&2
