"""The patient API against real PostgreSQL (as the patient service's own role): list filters,
pagination totals, sorting, update/patch semantics, erasure, audit trail, outbox atomicity.
The bus is an in-memory fake here (tests/integration/test_patient_flow.py covers EventBridge)."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from fakes import FakeBus
from support import ROOT, api_event, call, least_roles, load_function, migrate, with_if_match
from therapy_platform.contracts.patients import PatientSnapshot
from therapy_platform.patients.adapters.store import PERSONAL_COLUMNS, SqlPatientUnitOfWork
from therapy_platform.patients.bootstrap import build
from therapy_platform.patients.domain.patient import STATISTICS_FIELDS
from therapy_platform.platform.database import make_engine
from therapy_platform.platform.geography.postcodes import postcode_directory

pytestmark = pytest.mark.integration

STAFF = "sabine.staff@example.org"
FULL: dict[str, Any] = {
    "salutation": "Frau",
    "gender": "female",
    "first_name": "Änne",
    "last_name": "Müller",
    "birth_date": "1991-11-02",
    "street": "Pontstraße 3",
    "postcode": "52062",
    "city": "Aachen",
    "email": "aenne.mueller@example.org",
    "phone": "+49 241 123456",
    "health_insurer": "AOK Rheinland/Hamburg",
    "insurance_type": "statutory",
    "symptoms": ["anxiety", "panic", "sleep"],
    "previous_therapy": True,
    "last_therapy_session": "2021-06-30",
    "therapy_procedures": ["VT", "ST"],
    "preferred_therapist_gender": "female",
    "open_to_group_therapy": True,
    "group_only": False,
    "languages": ["de", "tr"],
    "needs_shared_language": False,
    "max_travel_km": 35,
    "travel_mode": "car",
    "availability": {"mon": ["08:00-10:00", "16:00-18:30"], "sat": ["09:00-12:00"]},
    "excluded_therapist_ids": [str(uuid.uuid4())],
    "notes": "Bevorzugt Termine am Vormittag.",
}


@dataclass
class PatientsApi:
    module: Any
    engine: Engine
    bus: FakeBus

    def request(
        self, method: str, path: str, body: Any = None, *, query: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        # The caller as the API's authorizer verified them, with the role the route needs.
        headers = with_if_match(method, path, None)
        event = api_event(
            method, path, body, query=query, user=STAFF, roles=least_roles(method, path), headers=headers
        )
        return call(self.module.lambda_handler, event)

    def create(self, **fields: Any) -> dict[str, Any]:
        status, body = self.request("POST", "/api/v2/patients", {**FULL, **fields})
        assert status == 201, body
        return dict(body)

    def list(self, **query: str) -> dict[str, Any]:
        status, body = self.request("GET", "/api/v2/patients", query=query)
        assert status == 200, body
        return dict(body)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, service_url: Callable[[str], str]) -> Iterator[PatientsApi]:
    module = load_function("patients_api")
    engine = make_engine(service_url("patient_service"))
    bus = FakeBus()
    service = replace(build(engine=lambda: engine, publisher=lambda: bus), geocoder=postcode_directory())
    monkeypatch.setattr(module, "service", service)
    yield PatientsApi(module, engine, bus)
    engine.dispose()


def _tag() -> str:
    """A unique insurer name: lists filtered by it see only this test's patients."""
    return "Testkasse " + "".join(chr(ord("a") + int(digit, 16) % 26) for digit in uuid.uuid4().hex[:10])


def _row(admin_engine: Engine, patient_id: str) -> dict[str, Any]:
    with admin_engine.connect() as connection:
        row = (
            connection.execute(
                text("SELECT * FROM patient_service.patients WHERE id = :id"), {"id": patient_id}
            )
            .mappings()
            .one()
        )
    return dict(row)


def _outbox(admin_engine: Engine, patient_id: str) -> list[Any]:
    with admin_engine.connect() as connection:
        return list(
            connection.execute(
                text("SELECT * FROM patient_service.outbox WHERE aggregate_key = :key ORDER BY id"),
                {"key": patient_id},
            ).mappings()
        )


def _audit(admin_engine: Engine, patient_id: str) -> list[Any]:
    with admin_engine.connect() as connection:
        return list(
            connection.execute(
                text("SELECT * FROM patient_service.audit_log WHERE entity_id = :id ORDER BY id"),
                {"id": patient_id},
            ).mappings()
        )


