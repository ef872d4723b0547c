"""Test configuration shared by every suite: import paths and markers."""

from __future__ import annotations

import os
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

# What every function's composition root (<service>/bootstrap.py) validates when a handler module
# is imported, as the deployed template sets it. Unit tests replace the adapters with in-memory
# fakes, so these values are never used to reach anything; integration tests set their own.
UNIT_TEST_ENVIRONMENT: dict[str, str] = {
    "EVENT_BUS_NAME": "therapy-platform-unit",
    "RAW_BUCKET": "therapy-platform-unit-directory-raw",
}
for _name, _value in UNIT_TEST_ENVIRONMENT.items():
    os.environ.setdefault(_name, _value)
