"""Contact look-ups (contracts/contacts.py): the patient and therapist services answer a contact
card; the communication service's directory asks them through a Lambda invocation and maps
the answer. Events carry none of this (tests/unit/test_minimal_event_guard.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from fakes import InMemoryDatabase, patient_service
from support import FakeLambdaContext, load_function
from therapist_fakes import FakeGeocoder, InMemoryTherapistUnitOfWork, TherapistDatabase
from therapy_platform.communication.adapters.contact_directory import LookupContactDirectory
from therapy_platform.contracts.contacts import ContactState, InvokedContacts
from therapy_platform.contracts.symptoms import Symptom
from therapy_platform.patients.domain.patient import PatientDraft
from therapy_platform.patients.use_cases import contact_card as patient_card
from therapy_platform.patients.use_cases import erase_patient, register_patient
from therapy_platform.platform.errors import InternalCallError
from therapy_platform.therapists.domain.therapist import TherapistDraft
from therapy_platform.therapists.use_cases import contact_card as therapist_card
from therapy_platform.therapists.use_cases import create_therapist

NOW = datetime(2026, 11, 23, 6, 5, tzinfo=UTC)


def test_the_patient_service_answers_found_erased_or_unknown() -> None:
    service = patient_service(InMemoryDatabase())
    draft = PatientDraft(
        first_name="Jana",
        last_name="Schröder",
        postcode="10115",
        email="jana@example.org",
        symptoms=[Symptom.ANXIETY],
        max_travel_km=20,
    )
    patient = register_patient(service, draft).value
    card = patient_card(service.unit_of_work, patient.id)
    assert card.state is ContactState.FOUND and (card.last_name, card.email) == (
        "Schröder",
        "jana@example.org",
    )
    assert card.max_travel_km == 20 and card.location_flagged is False
    erase_patient(service, patient.id, actor="staff:anna")
    erased = patient_card(service.unit_of_work, patient.id)
    assert erased.state is ContactState.ERASED and erased.last_name is None and erased.email is None
    assert patient_card(service.unit_of_work, uuid.uuid4()).state is ContactState.UNKNOWN


def _therapist(database: TherapistDatabase) -> uuid.UUID:
    draft = TherapistDraft(
        salutation="Frau",
        title="Dr.",
        first_name="Anna",
        last_name="Müller",
        postcode="10115",
        email="praxis@mueller.example",
        phone="030 1234567",
        phone_windows={"mon": ["08:00-09:00"]},
    )
    uow = InMemoryTherapistUnitOfWork(database)
    return create_therapist(uow, FakeGeocoder(), draft, actor="staff:anna", now=NOW).value.id


def test_the_therapist_service_answers_found_or_unknown() -> None:
    database = TherapistDatabase()
    therapist_id = _therapist(database)
    card = therapist_card(InMemoryTherapistUnitOfWork(database), therapist_id)
    assert card.state is ContactState.FOUND and (card.title, card.last_name) == ("Dr.", "Müller")
    assert card.email == "praxis@mueller.example" and card.phone_windows == {"mon": ["08:00-09:00"]}
    unknown = therapist_card(InMemoryTherapistUnitOfWork(database), uuid.uuid4())
    assert unknown.state is ContactState.UNKNOWN and unknown.last_name is None


def test_the_contacts_functions_answer_cards_and_refuse_malformed_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    database = TherapistDatabase()
    therapist_id = _therapist(database)
    app = load_function("therapist_contacts")
    monkeypatch.setattr(app, "unit_of_work", lambda: InMemoryTherapistUnitOfWork(database))
    answer = app.lambda_handler({"id": str(therapist_id)}, FakeLambdaContext())
    assert answer["state"] == "found" and answer["last_name"] == "Müller"
    assert app.lambda_handler({"id": "not-a-uuid"}, FakeLambdaContext()) == {"error": "validation_failed"}
    service = patient_service(InMemoryDatabase())
    patients = load_function("patient_contacts")
    monkeypatch.setattr(patients, "unit_of_work", service.unit_of_work)
    missing = uuid.uuid4()
    unknown = patients.lambda_handler({"id": str(missing)}, FakeLambdaContext())
    assert unknown["state"] == "unknown" and unknown["id"] == str(missing) and unknown["last_name"] is None


class FakeFunctions:
    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers, self.calls = answers, []  # type: ignore[var-annotated]

    def __call__(self, name: str, payload: Any) -> dict[str, Any]:
        self.calls.append((name, dict(payload)))
        answer = self.answers[name]
        return dict(answer(payload) if callable(answer) else answer)


def test_the_directory_asks_once_per_person_and_maps_the_cards() -> None:
    patient_id, therapist_id = uuid.uuid4(), uuid.uuid4()
    functions = FakeFunctions(
        {
            "patients": lambda p: {
                "id": p["id"],
                "state": "found",
                "last_name": "Schröder",
                "email": "j@x.de",
            },
            "therapists": lambda p: {
                "id": p["id"],
                "state": "found",
                "last_name": "Müller",
                "phone": "030 1",
            },
        }
    )
    directory = LookupContactDirectory(
        InvokedContacts(functions, patient_function="patients", therapist_function="therapists")
    )
    state = directory.patient(patient_id)
    assert state.known and state.contact is not None and state.contact.email == "j@x.de"
    therapist = directory.therapist(therapist_id)
    assert therapist is not None and therapist.last_name == "Müller" and therapist.phone == "030 1"
    assert directory.knows_therapist(therapist_id) and directory.patient(patient_id).known
    assert functions.calls == [
        ("patients", {"id": str(patient_id)}),
        ("therapists", {"id": str(therapist_id)}),
    ]


@pytest.mark.parametrize(
    "answer",
    [{"error": "validation_failed"}, {"id": str(uuid.uuid4()), "state": "found"}],
    ids=["no card", "another person's card"],
)
def test_a_wrong_answer_is_an_internal_error_never_a_guess(answer: dict[str, Any]) -> None:
    contacts = InvokedContacts(FakeFunctions({"p": answer}), patient_function="p", therapist_function="t")
    with pytest.raises(InternalCallError):
        contacts.patient(uuid.uuid4())


def test_without_a_configured_function_the_lookup_names_the_variable() -> None:
    contacts = InvokedContacts(FakeFunctions({}), patient_function=None, therapist_function=None)
    with pytest.raises(InternalCallError, match="THERAPIST_CONTACTS_FUNCTION"):
        contacts.therapist(uuid.uuid4())
