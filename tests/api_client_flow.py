"""One staff flow written against the generated Python client (`therapy_api_client`, made by
infra/tools/api_client.py from the OpenAPI document): register patients, add a therapist, start
the searches, run a round that sends at once, record the therapist's response.

The e2e test (tests/e2e/test_api_client_flow.py) drives it through the deployed stack; the
integration test (tests/integration/test_api_client.py) type-checks this module with mypy
--strict against the freshly generated package, so a document change that breaks the client's
types breaks a test. The project's own mypy run sees `therapy_api_client` as unknown (it is
generated, not committed; pyproject.toml)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from therapy_api_client import AuthenticatedClient
from therapy_api_client.api.bundles import create_bundles, record_bundle_response
from therapy_api_client.api.patients import create_patient
from therapy_api_client.api.searches import start_search
from therapy_api_client.api.therapists import create_therapist
from therapy_api_client.models import (
    BundleResponseRequest,
    MemberOutcome,
    MemberResponse,
    Patient,
    PatientDraft,
    PatientSearch,
    Problem,
    ResponseRecorded,
    RoundRequest,
    RoundResult,
    SearchDraft,
    Symptom,
    Therapist,
    TherapistDraft,
    TherapyProcedure,
)
from therapy_api_client.types import Response

Parsed = TypeVar("Parsed")


class UnexpectedAnswerError(AssertionError):
    """An answer other than the one the flow expects, with the API's problem details."""


def expect(response: Response[Problem | Parsed], status: int, kind: type[Parsed]) -> Parsed:
    """The parsed body of an answer with `status`, or UnexpectedAnswerError naming what came instead."""
    if response.status_code != status or not isinstance(response.parsed, kind):
        raise UnexpectedAnswerError(f"expected {status}, got {response.status_code}: {response.content!r}")
    return response.parsed


def eventually(probe: Callable[[], Parsed | None], timeout_s: float = 90, every: float = 1.0) -> Parsed:
    """Ask until `probe` answers (the matching read models follow events, a moment behind)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise UnexpectedAnswerError("no answer before the deadline")
        time.sleep(every)


def register_patient(client: AuthenticatedClient, postcode: str, tag: str) -> Patient:
    draft = PatientDraft(
        first_name="Ümit",
        last_name=f"Client{tag}",
        postcode=postcode,
        symptoms=[Symptom.DEPRESSION, Symptom.ANXIETY],
        max_travel_km=10,
    )
    response = create_patient.sync_detailed(client=client, body=draft)
    patient = expect(response, 201, Patient)
    if not response.headers["Location"].endswith(str(patient.id)):
        raise UnexpectedAnswerError(f"Location {response.headers['Location']} does not name the patient")
    return patient


def add_therapist(client: AuthenticatedClient, postcode: str, tag: str) -> Therapist:
    draft = TherapistDraft(
        first_name="Jörg",
        last_name=f"Client{tag}",
        postcode=postcode,
        email=f"client-{tag}@example.de",
        procedures=[TherapyProcedure.VT],
    )
    return expect(create_therapist.sync_detailed(client=client, body=draft), 201, Therapist)


def begin_search(client: AuthenticatedClient, patient_id: uuid.UUID) -> PatientSearch:
    def attempt() -> PatientSearch | None:
        response = start_search.sync_detailed(client=client, body=SearchDraft(patient_id=patient_id))
        if response.status_code == 404:  # the patient has not reached the matching service yet
            return None
        return expect(response, 201, PatientSearch)

    return eventually(attempt)


def send_round(client: AuthenticatedClient, therapist_id: uuid.UUID, searches: int) -> RoundResult:
    """A round for this therapist, sent at once, once the therapist and `searches` patients are
    in the matching service's read models."""

    def ready() -> RoundResult | None:
        dry = create_bundles.sync_detailed(
            client=client, body=RoundRequest(dry_run=True, therapist_ids=[therapist_id])
        )
        plan = expect(dry, 200, RoundResult)
        bundles = [b for b in plan.bundles if b.therapist_id == therapist_id]
        return plan if bundles and len(bundles[0].members) >= searches else None

    eventually(ready)
    sent = create_bundles.sync_detailed(
        client=client, body=RoundRequest(therapist_ids=[therapist_id], send_immediately=True)
    )
    return expect(sent, 201, RoundResult)


def respond(
    client: AuthenticatedClient, bundle_id: uuid.UUID, accepted: uuid.UUID, search_ids: list[uuid.UUID]
) -> ResponseRecorded:
    """The therapist accepts one patient and has no capacity for the others."""
    members = [
        MemberResponse(
            search_id=search_id,
            outcome=MemberOutcome.ACCEPTED if search_id == accepted else MemberOutcome.REJECTED_CAPACITY,
        )
        for search_id in search_ids
    ]
    response = record_bundle_response.sync_detailed(
        bundle_id, client=client, body=BundleResponseRequest(members=members)
    )
    return expect(response, 200, ResponseRecorded)
