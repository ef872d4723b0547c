#!/usr/bin/env bash
# The whole test suite: static checks, then unit, integration and end-to-end tests against the
# local cloud (started here if it is not running, and stopped again at the end in that case).
# The developer's fast lane (static checks and unit tests only) is `make unit`.
set -euo pipefail
cd "$(dirname "$0")/../.."
export SAM_CLI_TELEMETRY=0 PYTHONDONTWRITEBYTECODE=1
bin=.venv/bin

infra/scripts/install.sh
infra/scripts/install_chromium.sh

echo "== ruff";              $bin/ruff check .
echo "== mypy";              $bin/mypy
echo "== lint-imports";      PYTHONPATH=layers/shared $bin/lint-imports
echo "== sam validate --lint"; $bin/sam validate --lint
echo "== event schemas";     PYTHONPATH=infra:layers/shared $bin/python -m tools.event_schemas --check
echo "== OpenAPI document";  PYTHONPATH=infra:layers/shared $bin/python -m tools.openapi --check

started_here=no
if ! $bin/localcloud status >/dev/null 2>&1; then
  started_here=yes
fi
cleanup() {
  if [ "$started_here" = yes ]; then
    echo "== stopping the local cloud"
    $bin/localcloud down || true
  fi
}
trap cleanup EXIT

echo "== local cloud up (PostgreSQL, Tansu, SMTP, LocalStack; sam build + deploy)"
$bin/localcloud up

echo "== pytest (unit, integration, end-to-end; thorough Hypothesis profile)"
$bin/python -m pytest tests --hypothesis-profile=thorough "$@"

echo "== a second local cloud beside the first, every port moved: the demo and its emails (about 4 min)"
infra/scripts/second_stack.sh
