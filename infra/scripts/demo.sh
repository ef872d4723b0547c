#!/usr/bin/env bash
# The main job: install, bring the local cloud up, deploy, migrate, seed, drive a request through
# the architecture and print a summary. The stack keeps running; `.venv/bin/localcloud down` stops it.
set -euo pipefail
cd "$(dirname "$0")/../.."
export SAM_CLI_TELEMETRY=0
infra/scripts/install.sh
exec .venv/bin/localcloud demo
