"""The sample events under events/ for the communication functions stay valid: each runs
through its function (in-memory fakes) with the expected result."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from communication_state_fakes import (
    THERAPIST_SERVICE,
    FakeInbox,
    deliver,
    envelope,
    patient_payload,
    staff_email_context,
    state_world,
    therapist_payload,
)
from support import FakeLambdaContext, call, load_function
from therapy_platform.communication.bootstrap import CommunicationService, ReplyIntakeService
from therapy_platform.communication.domain.emails import EmailKind
from therapy_platform.contracts.contacts import ContactState, TherapistContactCard
from therapy_platform.contracts.therapy import Gender
from therapy_platform.platform.feature_flags import FixedFlags
from therapy_platform.platform.idempotency import InMemoryIdempotencyStore

EVENTS = Path(__file__).resolve().parents[2] / "events"
NOW = datetime(2026, 11, 23, 6, 5, tzinfo=UTC)


def sample(path: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / path).read_text(encoding="utf-8")))


def _people_of_the_samples() -> None:
    """The patient and therapist services' records of the people the samples name by id (the
    events carry no names or contacts: the communication service looks them up)."""
    for therapist_id, email, windows in (
        ("d76d4330-f144-4bea-b0c1-1fdecb91ce37", "praxis.mueller@example.org", {}),
        ("21da8978-206f-4c66-b1e0-c07e9e115e4b", None, {"tue": ["08:00-09:00"], "thu": ["13:00-14:00"]}),
    ):
        THERAPIST_SERVICE[uuid.UUID(therapist_id)] = TherapistContactCard(
            id=uuid.UUID(therapist_id),
            state=ContactState.FOUND,
            salutation="Frau",
            gender=Gender.FEMALE,
            title="Dr.",
            first_name="Anna",
            last_name="Müller",
            email=email,
            phone="030 1234567",
            phone_windows=windows,
        )
    patient_payload(uuid.UUID("3fd42359-92ed-4f45-9a1a-fe878b33e968"), flagged=True)
    therapist_payload(uuid.UUID("419521fe-0e97-4cf3-ad16-34b4b4653252"))


def test_the_event_samples_run_in_order_without_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    _people_of_the_samples()
    w = state_world(now=NOW)
    app = load_function("communication_events")
    monkeypatch.setattr(app, "service", w.context)
    monkeypatch.setattr(app.consumer, "queues", None)  # nothing here may reach SQS
    for name in ("sqs_bundle_sent.json", "sqs_people_and_placement.json", "sqs_bundle_closed.json"):
        response = app.lambda_handler(sample(f"communication_events/{name}"), FakeLambdaContext())
        assert response == {"batchItemFailures": []}, name
    kinds = sorted(email.kind.value for email in w.database.emails.values())
    assert kinds == sorted(
        [
            EmailKind.BUNDLE_INQUIRY.value,
            EmailKind.STAFF_UNKNOWN_LOCATION_ALERT.value,
            EmailKind.WITHDRAWAL_NOTICE.value,
            EmailKind.PATIENT_PLACE_FOUND.value,
        ]
    )
    assert [call.status.value for call in w.database.state.calls.values()] == ["cancelled"]


def test_the_scheduled_samples_run(monkeypatch: pytest.MonkeyPatch) -> None:
    w = state_world(now=NOW)
    reminders, intake = load_function("bundle_reminders"), load_function("reply_intake")
    monkeypatch.setattr(reminders, "service", w.context)
    monkeypatch.setattr(reminders, "flags", FixedFlags())
    monkeypatch.setattr(
        intake, "service", ReplyIntakeService(w.context.unit_of_work, FakeInbox(), w.context.addressing)
    )
    reminded = reminders.lambda_handler(sample("bundle_reminders/scheduled.json"), FakeLambdaContext())
    taken_in = intake.lambda_handler(sample("reply_intake/scheduled.json"), FakeLambdaContext())
    assert (reminded["due"], taken_in["looked_at"]) == (0, 0)


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("bundle_history.json", 200),
        ("list_calls.json", 200),
        ("read_call.json", 404),
        ("complete_call.json", 404),
    ],
)
def test_the_api_samples_answer(name: str, status: int, monkeypatch: pytest.MonkeyPatch) -> None:
    w = state_world(now=NOW)
    app = load_function("communication_api")
    monkeypatch.setattr(app, "service", CommunicationService(w.context.unit_of_work, w.clock))
    assert call(app.lambda_handler, sample(f"communication_api/{name}"))[0] == status


SAMPLE_PATIENT = "8a4ff518-6ca0-4af1-aba7-b142d40ae714"  # the patient the emails_api samples name


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("list_emails.json", 200),
        ("read_email.json", 404),
        ("send_email.json", 201),
        ("patient_communication.json", 200),
        ("therapist_communication.json", 404),
    ],
)
def test_the_emails_api_samples_answer(name: str, status: int, monkeypatch: pytest.MonkeyPatch) -> None:
    w = state_world(now=NOW)
    deliver(
        w.context,
        envelope("patient.created", patient_payload(uuid.UUID(SAMPLE_PATIENT)), at=NOW),
    )
    app = load_function("emails_api")
    monkeypatch.setattr(app, "service", staff_email_context(w))
    monkeypatch.setattr(app, "idempotency_keys", InMemoryIdempotencyStore())
    assert call(app.lambda_handler, sample(f"emails_api/{name}"))[0] == status
