"""Therapists' right to object (GDPR Art. 21) against real PostgreSQL, logged in as a role with
exactly the therapist service's privileges: the opt-out columns of migration 0019_rights round
trip; staff opt-out and admin opt-in (If-Match) through the API function write the row, its
audit entry and `therapist.updated` (with `contact_opt_out` only) in one transaction; the
reply consumer's opt-out is idempotent; a directory import never undoes an objection; the
schema refuses half an opt-out."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from directory_fakes import entry
from fakes import FakeBus
from support import FakeLambdaContext, api_event, load_function
from therapist_fakes import FakeGeocoder
from therapy_platform.contracts.directory_files import RawPage, RawRun, Region, SearchPoint
from therapy_platform.platform.database import make_engine
from therapy_platform.platform.outbox import SqlOutboxStore
from therapy_platform.platform.outbox_relay import PublishNow
from therapy_platform.therapists.adapters.store import SqlTherapistUnitOfWork
from therapy_platform.therapists.bootstrap import TherapistService
from therapy_platform.therapists.domain.therapist import ContactOptOutReason
from therapy_platform.therapists.imports.adapters.store import (
    SqlDirectoryImportUnitOfWork,
    SqlImportReportStore,
)
from therapy_platform.therapists.imports.domain.reports import ImportSource
from therapy_platform.therapists.imports.use_cases import import_directory_file
from therapy_platform.therapists.use_cases import apply_opt_out_reply, opt_out

pytestmark = pytest.mark.integration

SCHEMA = "therapist_service"
BASE = "/api/v2/therapists"
NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
AACHEN = SearchPoint(latitude=50.7766, longitude=6.0834)
DRAFT: dict[str, Any] = {
    "first_name": "Änne",
    "last_name": "Özdemir",
    "postcode": "52062",
    "city": "Aachen",
    "email": "praxis.oezdemir@example.org",
}


@pytest.fixture(scope="module")
def therapist_engine(service_url: Callable[[str], str]) -> Iterator[Engine]:
    engine = make_engine(service_url(SCHEMA), pool_size=2)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def empty_tables(admin_engine: Engine) -> None:
    with admin_engine.begin() as connection:
        connection.execute(
            text(
                f"TRUNCATE {SCHEMA}.therapists, {SCHEMA}.audit_log, {SCHEMA}.outbox,"
                f" {SCHEMA}.directory_listings, {SCHEMA}.directory_imports, {SCHEMA}.directory_import_items"
            )
        )


@dataclass
class Api:
    module: Any
    bus: FakeBus

    def __call__(
        self, method: str, path: str, body: Any = None, *, roles: tuple[str, ...], if_match: str | None = None
    ) -> dict[str, Any]:
        headers = {"If-Match": if_match} if if_match else None
        user = "admin@team.example" if "admin" in roles else "staff@team.example"
        event = api_event(method, path, body, user=user, roles=roles, headers=headers)
        return dict(self.module.lambda_handler(event, FakeLambdaContext()))


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, therapist_engine: Engine) -> Api:
    module = load_function("therapists_api")
    bus = FakeBus()
    ticks = itertools.count()
    publish = PublishNow(store=lambda: SqlOutboxStore(therapist_engine, SCHEMA), publisher=lambda: bus)
    service = TherapistService(
        unit_of_work=lambda: SqlTherapistUnitOfWork(therapist_engine, publish=publish),
        geocoder=FakeGeocoder,
        clock=lambda: NOW + timedelta(seconds=next(ticks)),
    )
    monkeypatch.setattr(module, "service", service)
    return Api(module, bus)


def _rows(admin_engine: Engine, sql: str, **params: Any) -> list[Any]:
    with admin_engine.connect() as connection:
        return list(connection.execute(text(sql), params))


def _created(api: Api) -> dict[str, Any]:
    response = api("POST", BASE, DRAFT, roles=("staff",))
    assert response["statusCode"] == 201, response["body"]
    return dict(json.loads(response["body"]))


def test_opt_out_and_opt_in_write_the_row_the_audit_and_the_event_together(
    api: Api, admin_engine: Engine
) -> None:
    therapist = _created(api)
    tid = therapist["id"]
    response = api("POST", f"{BASE}/{tid}/opt-out", {"reason": "phone"}, roles=("staff",))
    assert response["statusCode"] == 200, response["body"]
    (row,) = _rows(
        admin_engine,
        f"SELECT contact_opt_out_at, contact_opt_out_reason FROM {SCHEMA}.therapists WHERE id = :id",
        id=tid,
    )
    assert row.contact_opt_out_reason == "phone" and row.contact_opt_out_at is not None
    (audit,) = _rows(
        admin_engine, f"SELECT actor, reason, after FROM {SCHEMA}.audit_log WHERE action = 'contact_opt_out'"
    )
    assert (audit.actor, audit.reason, audit.after["contact_opt_out_reason"]) == (
        "staff@team.example",
        "phone",
        "phone",
    )
    outbox = _rows(admin_engine, f"SELECT envelope FROM {SCHEMA}.outbox ORDER BY id")
    payload = outbox[-1].envelope["payload"]
    assert outbox[-1].envelope["eventType"] == "therapist.updated" and payload["contact_opt_out"] is True
    assert "contact_opt_out_at" not in payload and "contact_opt_out_reason" not in payload
    assert api.bus.messages[-1].envelope.payload["contact_opt_out"] is True  # published after commit

    read = api("GET", f"{BASE}/{tid}", roles=("auditor",))
    etag = read["multiValueHeaders"]["ETag"][0]
    assert json.loads(read["body"])["contact_opt_out_reason"] == "phone"
    body = {"reason": "bittet schriftlich um neue Anfragen"}
    assert (
        api("POST", f"{BASE}/{tid}/opt-in", body, roles=("admin",), if_match='"stale"')["statusCode"] == 412
    )
    allowed = api("POST", f"{BASE}/{tid}/opt-in", body, roles=("admin",), if_match=etag)
    assert allowed["statusCode"] == 200, allowed["body"]
    (row,) = _rows(
        admin_engine,
        f"SELECT contact_opt_out_at, contact_opt_out_reason FROM {SCHEMA}.therapists WHERE id = :id",
        id=tid,
    )
    assert (row.contact_opt_out_at, row.contact_opt_out_reason) == (None, None)
    actions = [r.action for r in _rows(admin_engine, f"SELECT action FROM {SCHEMA}.audit_log ORDER BY id")]
    assert actions == ["create", "contact_opt_out", "contact_opt_in"]


def test_the_reply_objection_is_idempotent_in_sql(
    therapist_engine: Engine, admin_engine: Engine, api: Api
) -> None:
    tid = uuid.UUID(_created(api)["id"])
    first = apply_opt_out_reply(SqlTherapistUnitOfWork(therapist_engine), tid, now=NOW)
    again = apply_opt_out_reply(SqlTherapistUnitOfWork(therapist_engine), tid, now=NOW + timedelta(hours=1))
    assert len(first.events) == 1 and again.events == ()
    assert again.value is not None and again.value.contact_opt_out_at == NOW
    assert apply_opt_out_reply(SqlTherapistUnitOfWork(therapist_engine), uuid.uuid4(), now=NOW).value is None
    (count,) = _rows(
        admin_engine, f"SELECT count(*) AS n FROM {SCHEMA}.audit_log WHERE action = 'contact_opt_out'"
    )
    assert count.n == 1


def _directory_file(*entries: dict[str, Any]) -> bytes:
    return RawRun(
        region=Region.parse({"prefix": "52", "radius_km": 10}),
        radius_km=10,
        points=[AACHEN],
        complete=True,
        pages=[
            RawPage(point=AACHEN, page=0, answer={"arztPraxisDatas": list(entries), "moreResults": False})
        ],
    ).to_json_bytes()


def test_a_directory_import_never_undoes_an_objection_in_sql(
    therapist_engine: Engine, admin_engine: Engine
) -> None:
    def run(data: bytes, now: datetime) -> None:
        import_directory_file(
            SqlDirectoryImportUnitOfWork(therapist_engine),
            SqlImportReportStore(therapist_engine),
            FakeGeocoder(),
            data,
            source=ImportSource("/operator/file.json"),
            now=now,
        )

    run(_directory_file(entry(id="e1")), NOW)
    (stored,) = _rows(admin_engine, f"SELECT id FROM {SCHEMA}.therapists WHERE directory_id = 'e1'")
    opt_out(
        SqlTherapistUnitOfWork(therapist_engine),
        stored.id,
        ContactOptOutReason.LETTER,
        actor="staff",
        now=NOW,
    )
    run(
        _directory_file(entry(id="e1", tel="0241 999999", email="neu@praxis.example")),
        NOW + timedelta(days=7),
    )
    (after,) = _rows(
        admin_engine,
        f"SELECT phone, email, contact_opt_out_at, contact_opt_out_reason FROM {SCHEMA}.therapists"
        " WHERE directory_id = 'e1'",
    )
    assert (after.phone, after.email) == ("0241 999999", "neu@praxis.example")  # the import did run
    assert (after.contact_opt_out_at, after.contact_opt_out_reason) == (NOW, "letter")
    (last,) = _rows(admin_engine, f"SELECT envelope FROM {SCHEMA}.outbox ORDER BY id DESC LIMIT 1")
    assert last.envelope["eventType"] == "therapist.updated"
    assert last.envelope["payload"]["contact_opt_out"] is True


def test_the_schema_refuses_half_an_opt_out(therapist_engine: Engine, api: Api) -> None:
    tid = _created(api)["id"]
    with (
        pytest.raises(DBAPIError, match="therapists_contact_opt_out_consistent"),
        therapist_engine.begin() as connection,
    ):
        connection.execute(
            text(f"UPDATE {SCHEMA}.therapists SET contact_opt_out_reason = 'phone' WHERE id = :id"),
            {"id": tid},
        )
