#!/usr/bin/env bash
# A second local cloud beside the first (issue 13: "changing every port through the environment
# gives a working demo"): every server on a free port other than the defaults (PG_PORT, KAFKA_PORT,
# SMTP_PORT, DIRECTORY_PORT, IDENTITY_PORT, LOCALSTACK_PORT), its own state directory
# (.state-second-stack/, or SECOND_STACK_STATE_DIR). It runs the demo there, which fails unless the
# round's inquiry emails arrive in that stack's own Maildir, then `localcloud check-ports`, which
# fails if a deployed function names a local port none of that stack's servers uses. It stops the
# servers it started (by PID, `localcloud down`) and leaves the first stack alone.
# Takes about 4 minutes (2 cores; about 1.5 more on the first run, which installs LocalStack).
set -euo pipefail
cd "$(dirname "$0")/../.."
export SAM_CLI_TELEMETRY=0 PYTHONDONTWRITEBYTECODE=1
bin=.venv/bin

export LOCALCLOUD_STATE_DIR="${SECOND_STACK_STATE_DIR:-$PWD/.state-second-stack}"
if [ "$(realpath -m "$LOCALCLOUD_STATE_DIR")" = "$(realpath -m .state)" ]; then
  echo "second_stack.sh: the second stack needs a state directory of its own, not .state" >&2
  exit 2
fi

# Six free ports, none of them a default one (those belong to the first stack, running or not).
read -r LOCALSTACK_PORT PG_PORT KAFKA_PORT SMTP_PORT DIRECTORY_PORT IDENTITY_PORT < <(
  $bin/python - <<'EOF'
import socket
defaults = {4566, 54329, 19092, 2525, 8117, 8118}
held, ports = [], []
while len(ports) < 6:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    held.append(s)
    if s.getsockname()[1] not in defaults:
        ports.append(s.getsockname()[1])
print(*ports)
EOF
)
export LOCALSTACK_PORT PG_PORT KAFKA_PORT SMTP_PORT DIRECTORY_PORT IDENTITY_PORT

# A fresh stack each run; the virtualenvs (LocalStack, the Lambda runtime) are kept: installing
# them takes longer than the rest of the start. The logs of the last run stay until the next one.
mkdir -p "$LOCALCLOUD_STATE_DIR"
find "$LOCALCLOUD_STATE_DIR" -mindepth 1 -maxdepth 1 \
  ! -name localstack-venv ! -name 'lambda-runtime-*' -exec rm -rf {} +

stop_second_stack() {
  echo "== stopping the second stack"
  $bin/localcloud down || true
}
trap stop_second_stack EXIT

started=$(date +%s)
echo "== second stack: state $LOCALCLOUD_STATE_DIR; ports localstack $LOCALSTACK_PORT, postgres $PG_PORT," \
  "kafka $KAFKA_PORT, smtp $SMTP_PORT, directory $DIRECTORY_PORT, identity $IDENTITY_PORT"
$bin/localcloud demo
echo "== second stack: every port the functions were deployed with"
$bin/localcloud check-ports
echo "== second stack: demo and port check passed in $(( $(date +%s) - started )) s"
