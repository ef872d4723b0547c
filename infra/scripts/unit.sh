#!/usr/bin/env bash
# The developer's fast lane (`make unit`): static checks and the pure, in-memory tests, in under a
# minute on two cores. Needs no local cloud; unit tests cannot open network sockets (tests/conftest.py).
#   ruff, lint-imports (the architecture contracts), mypy (incremental, beside the tests: a core of
#   its own), pytest tests/unit with the fast Hypothesis profile (few examples per property) and
#   without the tests marked `slow`. `make test` runs all of it thoroughly, and everything else.
# Every step runs even when an earlier one fails; the summary at the end names the failures.
# Extra arguments go to pytest (`make unit ARGS="-k consumer"`, or infra/scripts/unit.sh -x).
# UNIT_WORKERS=n runs the tests in n pytest-xdist workers (default: one per core beyond two; on two
# cores a second worker pays ~7 s of collection and competes with mypy, which costs more than it saves).
# VENV=path uses that virtualenv as it is instead of installing into .venv.
set -uo pipefail
cd "$(dirname "$0")/../.."

if [ -n "${VENV:-}" ]; then
  bin=$VENV/bin
else
  infra/scripts/install.sh || exit 1
  bin=.venv/bin
fi
cores=$(nproc 2>/dev/null || echo 2)
workers=${UNIT_WORKERS:-$((cores > 2 ? cores - 1 : 0))}
failed=()

echo "== ruff"
$bin/ruff check . || failed+=(ruff)

echo "== lint-imports"
PYTHONPATH=layers/shared $bin/lint-imports || failed+=(lint-imports)

mypy_log=$(mktemp)
trap 'rm -f "$mypy_log"' EXIT
PYTHONPATH=layers/shared:infra $bin/mypy >"$mypy_log" 2>&1 &
mypy_pid=$!

echo "== pytest tests/unit (fast profile; mypy runs beside it)"
parallel=()
if [ "$workers" != 0 ]; then parallel=(-n "$workers"); fi
$bin/python -m pytest tests/unit -q --hypothesis-profile=fast -m "not slow" "${parallel[@]}" "$@" || failed+=(pytest)

echo "== mypy"
wait "$mypy_pid" || failed+=(mypy)
cat "$mypy_log"

if [ "${#failed[@]}" != 0 ]; then
  echo "make unit: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "make unit: all green"
