"""The typed Python client generated from the OpenAPI document (infra/tools/api_client.py, into
build/api-client) drives one staff flow through the deployed local stack: register patients ->
start their searches -> a round sent at once -> the therapist's response places one patient.
Only the generated client talks to the API here; tokens come from the local identity provider."""

from __future__ import annotations

import importlib
import random
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localcloud.identity import issue_token
from tools import api_client

pytestmark = pytest.mark.e2e

USER = "e2e-client@praxisvermittlung.example.de"
# Small towns far apart (as in test_matching_flow): leftovers of earlier runs rarely compete.
# Towns of their own: test_matching_flow.py asserts the exact members of its bundles.
TOWNS = ["97070", "93047", "87435", "54290", "24103"]


@pytest.fixture(scope="module")
def generated_client() -> Iterator[Path]:
    """Generate the client (as a frontend team would), importable for this module's tests."""
    output = api_client.DEFAULT_OUTPUT
    api_client.generate(output)
    sys.path.insert(0, str(output))
    yield output
    sys.path.remove(str(output))


@pytest.fixture
def client(generated_client: Path, base_url: str) -> Iterator[Any]:
    generated = importlib.import_module("therapy_api_client")
    token = issue_token(("staff",), user=USER, ttl_s=3600)
    with generated.AuthenticatedClient(base_url=base_url, token=token, timeout=60.0) as made:
        yield made


def test_register_search_round_and_response_through_the_generated_client(client: Any, base_url: str) -> None:
    flow = importlib.import_module("api_client_flow")
    cancel = importlib.import_module("therapy_api_client.api.searches.update_search")
    models = importlib.import_module("therapy_api_client.models")
    postcode = random.choice(TOWNS)
    tag = uuid.uuid4().hex[:8]
    therapist = flow.add_therapist(client, postcode, tag)
    patients = [flow.register_patient(client, postcode, f"{tag}{n}") for n in range(3)]
    searches = [flow.begin_search(client, patient.id) for patient in patients]
    try:
        result = flow.send_round(client, therapist.id, len(searches))
        (bundle,) = [b for b in result.bundles if b.therapist_id == therapist.id]
        assert bundle.status == models.BundleStatus.SENT and bundle.bundle_id is not None
        members = [member.search_id for member in bundle.members]
        assert {s.id for s in searches} <= set(members)

        recorded = flow.respond(client, bundle.bundle_id, searches[0].id, members)

        assert [p.search_id for p in recorded.placements] == [searches[0].id]
        assert recorded.bundle.response_type == models.ResponseType.PARTIAL_ACCEPTANCE
        assert recorded.next_contact_allowed_on > result.run_date
    finally:
        cancelled = models.SearchPatch(status=models.SearchPatchStatusType0.CANCELLED)
        # Leave nothing active for later tests in these towns (a placed search stays placed). The
        # change needs If-Match like any staff edit; "*" because the cleanup edits whatever it finds.
        for index, search in enumerate(searches):
            answer = cancel.sync_detailed(search.id, client=client, body=cancelled, if_match="*")
            assert index == 0 or answer.status_code == 200, answer.content  # the first one was placed
