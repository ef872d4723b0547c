#!/usr/bin/env bash
# Installs everything the project needs on a fresh machine, idempotently:
#   .venv/               project virtualenv (Python 3.13, the Lambda runtime's version)
#   .state/localstack-venv, .state/lambda-runtime-python3.13   (created by `localcloud up` / tests)
set -euo pipefail
cd "$(dirname "$0")/../.."

find_python313() {
  for candidate in python3.13 /root/.pyenv/versions/3.13*/bin/python3.13 /usr/bin/python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))'; then
      command -v "$candidate"
      return 0
    fi
  done
  echo "install: Python 3.13 is required (the functions' Lambda runtime)" >&2
  return 1
}

PY=$(find_python313)
# A .venv of an earlier runtime (3.11) is replaced, not patched.
if [ -x .venv/bin/python ] && ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))'; then
  echo "install: .venv is not Python 3.13: creating it anew"
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  echo "install: creating .venv with $PY"
  "$PY" -m venv .venv
fi

# Reinstall only when the dependency declarations changed.
stamp=.venv/.install-stamp
want=$(cat pyproject.toml layers/*/requirements.txt infra/migrations/requirements.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "install: installing Python packages into .venv (a few minutes on a fresh machine)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[dev]'
  echo "$want" > "$stamp"
fi
echo "install: project environment ready (.venv)"
