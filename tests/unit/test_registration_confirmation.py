"""The communication service's answer to `patient.self_registered` (use_cases/events.py): one
German confirmation email to the patient, looked up in the patient service (the event carries
ids only), once per registration; none without an address."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from communication_state_fakes import StateWorld, deliver, envelope, patient_payload, state_world
from therapy_platform.communication.domain.emails import EmailKind, RecipientType
from therapy_platform.contracts.patients import PatientSelfRegistered

NOW = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)


@pytest.fixture
def w() -> StateWorld:
    return state_world(now=NOW)


def registered(patient_id: uuid.UUID, registration_id: uuid.UUID) -> dict[str, object]:
    return PatientSelfRegistered(
        id=patient_id, registration_id=registration_id, registered_at=NOW
    ).model_dump(mode="json")


def test_a_self_registered_patient_gets_one_german_confirmation(w: StateWorld) -> None:
    patient_id, registration_id = uuid.uuid4(), uuid.uuid4()
    deliver(w.context, envelope("patient.created", patient_payload(patient_id), at=NOW))
    first = deliver(
        w.context, envelope("patient.self_registered", registered(patient_id, registration_id), at=NOW)
    )
    # The same registration under another event id (a producer retry) is still one email.
    again = deliver(
        w.context, envelope("patient.self_registered", registered(patient_id, registration_id), at=NOW)
    )
    [email] = [e for e in w.database.emails.values() if e.kind is EmailKind.PATIENT_REGISTRATION_CONFIRMED]
    assert first.outcome == "done" and len(first.emails) == 1 and again.emails in ((), first.emails)
    assert (email.recipient, email.recipient_type, email.recipient_id) == (
        "patientin@example.org",
        RecipientType.PATIENT,
        patient_id,
    )
    assert email.subject == "Ihre Anmeldung ist bei uns eingegangen"
    assert "Sehr geehrte Frau Schröder" in email.text and "06.12.2026" in email.text
    assert "20 km" in email.text


def test_without_an_address_nothing_is_sent(w: StateWorld) -> None:
    patient_id = uuid.uuid4()
    deliver(w.context, envelope("patient.created", patient_payload(patient_id, email=None), at=NOW))
    reaction = deliver(
        w.context, envelope("patient.self_registered", registered(patient_id, uuid.uuid4()), at=NOW)
    )
    assert reaction.outcome == "done" and reaction.emails == ()
