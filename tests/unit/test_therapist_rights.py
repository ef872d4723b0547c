"""Therapists' right to object (GDPR Art. 21), with in-memory adapters: staff record an objection
(`POST .../opt-out`), only an admin with the current ETag allows inquiries again
(`POST .../opt-in`), both audited and published with `contact_opt_out` only; an objection found
in a reply (`email.opt_out_received`) does the same through the consumer, idempotently; neither
a directory import nor an operator bulk load undoes it."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from directory_fakes import (
    DirectoryDatabase,
    InMemoryDirectoryImportUnitOfWork,
    InMemoryImportReportStore,
    entry,
)
from fakes import OTHER_SERVICES, FakeBus, FakeOtherServices, InMemoryOutboxStore
from support import STAFF_USER, FakeLambdaContext, api_event, call, load_function
from therapist_fakes import FakeGeocoder, InMemoryTherapistUnitOfWork, TherapistDatabase
from therapy_platform.contracts.directory_files import RawPage, RawRun, Region, SearchPoint
from therapy_platform.platform.events import BusMessage, new_envelope
from therapy_platform.platform.outbox_relay import PublishNow
from therapy_platform.therapists import use_cases
from therapy_platform.therapists.bootstrap import TherapistService
from therapy_platform.therapists.domain.therapist import ContactOptOutReason, TherapistDraft
from therapy_platform.therapists.imports.domain.reports import ImportSource
from therapy_platform.therapists.imports.use_cases import import_directory_file

BASE = "/api/v2/therapists"
NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
DRAFT: dict[str, Any] = {
    "first_name": "Anna",
    "last_name": "Müller",
    "postcode": "52062",
    "city": "Aachen",
    "email": "praxis.mueller@example.org",
}
OPT_OUT_FIELDS = {"contact_opt_out_at", "contact_opt_out_reason"}
ADMIN_USER = "admin@team.example"


@dataclass
class World:
    database: TherapistDatabase
    bus: FakeBus
    api_module: Any
    consumer_module: Any

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        roles: tuple[str, ...],
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        user = ADMIN_USER if "admin" in roles else STAFF_USER
        event = api_event(method, path, body, user=user, roles=roles, headers=headers)
        return dict(self.api_module.lambda_handler(event, FakeLambdaContext()))

    def therapist(self) -> dict[str, Any]:
        status, body = call(
            self.api_module.lambda_handler, api_event("POST", BASE, DRAFT, user=STAFF_USER, roles=("staff",))
        )
        assert status == 201, body
        return dict(body)

    def etag(self, therapist_id: str) -> str:
        return str(
            self.request("GET", f"{BASE}/{therapist_id}", roles=("auditor",))["multiValueHeaders"]["ETag"][0]
        )

    def deliver(self, payload: dict[str, Any], message_id: str = "m1") -> dict[str, Any]:
        envelope = new_envelope("email.opt_out_received", "communication-service", payload, now=NOW)
        detail = BusMessage(key=str(payload.get("therapist_id")), envelope=envelope).model_dump(
            mode="json", by_alias=True
        )
        body = json.dumps({"detail-type": envelope.event_type, "detail": detail})
        records = [{"messageId": message_id, "body": body, "attributes": {"ApproximateReceiveCount": "1"}}]
        return dict(self.consumer_module.lambda_handler({"Records": records}, FakeLambdaContext()))


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    api_module = load_function("therapists_api")
    consumer_module = load_function("therapist_matching_events")
    database, bus = TherapistDatabase(), FakeBus()
    publish = PublishNow(store=lambda: InMemoryOutboxStore(database), publisher=lambda: bus)
    ticks = itertools.count()
    service = TherapistService(
        unit_of_work=lambda: InMemoryTherapistUnitOfWork(database, publish=publish),
        geocoder=FakeGeocoder,
        clock=lambda: NOW + timedelta(seconds=next(ticks)),
        personal_data_parts=FakeOtherServices(OTHER_SERVICES),
    )
    monkeypatch.setattr(api_module, "service", service)
    monkeypatch.setattr(consumer_module, "service", service)
    yield World(database, bus, api_module, consumer_module)


def _published(world: World) -> list[dict[str, Any]]:
    return [message.envelope.payload for message in world.bus.messages]


# ------------------------------------------------------------------------------ staff opt-out


def test_staff_record_an_objection_audited_and_published_as_a_flag_only(world: World) -> None:
    therapist = world.therapist()
    response = world.request(
        "POST", f"{BASE}/{therapist['id']}/opt-out", {"reason": "phone"}, roles=("staff",)
    )
    assert response["statusCode"] == 200, response["body"]
    body = json.loads(response["body"])
    assert body["contact_opt_out_reason"] == "phone"
    assert datetime.fromisoformat(body["contact_opt_out_at"]) > NOW
    assert response["multiValueHeaders"]["ETag"]
    # The event says only that the therapist objected: not when, not how.
    event = world.database.events()[-1]
    assert event.event_type == "therapist.updated"
    assert event.payload["contact_opt_out"] is True
    assert not OPT_OUT_FIELDS & set(event.payload)
    audit = world.database.audit[-1]
    assert (audit.action, audit.actor, audit.reason) == ("contact_opt_out", STAFF_USER, "phone")
    assert audit.before == {"contact_opt_out_at": None, "contact_opt_out_reason": None}
    assert (audit.after or {})["contact_opt_out_reason"] == "phone"


def test_a_second_objection_changes_nothing(world: World) -> None:
    therapist = world.therapist()
    path = f"{BASE}/{therapist['id']}/opt-out"
    first = json.loads(world.request("POST", path, {"reason": "letter"}, roles=("staff",))["body"])
    events, audits = len(world.database.events()), len(world.database.audit)
    again = world.request("POST", path, {"reason": "phone"}, roles=("staff",))
    assert again["statusCode"] == 200
    assert json.loads(again["body"])["contact_opt_out_reason"] == "letter"  # the first is the record
    assert json.loads(again["body"])["contact_opt_out_at"] == first["contact_opt_out_at"]
    assert (len(world.database.events()), len(world.database.audit)) == (events, audits)


def test_the_reason_is_a_code_never_free_text_and_an_auditor_may_not_opt_out(world: World) -> None:
    therapist = world.therapist()
    path = f"{BASE}/{therapist['id']}/opt-out"
    refused = world.request(
        "POST", path, {"reason": "Frau M. sagt am Telefon, sie ist krank"}, roles=("staff",)
    )
    assert refused["statusCode"] == 422 and "reason" in refused["body"]
    assert (
        world.request("POST", path, {"reason": "phone", "note": "x"}, roles=("staff",))["statusCode"] == 422
    )
    assert world.request("POST", path, {"reason": "phone"}, roles=("auditor",))["statusCode"] == 403
    unknown = world.request("POST", f"{BASE}/{uuid.uuid4()}/opt-out", {"reason": "phone"}, roles=("staff",))
    assert unknown["statusCode"] == 404
    assert world.database.events("therapist.updated") == []


# ------------------------------------------------------------------------------ admin opt-in


def test_only_an_admin_with_the_current_etag_allows_inquiries_again(world: World) -> None:
    therapist = world.therapist()
    tid = therapist["id"]
    stale = world.etag(tid)
    world.request("POST", f"{BASE}/{tid}/opt-out", {"reason": "email"}, roles=("staff",))
    path, body = f"{BASE}/{tid}/opt-in", {"reason": "hat schriftlich um neue Anfragen gebeten"}
    assert world.request("POST", path, body, roles=("staff",), headers={"If-Match": "*"})["statusCode"] == 403
    assert world.request("POST", path, body, roles=("admin",))["statusCode"] == 428
    assert (
        world.request("POST", path, body, roles=("admin",), headers={"If-Match": stale})["statusCode"] == 412
    )
    assert json.loads(world.request("GET", f"{BASE}/{tid}", roles=("auditor",))["body"])[
        "contact_opt_out_reason"
    ]
    current = world.etag(tid)
    allowed = world.request("POST", path, body, roles=("admin",), headers={"If-Match": current})
    assert allowed["statusCode"] == 200, allowed["body"]
    assert {name: json.loads(allowed["body"])[name] for name in OPT_OUT_FIELDS} == dict.fromkeys(
        OPT_OUT_FIELDS
    )
    assert world.database.events()[-1].payload["contact_opt_out"] is False
    audit = world.database.audit[-1]
    assert (audit.action, audit.actor, audit.reason) == ("contact_opt_in", ADMIN_USER, body["reason"])


def test_opting_in_a_therapist_who_never_objected_changes_nothing(world: World) -> None:
    therapist = world.therapist()
    events = len(world.database.events())
    path = f"{BASE}/{therapist['id']}/opt-in"
    response = world.request("POST", path, {"reason": "x"}, roles=("admin",), headers={"If-Match": "*"})
    assert response["statusCode"] == 200
    assert len(world.database.events()) == events


# ------------------------------------------------------------------------------ the reply consumer


def test_an_objection_in_a_reply_opts_the_therapist_out_once(world: World) -> None:
    therapist = world.therapist()
    payload = {"therapist_id": therapist["id"]}
    assert world.deliver(payload) == {"batchItemFailures": []}
    stored = world.database.therapists[uuid.UUID(therapist["id"])]
    assert stored.contact_opt_out and stored.contact_opt_out_reason is ContactOptOutReason.REPLY
    audit = world.database.audit[-1]
    assert (audit.action, audit.actor, audit.reason) == ("contact_opt_out", "system:communication", "reply")
    events = len(world.database.events())
    assert world.deliver(payload, message_id="m2") == {"batchItemFailures": []}  # redelivered
    assert len(world.database.events()) == events
    assert world.database.therapists[uuid.UUID(therapist["id"])] == stored
    assert _published(world)[-1]["contact_opt_out"] is True


def test_an_objection_for_an_unknown_therapist_is_done_and_a_bad_payload_is_poison(world: World) -> None:
    unknown = {"therapist_id": str(uuid.uuid4())}
    assert world.deliver(unknown) == {"batchItemFailures": []}
    assert world.database.events() == []
    # Without a dead-letter queue configured the poison message is reported as failed (SQS's
    # redrive takes it to the queue's DLQ); nothing is written.
    assert world.deliver({"therapist_id": "not-an-id"}, message_id="bad") == {
        "batchItemFailures": [{"itemIdentifier": "bad"}]
    }
    assert world.database.events() == []


# ------------------------------------------------------------------------------ imports never undo it

AACHEN = SearchPoint(latitude=50.7766, longitude=6.0834)


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


def test_a_directory_import_never_undoes_an_objection() -> None:
    database, reports, geocoder = DirectoryDatabase(), InMemoryImportReportStore(), FakeGeocoder()

    def run(data: bytes, now: datetime, version: str) -> None:
        source = ImportSource("s3://raw/raw/2026-12-05/52.json", version)
        import_directory_file(
            InMemoryDirectoryImportUnitOfWork(database), reports, geocoder, data, now=now, source=source
        )

    run(_directory_file(entry(id="e1")), NOW, "v1")
    [therapist] = database.therapists.values()
    use_cases.opt_out(
        InMemoryDirectoryImportUnitOfWork(database),
        therapist.id,
        ContactOptOutReason.PHONE,
        actor="staff",
        now=NOW,
    )
    # The next import changes the listing (new phone, new email): the data is updated, the
    # objection stays, and the published event still says so.
    changed = entry(id="e1", tel="0241 999999", email="neu@praxis.example")
    run(_directory_file(changed), NOW + timedelta(days=7), "v2")
    after = database.therapists[therapist.id]
    assert after.phone == "0241 999999" and after.email == "neu@praxis.example"
    assert after.contact_opt_out_reason is ContactOptOutReason.PHONE
    assert after.contact_opt_out_at == NOW
    assert database.events("therapist.updated")[-1].payload["contact_opt_out"] is True


def test_an_operator_bulk_load_never_undoes_an_objection() -> None:
    database = TherapistDatabase()

    def uow() -> InMemoryTherapistUnitOfWork:
        return InMemoryTherapistUnitOfWork(database)

    created = use_cases.create_therapist(
        uow(), FakeGeocoder(), TherapistDraft.model_validate(DRAFT), actor="staff", now=NOW
    ).value
    use_cases.opt_out(uow(), created.id, ContactOptOutReason.LETTER, actor="staff", now=NOW)
    row = {**DRAFT, "phone": "0241 4711", "contact_opt_out_at": "2026-01-01T00:00:00+00:00"}
    report = use_cases.bulk_upsert(uow(), FakeGeocoder(), [row], actor="operator", now=NOW).value
    assert [number for number, _ in report.rejected] == [1]  # the field is not the load's to set
    row.pop("contact_opt_out_at")
    later = NOW + timedelta(hours=1)
    assert use_cases.bulk_upsert(uow(), FakeGeocoder(), [row], actor="operator", now=later).value.updated == 1
    after = database.therapists[created.id]
    assert after.phone == "0241 4711"
    assert after.contact_opt_out and after.contact_opt_out_reason is ContactOptOutReason.LETTER


def test_the_sample_objection_event_runs_through_the_consumer(world: World) -> None:
    """events/therapist_matching_events/sqs_opt_out_received.json (`localcloud invoke`) stays valid."""
    sample = (
        Path(__file__).resolve().parents[2]
        / "events"
        / "therapist_matching_events"
        / "sqs_opt_out_received.json"
    )
    therapist = world.therapist()
    sample_id = uuid.UUID("ec54bc08-dcaa-4e6b-b4b5-8efdcff46c96")
    stored = world.database.therapists.pop(uuid.UUID(therapist["id"]))
    world.database.therapists[sample_id] = stored.model_copy(update={"id": sample_id})
    event = json.loads(sample.read_text(encoding="utf-8"))
    assert world.consumer_module.lambda_handler(event, FakeLambdaContext()) == {"batchItemFailures": []}
    assert world.database.therapists[sample_id].contact_opt_out_reason is ContactOptOutReason.REPLY