# --- the full record ---------------------------------------------------------------------------


def test_the_full_record_round_trips_and_is_located(api: PatientsApi, admin_engine: Engine) -> None:
    created = api.create()
    for field, value in FULL.items():
        assert created[field] == value, field
    assert created["location"]["precision"] == "postcode" and not created["location_flagged"]
    assert 50.7 < created["location"]["latitude"] < 50.8
    assert created["shared_language_required"] is False
    assert api.request("GET", f"/api/v2/patients/{created['id']}") == (200, created)
    row = _row(admin_engine, created["id"])
    assert (row["birth_year"], row["postcode_prefix"], row["erased_at"]) == (1991, "52", None)
    (event,) = _outbox(admin_engine, created["id"])
    assert event["event_type"] == "patient.created"
    # The minimal payload (docs/events.md): what matching needs of the record, nothing personal.
    assert event["envelope"]["payload"] == PatientSnapshot.of(created).model_dump(mode="json")
    assert event["published_at"] is not None  # published right after commit


def test_an_unknown_postcode_is_flagged(api: PatientsApi) -> None:
    unknown = next(code for code in (f"{n:05d}" for n in range(100000)) if code not in postcode_directory())
    created = api.create(postcode=unknown)
    assert created["location"] == {"latitude": None, "longitude": None, "precision": "unknown"}
    assert created["location_flagged"] is True


# --- lists -------------------------------------------------------------------------------------


def test_pagination_totals_and_sorting(api: PatientsApi) -> None:
    tag = _tag()
    names = ["Zander", "abel", "Meier", "Özdemir", "Bauer", "Krause", "Lang"]
    births = ["1960-01-01", None, "1990-05-05", "1975-07-07", None, "1985-03-03", "2000-12-12"]
    ids = [
        api.create(last_name=name, birth_date=birth, health_insurer=tag)["id"]
        for name, birth in zip(names, births, strict=True)
    ]
    seen: list[str] = []
    for page in (1, 2, 3):
        body = api.list(insurer=tag, limit="3", page=str(page), sort="created_at")
        assert body["total"] == 7 and body["page"] == page and body["limit"] == 3
        seen += [item["id"] for item in body["items"]]
    assert seen == ids  # oldest first, every patient exactly once
    assert api.list(insurer=tag, limit="3", page="4")["items"] == []

    by_name = [item["last_name"] for item in api.list(insurer=tag, sort="last_name")["items"]]
    assert by_name == ["abel", "Bauer", "Krause", "Lang", "Meier", "Zander", "Özdemir"]  # case-insensitive
    by_name_desc = [item["last_name"] for item in api.list(insurer=tag, sort="-last_name")["items"]]
    assert by_name_desc == list(reversed(by_name))
    births_sorted = [item["birth_date"] for item in api.list(insurer=tag, sort="birth_date")["items"]]
    assert births_sorted[:5] == sorted(b for b in births if b) and births_sorted[5:] == [None, None]
    births_desc = [item["birth_date"] for item in api.list(insurer=tag, sort="-birth_date")["items"]]
    assert births_desc[:5] == sorted((b for b in births if b), reverse=True) and births_desc[5:] == [
        None,
        None,
    ]
    newest = api.list(insurer=tag)["items"]
    assert [item["id"] for item in newest] == list(reversed(ids))  # default: newest first


