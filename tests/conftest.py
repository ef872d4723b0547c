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
    "EMAIL_QUEUE_URL": "https://sqs.eu-central-1.amazonaws.com/000000000000/therapy-platform-unit-emails",
    "EVENT_BUS_NAME": "therapy-platform-unit",
    "LEGAL_EMAIL": "team@vermittlung.test",
    "LEGAL_ORGANISATION": "Therapieplatz-Vermittlung Test e. V.",
    "LEGAL_POSTCODE_CITY": "10969 Berlin",
    "LEGAL_STREET": "Lindenstraße 1",
    "MAIL_FROM": "Therapieplatz-Vermittlung <team@vermittlung.test>",
    "REPLY_DOMAIN": "antwort.vermittlung.test",
    "REPLY_MAILDIR": "/nonexistent/unit-test-maildir",
}
for _name, _value in UNIT_TEST_ENVIRONMENT.items():
    os.environ.setdefault(_name, _value)
