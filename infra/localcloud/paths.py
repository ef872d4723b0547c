"""Where the local cloud keeps its state. Everything lives under the ignored `.state/` folder."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = Path(os.environ.get("LOCALCLOUD_STATE_DIR", PROJECT_ROOT / ".state")).resolve()
PID_DIR = STATE_DIR / "pids"
LOG_DIR = STATE_DIR / "logs"


def service_dir(name: str) -> Path:
    """State folder of one local service (created on demand)."""
    path = STATE_DIR / name
    path.mkdir(parents=True, exist_ok=True)
    return path