def test_filters(api: PatientsApi) -> None:
    tag = _tag()
    anna = api.create(first_name="Anna-Lena", last_name="Groß", postcode="10115", health_insurer=tag)
    bernd = api.create(first_name="Bernd", last_name="Grossmann", postcode="10247", health_insurer=tag)
    carla = api.create(first_name="Carla", last_name="Weiß", postcode="52062", health_insurer=tag)
    api.request("PATCH", f"/api/v2/patients/{bernd['id']}", {"status": "searching"})
    api.request("PATCH", f"/api/v2/patients/{carla['id']}", {"status": "in_therapy"})

    def ids(**query: str) -> set[str]:
        body = api.list(insurer=tag, **query)
        assert body["total"] == len(body["items"])
        return {item["id"] for item in body["items"]}

    assert ids() == {anna["id"], bernd["id"], carla["id"]}
    assert ids(status="searching") == {bernd["id"]}
    assert ids(postcode_prefix="10") == {anna["id"], bernd["id"]}
    assert ids(postcode_prefix="101") == {anna["id"]}
    assert ids(q="GROSS") == {bernd["id"]}  # ß is not ss: exact letters, any case
    assert ids(q="groß") == {anna["id"]}
    assert ids(q="anna GROß") == {anna["id"]}
    assert ids(q="weiß carla") == {carla["id"]}
    assert ids(q="lena") == {anna["id"]}
    assert ids(q="%") == set()  # LIKE wildcards are literal
    assert ids(q="_") == set()
    today = datetime.now(UTC).date()
    assert ids(created_from=today.isoformat(), created_to=today.isoformat()) == {
        anna["id"],
        bernd["id"],
        carla["id"],
    }
    assert ids(created_to=(today - timedelta(days=1)).isoformat()) == set()
    assert ids(created_from=(today + timedelta(days=1)).isoformat()) == set()
    assert api.list(insurer=tag.upper()[:14])["total"] >= 3  # part of the name, any case

    # Several statuses through the multi-value query string.
    event = api_event("GET", "/api/v2/patients", query={"insurer": tag})
    event["multiValueQueryStringParameters"] = {"insurer": [tag], "status": ["searching", "in_therapy"]}
    event["queryStringParameters"] = {"insurer": tag, "status": "in_therapy"}
    status, body = call(api.module.lambda_handler, event)
    assert status == 200 and {item["id"] for item in body["items"]} == {bernd["id"], carla["id"]}


def test_listing_is_audited_per_patient_shown(api: PatientsApi, admin_engine: Engine) -> None:
    tag = _tag()
    shown = [api.create(health_insurer=tag)["id"] for _ in range(3)]
    body = api.list(insurer=tag, limit="2", sort="created_at")
    assert [item["id"] for item in body["items"]] == shown[:2]
    for patient_id, listed in zip(shown, (True, True, False), strict=True):
        actions = [row["action"] for row in _audit(admin_engine, patient_id)]
        assert actions == (["create", "list"] if listed else ["create"])


# --- updates -----------------------------------------------------------------------------------


def test_put_and_patch_semantics(api: PatientsApi, admin_engine: Engine) -> None:
    created = api.create()
    patient = f"/api/v2/patients/{created['id']}"

    status, patched = api.request("PATCH", patient, {"phone": None, "notes": None, "languages": None})
    assert status == 200
    assert patched["phone"] is None and patched["notes"] is None and patched["languages"] == ["de"]
    assert {key: patched[key] for key in ("email", "street", "symptoms")} == {
        key: created[key] for key in ("email", "street", "symptoms")
    }
    row = _row(admin_engine, created["id"])
    assert row["phone"] is None and row["languages"] == ["de"] and row["updated_at"] > row["created_at"]

    minimal = {"first_name": "Änne", "last_name": "Müller", "postcode": "10115", "symptoms": ["grief"]}
    status, replaced = api.request("PUT", patient, minimal)
    assert status == 200
    assert replaced["street"] is None and replaced["availability"] == {} and replaced["max_travel_km"] == 25
    assert replaced["therapy_procedures"] == ["VT", "TP", "AP", "ST"] and replaced["symptoms"] == ["grief"]
    assert replaced["location"]["latitude"] > 52  # moved to Berlin: located again
    assert api.request("GET", patient) == (200, replaced)

    status, error = api.request("PATCH", patient, {"symptoms": None, "postcode": "1"})
    assert status == 422 and {entry["field"] for entry in error["errors"]} == {"symptoms", "postcode"}

    events = [row["event_type"] for row in _outbox(admin_engine, created["id"])]
    assert events == ["patient.created", "patient.updated", "patient.updated"]
    audit = _audit(admin_engine, created["id"])
    assert [row["action"] for row in audit] == ["create", "update", "update", "read"]
    first_update = audit[1]
    assert first_update["actor"] == STAFF
    assert first_update["before"] == {
        "phone": FULL["phone"],
        "notes": FULL["notes"],
        "languages": ["de", "tr"],
    }
    assert first_update["after"] == {"phone": None, "notes": None, "languages": ["de"]}


# --- erasure -----------------------------------------------------------------------------------


def test_erasure_is_refused_while_searching(api: PatientsApi, admin_engine: Engine) -> None:
    created = api.create()
    api.request("PATCH", f"/api/v2/patients/{created['id']}", {"status": "searching"})
    before = _row(admin_engine, created["id"])
    status, error = api.request("DELETE", f"/api/v2/patients/{created['id']}")
    assert status == 409 and "search is not finished" in error["detail"]
    assert _row(admin_engine, created["id"]) == before
    assert [row["event_type"] for row in _outbox(admin_engine, created["id"])][-1] == "patient.updated"


