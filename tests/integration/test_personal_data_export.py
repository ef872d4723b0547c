"""The personal-data export (GDPR Art. 15/20) against real PostgreSQL: the patient API function
gathers its own part and the matching and communication parts from their personal-data
functions (the handlers themselves, invoked in-process instead of through Lambda), each
reading only its own schema with its own role."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from matching_world import World, reset_matching
from support import ADMIN, FakeLambdaContext, api_event, call, load_function
from therapy_platform.communication.adapters.personal_data import SqlCommunicationPersonalData
from therapy_platform.communication.adapters.tables import emails
from therapy_platform.contracts.personal_data import InvokedParts
from therapy_platform.matching.adapters.personal_data import SqlMatchingPersonalData
from therapy_platform.matching.domain.bundles import RoundRequest
from therapy_platform.matching.use_cases import bundles as bundle_cases
from therapy_platform.patients.bootstrap import build
from therapy_platform.platform.geography.postcodes import postcode_directory
from therapy_platform.platform.ports import OutboxRecord, PublishOutcome
from therapy_platform.therapists.adapters.store import SqlTherapistUnitOfWork
from therapy_platform.therapists.bootstrap import TherapistService

pytestmark = pytest.mark.integration

ADMIN_USER = "admin@team.example"


class AcceptingBus:
    """The bus is not what this test is about: every event is accepted (the relay and the bus
    are proven in test_patient_flow.py)."""

    def publish(self, records: Sequence[OutboxRecord]) -> list[PublishOutcome]:
        return [PublishOutcome(record.id) for record in records]


class InProcessFunctions:
    """Invokes the personal-data handlers as Lambda would, with JSON in and out."""

    def __init__(self, handlers: Mapping[str, Any]) -> None:
        self.handlers = dict(handlers)
        self.calls: list[str] = []

    def invoke(self, name: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append(name)
        answer: dict[str, Any] = self.handlers[name].lambda_handler(dict(payload), FakeLambdaContext())
        return answer


@pytest.fixture
def engines(admin_engine: Engine, service_url: Callable[[str], str]) -> Iterator[dict[str, Engine]]:
    reset_matching(admin_engine)
    with admin_engine.begin() as connection:
        connection.execute(text("TRUNCATE communication_service.emails CASCADE"))
    made = {
        schema: create_engine(service_url(f"{schema}_service"), pool_size=2)
        for schema in ("patient", "therapist", "matching", "communication")
    }
    yield made
    for engine in made.values():
        engine.dispose()


@pytest.fixture
def functions(engines: dict[str, Engine], monkeypatch: pytest.MonkeyPatch) -> InProcessFunctions:
    matching = load_function("matching_personal_data")
    communication = load_function("communication_personal_data")
    monkeypatch.setattr(matching, "reader", SqlMatchingPersonalData(lambda: engines["matching"]))
    monkeypatch.setattr(
        communication, "reader", SqlCommunicationPersonalData(lambda: engines["communication"])
    )
    return InProcessFunctions({"matching-part": matching, "communication-part": communication})


@pytest.fixture
def patients_api(
    engines: dict[str, Engine], functions: InProcessFunctions, monkeypatch: pytest.MonkeyPatch
) -> Any:
    module = load_function("patients_api")
    service = build(engine=lambda: engines["patient"], publisher=AcceptingBus)
    parts = InvokedParts(functions.invoke, ["matching-part", "communication-part"])
    monkeypatch.setattr(module, "service", type(service)(**{**vars(service), "personal_data_parts": parts}))
    return module


@pytest.fixture
def therapists_api(
    engines: dict[str, Engine], functions: InProcessFunctions, monkeypatch: pytest.MonkeyPatch
) -> Any:
    module = load_function("therapists_api")
    service = TherapistService(
        unit_of_work=lambda: SqlTherapistUnitOfWork(engines["therapist"]),
        geocoder=postcode_directory,
        personal_data_parts=InvokedParts(functions.invoke, ["matching-part", "communication-part"]),
    )
    monkeypatch.setattr(module, "service", service)
    return module


def _register(api: Any) -> str:
    body = {"first_name": "Export", "last_name": "Probe", "postcode": "10117", "symptoms": ["depression"]}
    status, created = call(api.lambda_handler, api_event("POST", "/api/v2/patients", body))
    assert status == 201, created
    return str(created["id"])


def _matching_history(engines: dict[str, Engine], patient_id: str) -> uuid.UUID:
    """The patient searches and is listed in a sent bundle, with three other searches."""
    world = World(engines["matching"])
    therapist = world.therapist()
    patient = world.patient(id=uuid.UUID(patient_id))
    search = world.search(patient)
    for _ in range(3):
        world.search()
    result = bundle_cases.run_round(
        world.uow(), RoundRequest(therapist_ids=[therapist.id]), actor="test", trigger="api", now=world.now
    ).value
    (bundle,) = result.bundles
    assert bundle.bundle_id is not None
    bundle_cases.send_bundle(world.uow(), bundle.bundle_id, actor="test", now=world.now)
    return search.id


def _email_to(engines: dict[str, Engine], patient_id: str) -> uuid.UUID:
    """A draft email to the patient, and one to someone else (which must not be exported)."""
    now = World(engines["matching"]).now
    ids = [uuid.uuid4(), uuid.uuid4()]
    rows = [
        {
            "id": email_id,
            "kind": "patient_search_started",
            "recipient": address,
            "recipient_type": "patient",
            "recipient_id": recipient,
            "sender": "team@example.org",
            "subject": "Ihre Suche",
            "html": "<p>Hallo</p>",
            "text": "Hallo",
            "status": "draft",
            "attempts": 0,
            "max_attempts": 5,
            "interrupted_attempts": 0,
            "message_id": f"<{email_id}@example.org>",
            "created_at": now,
            "updated_at": now,
        }
        for email_id, address, recipient in zip(
            ids,
            ["probe@example.org", "other@example.org"],
            [uuid.UUID(patient_id), uuid.uuid4()],
            strict=True,
        )
    ]
    with engines["communication"].begin() as connection:
        connection.execute(emails.insert(), rows)
    return ids[0]


def _export(api: Any, patient_id: str) -> tuple[int, Any]:
    event = api_event("GET", f"/api/v2/patients/{patient_id}/export", user=ADMIN_USER, roles=ADMIN)
    return call(api.lambda_handler, event)


def test_the_export_holds_every_services_records_of_the_patient_and_only_theirs(
    patients_api: Any, engines: dict[str, Engine], functions: InProcessFunctions
) -> None:
    patient_id = _register(patients_api)
    search_id = _matching_history(engines, patient_id)
    email_id = _email_to(engines, patient_id)

    status, export = _export(patients_api, patient_id)

    assert status == 200, export
    assert export["subject"] == "patient" and export["subject_id"] == patient_id
    parts = {part["service"]: part for part in export["parts"]}
    assert list(parts) == ["patients", "matching", "communication"]
    assert {part["request_id"] for part in export["parts"]} == {export["request_id"]}
    (record,) = parts["patients"]["records"]["patients"]
    assert (record["first_name"], record["last_name"]) == ("Export", "Probe")
    assert [entry["action"] for entry in parts["patients"]["records"]["audit_log"]] == ["create"]
    matching = parts["matching"]["records"]
    assert [row["id"] for row in matching["searches"]] == [str(search_id)]
    assert [row["id"] for row in matching["patient_profiles"]] == [patient_id]
    (membership,) = matching["bundle_members"]
    assert membership["patient_id"] == patient_id and membership["sent_at"] is not None
    communication = parts["communication"]["records"]
    assert [row["id"] for row in communication["emails"]] == [str(email_id)]
    assert "claim_token" not in communication["emails"][0]
    # The export itself is audited, after the fact, naming every service that answered.
    status, again = _export(patients_api, patient_id)
    audit = {part["service"]: part for part in again["parts"]}["patients"]["records"]["audit_log"]
    assert [entry["action"] for entry in audit] == ["create", "export"]
    assert audit[1]["actor"] == ADMIN_USER
    assert audit[1]["after"]["services"] == ["patients", "matching", "communication"]


def test_a_service_that_cannot_answer_fails_the_export_and_nothing_is_audited(
    patients_api: Any, engines: dict[str, Engine], functions: InProcessFunctions
) -> None:
    patient_id = _register(patients_api)
    functions.handlers["communication-part"] = _Answering({"error": "validation_failed", "fields": []})

    status, problem = _export(patients_api, patient_id)

    assert status == 502 and problem["code"] == "internal_call_failed"
    assert "communication-part" in problem["detail"]
    with engines["patient"].connect() as connection:
        actions = connection.execute(
            text("SELECT action FROM patient_service.audit_log WHERE entity_id = :id ORDER BY id"),
            {"id": uuid.UUID(patient_id)},
        ).scalars()
        assert list(actions) == ["create"]


def test_an_erased_patient_has_nothing_left_to_export(patients_api: Any) -> None:
    patient_id = _register(patients_api)
    erase = api_event("DELETE", f"/api/v2/patients/{patient_id}", user=ADMIN_USER, roles=ADMIN)
    assert call(patients_api.lambda_handler, erase)[0] == 200

    status, problem = _export(patients_api, patient_id)

    assert status == 410 and problem["code"] == "patient_erased"


def test_only_admins_export(patients_api: Any) -> None:
    patient_id = _register(patients_api)
    event = api_event("GET", f"/api/v2/patients/{patient_id}/export")  # staff
    status, problem = call(patients_api.lambda_handler, event)
    assert status == 403 and problem["required_role"] == "admin"


class _Answering:
    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer

    def lambda_handler(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        return self.answer


def test_a_therapists_export_holds_their_bundles_but_not_the_patients_in_them(
    therapists_api: Any, engines: dict[str, Engine]
) -> None:
    body = {"first_name": "Tabea", "last_name": "Export", "postcode": "10115", "email": "tabea@example.org"}
    status, created = call(therapists_api.lambda_handler, api_event("POST", "/api/v2/therapists", body))
    assert status == 201, created
    world = World(engines["matching"])
    world.therapist(id=uuid.UUID(created["id"]))
    for _ in range(3):
        world.search()
    result = bundle_cases.run_round(
        world.uow(),
        RoundRequest(therapist_ids=[uuid.UUID(created["id"])]),
        actor="test",
        trigger="api",
        now=world.now,
    ).value
    (bundle,) = result.bundles

    event = api_event("GET", f"/api/v2/therapists/{created['id']}/export", user=ADMIN_USER, roles=ADMIN)
    status, export = call(therapists_api.lambda_handler, event)

    assert status == 200, export
    parts = {part["service"]: part["records"] for part in export["parts"]}
    assert list(parts) == ["therapists", "matching", "communication"]
    assert parts["therapists"]["therapists"][0]["last_name"] == "Export"
    assert [row["id"] for row in parts["matching"]["bundles"]] == [str(bundle.bundle_id)]
    assert "bundle_members" not in parts["matching"]  # the members are the patients' data
    assert [entry["action"] for entry in parts["therapists"]["audit_log"]] == ["create"]
