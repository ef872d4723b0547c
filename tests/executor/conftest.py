"""The executor package is not installed in the project venv: its stdlib-only modules load from source."""

from __future__ import annotations

import sys
from pathlib import Path

EXECUTOR_SOURCE = Path(__file__).resolve().parents[2] / "infra" / "localstack_executor"
if str(EXECUTOR_SOURCE) not in sys.path:
    sys.path.insert(0, str(EXECUTOR_SOURCE))
