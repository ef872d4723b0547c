"""Minimal events against real PostgreSQL (issue 12 item 1):
- what the patient and therapist services write to their outboxes carries no name, contact or
  free text, and the matching read model keeps only the contract's fields;
- the contact look-ups answer from the owning service's schema (role-isolated), found, erased
  or unknown;
- migration 0016 turns existing rich read-model rows into minimal ones, hashes the practice
  keys, drops the communication contact tables, and reverts."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, text

from runner import upgrade
from support import migrate
from therapy_platform.contracts.contacts import ContactState
from therapy_platform.contracts.practices import hashed_practice_key
from therapy_platform.contracts.symptoms import Symptom
from therapy_platform.matching.adapters.unit_of_work import SqlMatchingUnitOfWork
from therapy_platform.matching.bootstrap import MatchingService, profile_event_consumer
from therapy_platform.patients.adapters.store import SqlPatientUnitOfWork
from therapy_platform.patients.domain.patient import PatientDraft
from therapy_platform.patients.use_cases import PatientService, erase_patient, register_patient
from therapy_platform.patients.use_cases import contact_card as patient_card
from therapy_platform.platform.consumer import Delivery
from therapy_platform.platform.events import BusMessage, EventEnvelope
from therapy_platform.platform.geography.locations import Location, LocationPrecision
from therapy_platform.therapists.adapters.store import SqlTherapistUnitOfWork
from therapy_platform.therapists.domain.therapist import TherapistDraft
from therapy_platform.therapists.use_cases import contact_card as therapist_card
from therapy_platform.therapists.use_cases import create_therapist

pytestmark = pytest.mark.integration

PERSONAL = ("Schröder", "jana.canary@example.org", "0170 5550100", "Invalidenstraße", "Notiz-Kanarie")


class Berlin:
    def locate(self, *, postcode: str, street: str | None = None, city: str | None = None) -> Location:
        return Location.at(52.53, 13.38, LocationPrecision.POSTCODE)


@pytest.fixture(scope="module")
def engines(service_url: Callable[[str], str]) -> Iterator[dict[str, Engine]]:
    made = {schema: create_engine(service_url(schema)) for schema in ("patient_service", "therapist_service")}
    made["matching_service"] = create_engine(service_url("matching_service"))
    yield made
    for engine in made.values():
        engine.dispose()


def _outbox_payloads(admin_engine: Engine, schema: str, key: uuid.UUID) -> list[dict[str, Any]]:
    with admin_engine.connect() as connection:
        rows = connection.execute(
            text(f"SELECT envelope FROM {schema}.outbox WHERE aggregate_key = :key ORDER BY id"),
            {"key": str(key)},
        )
        return [dict(row.envelope) for row in rows]


def _feed_matching(engine: Engine, envelope: dict[str, Any], key: str) -> None:
    consumer = profile_event_consumer(MatchingService(unit_of_work=lambda: SqlMatchingUnitOfWork(engine)))
    message = BusMessage(key=key, envelope=EventEnvelope.model_validate(envelope))
    body = json.dumps({"detail": message.model_dump(mode="json", by_alias=True)})
    [handled] = consumer.handle_batch([Delivery(str(uuid.uuid4()), body, 1, "", "")]).handled
    assert handled.outcome == "applied", handled


def test_a_patient_travels_as_ids_and_codes_and_is_looked_up_where_it_lives(
    engines: dict[str, Engine], admin_engine: Engine
) -> None:
    service = PatientService(
        unit_of_work=lambda: SqlPatientUnitOfWork(engines["patient_service"]), geocoder=Berlin()
    )
    draft = PatientDraft(
        first_name="Jana",
        last_name="Schröder",
        birth_date=datetime(1990, 5, 17).date(),
        street="Invalidenstraße 12",
        postcode="10115",
        city="Berlin",
        email="jana.canary@example.org",
        phone="0170 5550100",
        health_insurer="AOK Nordost",
        symptoms=[Symptom.ANXIETY],
        notes="Notiz-Kanarie",
    )
    patient = register_patient(service, draft, actor="staff:test").value
    [created] = _outbox_payloads(admin_engine, "patient_service", patient.id)
    wire = json.dumps(created, ensure_ascii=False)
    assert not [value for value in (*PERSONAL, "1990-05-17", "AOK Nordost") if value in wire]
    assert created["payload"]["birth_month"] == "1990-05" and created["payload"]["symptoms"] == ["anxiety"]

    _feed_matching(engines["matching_service"], created, str(patient.id))
    with admin_engine.connect() as connection:
        kept = connection.execute(
            text("SELECT data FROM matching_service.patient_profiles WHERE id = :id"), {"id": patient.id}
        ).scalar_one()
    assert kept["birth_month"] == "1990-05" and not [v for v in PERSONAL if v in json.dumps(kept)]

    card = patient_card(service.unit_of_work, patient.id)
    assert (card.state, card.last_name, card.email) == (
        ContactState.FOUND,
        "Schröder",
        "jana.canary@example.org",
    )
    erase_patient(service, patient.id, actor="staff:test")
    assert patient_card(service.unit_of_work, patient.id).state is ContactState.ERASED
    assert patient_card(service.unit_of_work, uuid.uuid4()).state is ContactState.UNKNOWN


def test_a_therapist_travels_with_booleans_and_a_hashed_practice_key(
    engines: dict[str, Engine], admin_engine: Engine
) -> None:
    draft = TherapistDraft(
        salutation="Frau",
        title="Prof. Dr.",
        first_name="Anna",
        last_name="Kanarienvogel",
        street="Hauptstraße 5",
        postcode="10827",
        city="Berlin",
        email="praxis.kanarienvogel@example.org",
        phone="030 5550199",
        phone_windows={"mon": ["08:00-09:00"]},
    )
    now = datetime.now(UTC)
    uow = SqlTherapistUnitOfWork(engines["therapist_service"])
    therapist = create_therapist(uow, Berlin(), draft, actor="staff:test", now=now).value
    [created] = _outbox_payloads(admin_engine, "therapist_service", therapist.id)
    payload = created["payload"]
    wire = json.dumps(created, ensure_ascii=False)
    for value in ("Kanarienvogel", "kanarienvogel@", "030 5550199", "Hauptstraße", "Prof."):
        assert value not in wire, value
    assert payload["reachable_by_email"] and payload["reachable_by_phone"]
    assert payload["practice_key"] == hashed_practice_key("praxis.kanarienvogel@example.org")
    assert (payload["owner_name_rank"], payload["title_rank"]) == (len("kanarienvogel"), 2)
    assert payload["phone_windows"] == {"mon": ["08:00-09:00"]}

    card = therapist_card(SqlTherapistUnitOfWork(engines["therapist_service"]), therapist.id)
    assert (card.state, card.title, card.phone) == (ContactState.FOUND, "Prof. Dr.", "030 5550199")


# --------------------------------------------------------------------------- migration 0016


@pytest.fixture
def fresh_database(scratch_database: Callable[[str], AbstractContextManager[Engine]]) -> Iterator[Engine]:
    with scratch_database("events_0016") as engine:
        yield engine


RICH_PATIENT = {
    "first_name": "Jana", "last_name": "Schröder", "salutation": "Frau", "gender": "female",
    "birth_date": "1990-05-17", "street": "Invalidenstraße 12", "postcode": "10115", "city": "Berlin",
    "email": "jana.canary@example.org", "phone": "0170 5550100", "health_insurer": "AOK Nordost",
    "insurance_type": "statutory", "symptoms": ["anxiety"], "notes": "Notiz-Kanarie", "status": "open",
    "max_travel_km": 20, "location": {"latitude": 52.53, "longitude": 13.38, "precision": "postcode"},
}  # fmt: skip
RICH_THERAPIST = {
    "salutation": "Frau", "title": "Dr.", "first_name": "Anna", "last_name": "Müller", "gender": "female",
    "street": "Hauptstraße 5", "postcode": "10827", "city": "Berlin", "email": "praxis@mueller.example",
    "phone": "030 1234567", "fax": None, "website": "www.mueller.example", "directory_id": "X1",
    "status": "active", "block_reason": None, "practice_key": "praxis@mueller.example",
    "procedures": ["VT"], "location": {"latitude": 52.48, "longitude": 13.35, "precision": "postcode"},
}  # fmt: skip


def test_migration_0016_makes_existing_rows_minimal_and_reverts(fresh_database: Engine) -> None:
    engine = fresh_database

    def tables(schema: str) -> set[str]:
        with engine.connect() as connection:
            found = connection.execute(
                text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"),
                {"s": schema},
            )
            return {name for (name,) in found}

    upgrade(engine, "0019_rights")
    patient_id, therapist_id, erased_id, bundle_id = (uuid.uuid4() for _ in range(4))
    now = datetime.now(UTC)
    with engine.begin() as connection:
        for table, entity, data in (
            ("patient_profiles", patient_id, RICH_PATIENT),
            ("therapist_profiles", therapist_id, RICH_THERAPIST),
            ("patient_profiles", erased_id, None),
        ):
            connection.execute(
                text(
                    f"INSERT INTO matching_service.{table}"
                    " (id, data, source_event_id, source_timestamp, updated_at)"
                    " VALUES (:id, CAST(:data AS jsonb), :event, :at, :at)"
                ),
                {
                    "id": entity,
                    "data": None if data is None else json.dumps(data),
                    "event": uuid.uuid4(),
                    "at": now,
                },
            )
        connection.execute(
            text(
                "INSERT INTO communication_service.patient_contacts"
                " (id, data, source_event_id, source_timestamp, updated_at)"
                " VALUES (:id, CAST(:data AS jsonb), :event, :at, :at)"
            ),
            {
                "id": patient_id,
                "data": json.dumps({"last_name": "Schröder"}),
                "event": uuid.uuid4(),
                "at": now,
            },
        )
        members = [
            {
                "search_id": str(uuid.uuid4()),
                "reference": f"B1-{n}",
                "patient": {"age": 30, "health_insurer": "AOK"},
            }
            for n in (1, 2)
        ]
        connection.execute(
            text(
                "INSERT INTO communication_service.sent_bundles"
                " (id, reference, therapist_id, members, created_at, updated_at)"
                " VALUES (:id, 'B1', :therapist, CAST(:members AS jsonb), :at, :at)"
            ),
            {"id": bundle_id, "therapist": therapist_id, "members": json.dumps(members), "at": now},
        )

        envelope = {
            "eventId": str(uuid.uuid4()),
            "eventType": "patient.updated",
            "version": "1.0",
            "timestamp": now.isoformat(),
            "producer": "patient-service",
            "payload": {"id": str(patient_id), **RICH_PATIENT},
        }
        connection.execute(
            text(
                "INSERT INTO patient_service.outbox"
                " (event_id, event_type, aggregate_key, envelope, created_at)"
                " VALUES (:event, 'patient.updated', :key, CAST(:envelope AS jsonb), :at)"
            ),
            {
                "event": envelope["eventId"],
                "key": str(patient_id),
                "envelope": json.dumps(envelope),
                "at": now,
            },
        )

    assert upgrade(engine, "0020_events") == "0020_events"
    with engine.connect() as connection:
        waiting = connection.execute(
            text("SELECT envelope FROM patient_service.outbox WHERE aggregate_key = :key"),
            {"key": str(patient_id)},
        ).scalar_one()
        patient = connection.execute(
            text("SELECT data FROM matching_service.patient_profiles WHERE id = :id"), {"id": patient_id}
        ).scalar_one()
        therapist = connection.execute(
            text("SELECT data FROM matching_service.therapist_profiles WHERE id = :id"), {"id": therapist_id}
        ).scalar_one()
        erased = connection.execute(
            text("SELECT data FROM matching_service.patient_profiles WHERE id = :id"), {"id": erased_id}
        ).scalar_one()
        kept_members = connection.execute(
            text("SELECT members FROM communication_service.sent_bundles WHERE id = :id"), {"id": bundle_id}
        ).scalar_one()
    assert erased is None  # a tombstone stays a tombstone
    assert waiting["payload"]["birth_month"] == "1990-05" and waiting["eventType"] == "patient.updated"
    assert not [v for v in (*PERSONAL, "AOK") if v in json.dumps(waiting, ensure_ascii=False)]
    assert patient["birth_month"] == "1990-05" and patient["symptoms"] == ["anxiety"]
    assert not [
        value
        for value in (*PERSONAL, "1990-05-17", "AOK")
        if value in json.dumps(patient, ensure_ascii=False)
    ]
    assert therapist["practice_key"] == hashed_practice_key("praxis@mueller.example")
    assert (
        therapist["reachable_by_email"],
        therapist["reachable_by_phone"],
        therapist["from_directory"],
    ) == (
        True,
        True,
        True,
    )
    assert (therapist["owner_name_rank"], therapist["title_rank"]) == (len("mueller"), 1)
    text_of_therapist = json.dumps(therapist, ensure_ascii=False)
    assert not [
        v for v in ("Müller", "mueller.example", "030 1234567", "Hauptstraße") if v in text_of_therapist
    ]
    assert [m["reference"] for m in kept_members] == ["B1-1", "B1-2"]
    assert all("health_insurer" not in m["patient"] for m in kept_members)
    assert {"patient_contacts", "therapist_contacts"}.isdisjoint(tables("communication_service"))

    migrate(engine, command.downgrade, "0019_rights")
    assert {"patient_contacts", "therapist_contacts"} <= tables("communication_service")
    assert upgrade(engine, "0020_events") == "0020_events"