def test_erasure_leaves_no_personal_data(api: PatientsApi, admin_engine: Engine) -> None:
    created = api.create()
    patient = f"/api/v2/patients/{created['id']}"
    api.request("PATCH", patient, {"city": "Würselen", "status": "search_cancelled"})
    status, erased = api.request("DELETE", patient, query={"reason": "Antrag vom 20.11."})
    assert status == 200 and erased["id"] == created["id"]

    row = _row(admin_engine, created["id"])
    kept = {name: value for name, value in row.items() if value is not None}
    assert set(kept) <= set(STATISTICS_FIELDS), set(kept) - set(STATISTICS_FIELDS)
    assert all(row[name] is None for name in PERSONAL_COLUMNS)
    assert set(kept) == {"id", "erased_at"}  # a tombstone: 410 Gone, nothing else
    # The facts statistics keep are anonymous, in a row without the id (0018_perasure).
    with admin_engine.connect() as connection:
        facts = (
            connection.execute(
                text(
                    "SELECT * FROM patient_service.patient_statistics WHERE postcode_region = '52'"
                    " AND final_status = 'search_cancelled' AND symptoms = :symptoms"
                ),
                {"symptoms": sorted(FULL["symptoms"])},
            )
            .mappings()
            .all()
        )
    assert facts and all(str(fact["id"]) != created["id"] for fact in facts)
    assert {fact["age_band"] for fact in facts} >= {"35-44"}
    assert all(fact["registered_month"].day == 1 and fact["erased_month"].day == 1 for fact in facts)
    # No column anywhere still holds a personal value.
    flat = " ".join(str(value) for value in row.values())
    for secret in (
        "Änne",
        "Müller",
        "aenne",
        "Pontstraße",
        "52062",
        "Aachen",
        "Würselen",
        "123456",
        "1991-11-02",
    ):
        assert secret not in flat

    (event,) = _outbox(admin_engine, created["id"])
    assert event["event_type"] == "patient.deleted"
    assert event["envelope"]["payload"] == {"id": created["id"], "erased_at": erased["erased_at"]}
    assert api.bus.messages[-1].envelope.event_type == "patient.deleted"

    audit = _audit(admin_engine, created["id"])
    assert [row["action"] for row in audit] == ["create", "update", "erase"]
    assert audit[1]["before"] == {"city": None, "status": None}  # which fields, not their values
    for entry in audit[:-1]:
        for values in (entry["before"], entry["after"]):
            assert values is None or all(value is None for value in values.values())
    assert audit[-1]["reason"] == "Antrag vom 20.11." and audit[-1]["actor"] == STAFF
    assert all(entry["reason"] is None for entry in audit[:-1])  # earlier free text emptied

    status, gone = api.request("GET", patient)
    assert status == 410 and gone["code"] == "patient_erased" and gone["erased_at"] == erased["erased_at"]
    assert api.request("DELETE", patient)[0] == 410
    with admin_engine.connect() as connection:
        live = connection.execute(
            text("SELECT count(*) FROM patient_service.patients WHERE erased_at IS NULL")
        ).scalar_one()
    assert api.list()["total"] == live  # erased patients are never listed


def test_the_database_refuses_personal_data_on_an_erased_row(admin_engine: Engine, api: PatientsApi) -> None:
    created = api.create()
    api.request("DELETE", f"/api/v2/patients/{created['id']}")
    with (
        pytest.raises(DBAPIError, match="patients_erased_has_no_personal_data"),
        admin_engine.begin() as connection,
    ):
        connection.execute(
            text("UPDATE patient_service.patients SET email = 'x@example.org' WHERE id = :id"),
            {"id": created["id"]},
        )


# --- audit trail and atomicity -----------------------------------------------------------------


