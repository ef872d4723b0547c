"""Feature flags through the deployed local stack: the admin view reads the deployed document
(the template's SSM parameter; AppConfig stands in for it only in AWS), staff may not read it,
and a scheduled round invoked with the sample event skips every region the document pauses.
The test pauses all regions (so the round writes nothing) and restores the deployed document."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from cloud_support import ApiCaller, eventually
from localcloud import postgres, stack
from localcloud.aws import client
from therapy_platform.platform.feature_flags import Flag

pytestmark = pytest.mark.e2e

ADMIN = ApiCaller("admin", user="e2e-flags-admin@praxisvermittlung.example.de")
STAFF = ApiCaller("staff", user="e2e-flags-staff@praxisvermittlung.example.de")
EVENTS = Path(__file__).resolve().parents[2] / "events"
PARAMETER = "/therapy-platform/local/feature-flags"


@pytest.fixture
def flags_document(deployed: stack.StackInfo) -> Iterator[dict[str, Any]]:
    """The deployed document; whatever the test writes, the deployed one is put back."""
    ssm = client("ssm")
    original = ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"]
    yield json.loads(original)
    ssm.put_parameter(Name=PARAMETER, Value=original, Type="String", Overwrite=True)


def test_admins_read_the_flags_evaluated_for_a_subject_and_staff_may_not(
    base_url: str, flags_document: dict[str, Any]
) -> None:
    url = f"{base_url}/api/v2/admin/feature-flags"
    params = {"subject": "e2e-flags-subject", "role": "staff", "region": "10"}
    answer = ADMIN.get(url, params=params, timeout=60)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["store"] == f"ssm:{PARAMETER}" and body["roles"] == ["auditor", "staff"]
    assert {flag["name"] for flag in body["flags"]} == {flag.value for flag in Flag} == set(flags_document)
    denied = STAFF.get(url, params=params, timeout=60)
    assert denied.status_code == 403 and denied.json()["required_role"] == "admin"


def _active_regions() -> list[str]:
    engine = create_engine(postgres.admin_url())
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT DISTINCT left(data->>'postcode', 2) FROM matching_service.therapist_profiles"
                    " WHERE data->>'status' = 'active' AND data->>'postcode' ~ '^[0-9]{2}'"
                )
            ).scalars()
            return sorted(rows)
    finally:
        engine.dispose()


def test_a_scheduled_round_skips_the_regions_the_document_pauses(
    base_url: str, deployed: stack.StackInfo, flags_document: dict[str, Any]
) -> None:
    # At least one active therapist, so there is a region to pause.
    tag = uuid.uuid4().hex[:8]
    created = STAFF.post(
        f"{base_url}/api/v2/therapists",
        json={
            "first_name": "Jörg",
            "last_name": f"Flaggen{tag}",
            "postcode": "18055",
            "email": f"praxis-flags-{tag}@example.de",
            "procedures": ["VT"],
        },
        timeout=60,
    )
    assert created.status_code == 201, created.text
    assert eventually(lambda: "18" in _active_regions()), (
        "the therapist never reached the matching read model"
    )
    paused = dict(flags_document)
    paused[Flag.AUTOMATIC_ROUNDS.value] = {
        "default": True,
        "rules": {
            "every region paused": {
                "when_match": False,
                "conditions": [{"action": "IN", "key": "region", "value": [f"{n:02d}" for n in range(100)]}],
            }
        },
    }
    client("ssm").put_parameter(Name=PARAMETER, Value=json.dumps(paused), Type="String", Overwrite=True)
    regions = _active_regions()
    event = json.loads((EVENTS / "bundle_round" / "scheduled.json").read_text())
    result = stack.invoke("BundleRoundFunction", event, info=deployed)
    assert result.error is None, result.payload
    summary = result.payload
    assert summary["bundles"] == 0 and summary["members"] == 0
    assert set(regions) <= set(summary["regions_paused"]) and "18" in summary["regions_paused"]
