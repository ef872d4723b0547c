"""Test configuration shared by every suite: import paths and markers."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (
    ROOT / "tests",
    ROOT / "tests" / "unit",
    ROOT / "infra",
    ROOT / "infra" / "migrations",
    ROOT / "layers" / "shared",
):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