def test_the_service_cannot_rewrite_or_delete_its_audit_trail(
    api: PatientsApi, service_url: Callable[[str], str]
) -> None:
    created = api.create()
    engine = create_engine(service_url("patient_service"))
    try:
        for statement in (
            "DELETE FROM patient_service.audit_log WHERE entity_id = :id",
            "UPDATE patient_service.audit_log SET actor = 'someone else' WHERE entity_id = :id",
            "UPDATE patient_service.audit_log SET at = now() WHERE entity_id = :id",
        ):
            with pytest.raises(DBAPIError, match="permission denied"), engine.begin() as connection:
                connection.execute(text(statement), {"id": created["id"]})
        with engine.begin() as connection:  # blanking values (erasure) is allowed
            connection.execute(
                text("UPDATE patient_service.audit_log SET before = NULL WHERE entity_id = :id"),
                {"id": created["id"]},
            )
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("method", "body"),
    [("PATCH", {"city": "Eschweiler"}), ("PUT", {**FULL, "city": "Eschweiler"}), ("DELETE", None)],
)
def test_a_crash_writing_the_event_undoes_the_change_and_its_audit(
    api: PatientsApi, admin_engine: Engine, monkeypatch: pytest.MonkeyPatch, method: str, body: Any
) -> None:
    from therapy_platform.platform import outbox as outbox_module

    created = api.create()
    row_before = _row(admin_engine, created["id"])
    audit_before = _audit(admin_engine, created["id"])

    def explode(self: object, key: str, envelope: object) -> None:
        raise RuntimeError("simulated crash while writing the outbox")

    monkeypatch.setattr(outbox_module.SqlOutbox, "add", explode)
    status, error = api.request(method, f"/api/v2/patients/{created['id']}", body)
    assert status == 500 and error["code"] == "internal_error"
    assert _row(admin_engine, created["id"]) == row_before
    assert _audit(admin_engine, created["id"]) == audit_before
    assert [row["event_type"] for row in _outbox(admin_engine, created["id"])] == ["patient.created"]


def test_database_down_is_503(api: PatientsApi, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = make_engine("postgresql+pg8000://nobody:nothing@127.0.0.1:9/none")
    monkeypatch.setattr(
        api.module, "service", replace(api.module.service, unit_of_work=lambda: SqlPatientUnitOfWork(dead))
    )
    for method, path in (("GET", "/api/v2/patients"), ("GET", f"/api/v2/patients/{uuid.uuid4()}")):
        status, body = api.request(method, path)
        assert status == 503 and body["code"] == "dependency_unavailable"


# --- migration ---------------------------------------------------------------------------------


def _migration_module(name: str = "0005_patients_full") -> Any:
    path = ROOT / "infra" / "migrations" / "versions" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"migration_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_erasure_columns_agree_between_migration_and_adapter() -> None:
    # 0005 empties the personal columns; 0016 also the ones a live record needs (a tombstone).
    tombstone = _migration_module("0018_perasure")
    # Columns added since (0023: the minutes limit, a preference) are personal too.
    emptied = {
        *_migration_module().PERSONAL_COLUMNS,
        *tombstone.REQUIRED_WHEN_LIVE,
        "birth_year",
        "max_travel_minutes",
    }
    assert emptied == set(PERSONAL_COLUMNS)


def test_skeleton_rows_survive_the_migration_and_it_reverts(
    scratch_database: Callable[[str], AbstractContextManager[Engine]],
) -> None:
    from alembic import command

    from runner import upgrade

    with scratch_database("legacy") as engine:
        upgrade(engine, "0004")
        legacy_id = uuid.uuid4()
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO patient_service.patients (id, first_name, last_name, birth_date, postcode, "
                    "status, created_at, updated_at) VALUES (:id, 'Alt', 'Bestand', '1970-01-01', '04109', "
                    "'open', now(), now())"
                ),
                {"id": legacy_id},
            )
        upgrade(engine)
        row = _row(engine, str(legacy_id))
        assert (row["postcode_prefix"], row["birth_year"], row["location_precision"]) == (
            "04",
            1970,
            "unknown",
        )
        assert row["symptoms"] == [] and row["therapy_procedures"] == ["VT", "TP", "AP", "ST"]
        assert row["languages"] == ["de"] and row["max_travel_km"] == 25 and row["gender"] == "unspecified"

        from therapy_platform.patients.adapters.store import patient_from_row

        assert patient_from_row(row).location_flagged  # readable; staff complete it on the next save

        migrate(engine, command.downgrade, "0004")
        with engine.connect() as connection:
            columns = {
                value
                for (value,) in connection.execute(
                    text(
                        "SELECT column_name FROM information_schema.columns "
                        "WHERE table_schema = 'patient_service' AND table_name = 'patients'"
                    )
                )
            }
        assert "symptoms" not in columns and "first_name" in columns
