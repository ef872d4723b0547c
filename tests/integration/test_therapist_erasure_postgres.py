"""Therapist erasure (GDPR Art. 17) against real PostgreSQL, each service with its own role: a
therapist imported from the directory receives a bundle (matching), an inquiry email, sends a
reply, lands on the review list and a call list and is named in a patient's "place found" email
(communication). After POST .../erase and `therapist.deleted` through the matching and
communication consumers, no text or JSON column of any schema holds their name, email or phone,
a queued email to them is cancelled, and re-importing the same directory entry does not bring
them back."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, select, text

from communication_fakes import ADDRESSING, LEGAL, FakeQueue
from communication_state_fakes import deliver as deliver_to_communication
from directory_fakes import entry
from matching_world import World, reset_matching
from support import ADMIN, api_event, call, load_function
from therapy_platform.communication.adapters.contact_directory import LookupContactDirectory
from therapy_platform.communication.adapters.tables import (
    emails,
    inbound_replies,
    phone_call_tasks,
    reply_reviews,
)
from therapy_platform.communication.adapters.unit_of_work import SqlCommunicationUnitOfWork
from therapy_platform.communication.domain.phone_calls import CallPlanningPolicy, WorkingCalendar
from therapy_platform.communication.domain.tracking import FollowUpPolicy
from therapy_platform.communication.rendering.renderer import EmailRenderer
from therapy_platform.communication.use_cases.events import CommunicationContext
from therapy_platform.contracts.contacts import ContactState, InvokedContacts, PatientContactCard
from therapy_platform.contracts.directory_files import RawPage, RawRun, Region, SearchPoint
from therapy_platform.matching.adapters.unit_of_work import SqlMatchingUnitOfWork
from therapy_platform.matching.bootstrap import MatchingService, profile_event_consumer
from therapy_platform.matching.domain.bundles import RoundRequest
from therapy_platform.matching.use_cases import bundles as bundle_cases
from therapy_platform.platform.consumer import Delivery
from therapy_platform.platform.events import BusMessage, EventEnvelope
from therapy_platform.platform.geography.postcodes import postcode_directory
from therapy_platform.platform.tables import outbox_table
from therapy_platform.therapists.adapters.store import SqlTherapistUnitOfWork
from therapy_platform.therapists.bootstrap import TherapistService
from therapy_platform.therapists.imports.adapters.store import (
    SqlDirectoryImportUnitOfWork,
    SqlImportReportStore,
)
from therapy_platform.therapists.imports.domain.reports import ImportResult, ImportSource
from therapy_platform.therapists.imports.use_cases import import_directory_file
from therapy_platform.therapists.use_cases import contact_card

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # the matching world's Monday morning
AACHEN = SearchPoint(latitude=50.7766, longitude=6.0834)
SCHEMAS = ("therapist", "matching", "communication")
TEXT_TYPES = ("text", "character varying", "json", "jsonb", "ARRAY")


@pytest.fixture
def engines(admin_engine: Engine, service_url: Callable[[str], str]) -> Iterator[dict[str, Engine]]:
    reset_matching(admin_engine)
    # Bundle numbers restart with matching's tables: communication's copies of earlier tests'
    # bundles would collide with this test's (the integration database lives for the session).
    with admin_engine.begin() as connection:
        connection.execute(
            text("TRUNCATE communication_service.sent_bundles, communication_service.emails CASCADE")
        )
    made = {schema: create_engine(service_url(f"{schema}_service"), pool_size=2) for schema in SCHEMAS}
    yield made
    for engine in made.values():
        engine.dispose()


class Canary:
    """A therapist whose every identifying value is unique to this test run."""

    def __init__(self) -> None:
        token = uuid.uuid4().hex[:8]
        self.directory_id = f"kanarie-{token}"
        self.first_name = "Kanarie"
        self.last_name = f"Löschprobe{token}"
        self.email = f"kanarie.{token}@praxis-probe.example"
        digits = "".join(random.choice("0123456789") for _ in range(7))
        self.phone = f"0241 {digits}"
        self.phone_digits = f"0241{digits}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def patterns(self) -> list[str]:
        return [self.last_name, self.email, self.phone, self.phone_digits, self.directory_id]

    def entry(self) -> dict[str, Any]:
        return entry(
            id=self.directory_id,
            vorname=self.first_name,
            name=self.last_name,
            email=self.email,
            tel=self.phone,
            fax="",
            web="",
        )


def _file(canary: Canary) -> bytes:
    return RawRun(
        region=Region.parse({"prefix": "52", "radius_km": 10}),
        radius_km=10,
        points=[AACHEN],
        complete=False,
        pages=[
            RawPage(point=AACHEN, page=0, answer={"arztPraxisDatas": [canary.entry()], "moreResults": False})
        ],
    ).to_json_bytes()


def _import(engines: dict[str, Engine], canary: Canary, version: str) -> ImportResult:
    engine = engines["therapist"]
    return import_directory_file(
        SqlDirectoryImportUnitOfWork(engine),
        SqlImportReportStore(engine),
        postcode_directory(),
        _file(canary),
        source=ImportSource(f"s3://raw/raw/2026-11-22/52-{uuid.uuid4().hex[:6]}.json", version),
        now=NOW - timedelta(days=1),
    ).value


def _events(
    admin_engine: Engine, schema: str, event_type: str, key: str | None = None
) -> list[EventEnvelope]:
    outbox = outbox_table(schema)
    query = select(outbox.c.envelope).where(outbox.c.event_type == event_type).order_by(outbox.c.id)
    if key is not None:
        query = query.where(outbox.c.aggregate_key == key)
    with admin_engine.connect() as connection:
        return [EventEnvelope.model_validate(row) for row in connection.execute(query).scalars()]


def _deliver_to_matching(engine: Engine, envelope: EventEnvelope) -> dict[str, Any]:
    consumer = profile_event_consumer(
        MatchingService(unit_of_work=lambda: SqlMatchingUnitOfWork(engine), clock=lambda: NOW)
    )
    body = json.dumps({"detail": BusMessage(key="k", envelope=envelope).model_dump(mode="json")})
    [handled] = consumer.handle_batch([Delivery(str(uuid.uuid4()), body, 1, "", "")]).handled
    return {"outcome": handled.outcome, **handled.detail}


def _contacts(therapists: Engine) -> LookupContactDirectory:
    """The contact directory as deployed, with the invocation done in-process: therapist cards
    from the real therapist service on PostgreSQL (an erased therapist answers `erased`)."""

    def invoke(function: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        person = uuid.UUID(str(payload["id"]))
        if function == "therapists":
            return contact_card(SqlTherapistUnitOfWork(therapists), person).model_dump(mode="json")
        return PatientContactCard(id=person, state=ContactState.UNKNOWN).model_dump(mode="json")

    return LookupContactDirectory(
        InvokedContacts(invoke, patient_function="patients", therapist_function="therapists")
    )


def _communication(engines: dict[str, Engine]) -> CommunicationContext:
    calls = CallPlanningPolicy()
    return CommunicationContext(
        unit_of_work=lambda: SqlCommunicationUnitOfWork(
            engines["communication"], contacts=lambda: _contacts(engines["therapist"])
        ),
        queue=FakeQueue(),
        renderer=EmailRenderer(LEGAL),
        addressing=ADDRESSING,
        calls=calls,
        follow_up=FollowUpPolicy(),
        calendar=WorkingCalendar.for_policy(calls),
        clock=lambda: NOW,
    )


def _therapists_api(engines: dict[str, Engine], monkeypatch: pytest.MonkeyPatch) -> Any:
    module = load_function("therapists_api")
    service = TherapistService(
        unit_of_work=lambda: SqlTherapistUnitOfWork(engines["therapist"]),
        geocoder=postcode_directory,
        clock=lambda: NOW + timedelta(hours=1),
    )
    monkeypatch.setattr(module, "service", service)
    return module


def _erase(api: Any, therapist_id: str) -> tuple[int, Any]:
    event = api_event(
        "POST", f"/api/v2/therapists/{therapist_id}/erase", user="admin@team.example", roles=ADMIN
    )
    return call(api.lambda_handler, event)


def _findings(admin_engine: Engine, patterns: list[str]) -> list[str]:
    """Every schema.table.column (text, varchar, json, jsonb, arrays) holding any pattern."""
    found: list[str] = []
    with admin_engine.connect() as connection:
        columns = connection.execute(
            text(
                "SELECT table_schema, table_name, column_name FROM information_schema.columns"
                " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
                " AND data_type = ANY(:types)"
                " AND table_name IN (SELECT table_name FROM information_schema.tables"
                "   WHERE table_type = 'BASE TABLE' AND table_schema = columns.table_schema)"
            ),
            {"types": list(TEXT_TYPES)},
        ).all()
        for schema, table, column in columns:
            hits = connection.execute(
                text(
                    f'SELECT count(*) FROM "{schema}"."{table}" WHERE "{column}"::text ILIKE ANY(:patterns)'
                ),
                {"patterns": [f"%{pattern}%" for pattern in patterns]},
            ).scalar_one()
            if hits:
                found.append(f"{schema}.{table}.{column}")
    return found


def _history(
    engines: dict[str, Engine], admin_engine: Engine, canary: Canary, therapist_id: str
) -> dict[str, uuid.UUID]:
    """The therapist's life on the platform up to the erasure; returns the ids of the emails
    written beside the inquiry."""
    [imported] = _events(admin_engine, "therapist_service", "therapist.imported", therapist_id)
    assert _deliver_to_matching(engines["matching"], imported)["changed"] is True
    context = _communication(engines)
    # Communication keeps no therapist copies: of the therapist events it takes only the erasure.
    assert deliver_to_communication(context, imported).outcome == "ignored"
    world = World(engines["matching"])
    for days in (90, 60, 30):
        world.search(postcode="52062", waited_days=days)
    result = bundle_cases.run_round(
        world.uow(),
        RoundRequest(therapist_ids=[uuid.UUID(therapist_id)], send_immediately=True),
        actor="test",
        trigger="api",
        now=NOW,
    ).value
    [planned] = result.bundles
    assert planned.bundle_id is not None
    [sent] = _events(admin_engine, "matching_service", "bundle.sent", str(planned.bundle_id))
    assert "email" not in sent.payload["therapist"]  # looked up by communication when it writes
    reaction = deliver_to_communication(context, sent)
    assert reaction.outcome == "done" and len(reaction.emails) == 1, reaction
    return _mail_and_calls(engines["communication"], canary, therapist_id, str(sent.payload["reference"]))


def _mail_and_calls(
    engine: Engine, canary: Canary, therapist_id: str, reference: str
) -> dict[str, uuid.UUID]:
    """A reply from the therapist, a review-list entry from their address, a call task with notes,
    and a patient's "place found" email naming them (as the service writes them)."""
    slot = NOW.replace(hour=9, minute=0)
    ids = {"ad_hoc": uuid.uuid4(), "place_found": uuid.uuid4()}
    with engine.begin() as connection:
        connection.execute(
            inbound_replies.insert().values(
                id=uuid.uuid4(),
                message_id=f"<{uuid.uuid4()}@praxis-probe.example>",
                from_address=canary.email,
                to_address=f"antwort+{reference}@reply.example.org",
                subject=f"Re: Anfrage {reference}",
                text=f"Leider kein Platz frei. {canary.full_name}, Tel. {canary.phone}",
                html=None,
                bundle_reference=reference,
                received_at=NOW,
            )
        )
        connection.execute(
            reply_reviews.insert().values(
                id=uuid.uuid4(),
                inbox_key=f"inbound/{uuid.uuid4()}",
                reasons=["unknown_bundle"],
                from_address=canary.email,
                to_address="antwort@reply.example.org",
                subject="Frage",
                text=f"Grüße, {canary.full_name}",
                verdicts={},
                size_bytes=100,
                received_at=NOW,
                created_at=NOW,
            )
        )
        connection.execute(
            phone_call_tasks.insert().values(
                id=uuid.uuid4(),
                purpose="follow_up",
                therapist_id=uuid.UUID(therapist_id),
                therapist_name=canary.full_name,
                phone=canary.phone,
                slot_start=slot,
                status="scheduled",
                outcome_notes=f"{canary.last_name} bittet um Rückruf unter {canary.phone}",
                created_at=NOW,
                updated_at=NOW,
            )
        )
        connection.execute(  # an ad-hoc email staff typed to their address (no recipient id)
            emails.insert().values(
                id=ids["ad_hoc"],
                kind="ad_hoc",
                recipient=canary.email.upper(),
                recipient_name=canary.full_name,
                recipient_type="therapist",
                recipient_id=None,
                sender="team@example.org",
                subject="Rückfrage",
                html="<p>Guten Tag</p>",
                text="Guten Tag",
                status="draft",
                attempts=0,
                max_attempts=5,
                interrupted_attempts=0,
                message_id=f"<{uuid.uuid4()}@example.org>",
                created_at=NOW,
                updated_at=NOW,
            )
        )
        connection.execute(
            emails.insert().values(
                id=ids["place_found"],
                kind="patient_place_found",
                recipient="petra@example.org",
                recipient_type="patient",
                recipient_id=uuid.uuid4(),
                sender="team@example.org",
                subject="Ein Therapieplatz für Sie",
                html=f"<p>{canary.full_name}, <a href='mailto:{canary.email}'>{canary.email}</a></p>",
                text=f"Ihre Therapeutin: {canary.full_name}, {canary.email}, {canary.phone}",
                status="sent",
                attempts=1,
                max_attempts=5,
                interrupted_attempts=0,
                message_id=f"<{uuid.uuid4()}@example.org>",
                created_at=NOW,
                sent_at=NOW,
                updated_at=NOW,
            )
        )

    return ids


def test_an_erased_therapist_leaves_no_trace_and_is_never_imported_again(
    engines: dict[str, Engine], admin_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = Canary()
    assert _import(engines, canary, "v1").report.counts.new == 1
    with admin_engine.connect() as connection:
        therapist_id = str(
            connection.execute(
                text("SELECT id FROM therapist_service.therapists WHERE directory_id = :d"),
                {"d": canary.directory_id},
            ).scalar_one()
        )
    written = _history(engines, admin_engine, canary, therapist_id)
    [sent] = _events(admin_engine, "matching_service", "bundle.sent")
    # The scan does see them, everywhere they live before the erasure.
    assert {
        "therapist_service.therapists.email",
        "therapist_service.audit_log.after",
        "therapist_service.directory_listings.directory_id",
        "communication_service.sent_bundles.therapist",
        "communication_service.emails.text",
        "communication_service.inbound_replies.text",
        "communication_service.reply_reviews.text",
        "communication_service.phone_call_tasks.outcome_notes",
    } <= set(_findings(admin_engine, canary.patterns()))

    api = _therapists_api(engines, monkeypatch)
    status, erased = _erase(api, therapist_id)
    assert status == 200 and erased["erased_now"] is True, erased
    [deleted] = _events(admin_engine, "therapist_service", "therapist.deleted", therapist_id)
    assert set(deleted.payload) == {"id", "erased_at"}
    matching = _deliver_to_matching(engines["matching"], deleted)
    assert matching["outcome"] == "applied" and len(matching["acted_on"]) == 1
    [bundle_id] = matching["acted_on"]
    closed = bundle_cases.get_bundle(World(engines["matching"]).uow(), uuid.UUID(bundle_id), now=NOW).value
    assert closed.status == "expired" and {member.status for member in closed.members} == {"withdrawn"}
    assert closed.practice_key == f"therapist:{therapist_id}"
    communication = _communication(engines)
    assert deliver_to_communication(communication, deleted).outcome == "done"
    # What follows the erasure: matching's bundle.expired, and a bundle.sent delayed past it.
    [expired] = _events(admin_engine, "matching_service", "bundle.expired")
    assert deliver_to_communication(communication, expired).outcome == "done"
    late = sent.model_copy(update={"event_id": uuid.uuid4()})
    assert deliver_to_communication(communication, late).emails == ()

    assert _findings(admin_engine, canary.patterns()) == []
    with admin_engine.connect() as connection:
        state = text("SELECT status, last_error FROM communication_service.emails WHERE id = :e")
        inquiry = connection.execute(
            text(
                "SELECT status, last_error FROM communication_service.emails"
                " WHERE recipient_type = 'therapist' AND recipient_id = :t"
            ),
            {"t": therapist_id},
        ).one()
        ad_hoc = connection.execute(state, {"e": written["ad_hoc"]}).one()
        call_status = connection.execute(
            text("SELECT status FROM communication_service.phone_call_tasks WHERE therapist_id = :t"),
            {"t": therapist_id},
        ).scalar_one()
        bundle_status = connection.execute(
            text("SELECT status FROM matching_service.bundles WHERE therapist_id = :t"), {"t": therapist_id}
        ).scalar_one()
        place_found = connection.execute(
            text("SELECT text FROM communication_service.emails WHERE id = :e"), {"e": written["place_found"]}
        ).scalar_one()
    assert inquiry.status == "failed" and inquiry.last_error.startswith("cancelled")  # never sent
    assert ad_hoc.status == "failed" and ad_hoc.last_error.startswith("cancelled")
    assert (call_status, bundle_status) == ("cancelled", "expired")
    assert place_found.startswith("Ihre Therapeutin: [gelöscht]")  # the patient's email keeps its sense

    # Repeating the erasure is harmless; re-importing the entry does not bring the therapist back.
    status, again = _erase(api, therapist_id)
    assert status == 200 and again["erased_now"] is False
    reimport = _import(engines, canary, "v2")
    assert (reimport.report.counts.suppressed, reimport.report.counts.new) == (1, 0)
    assert _findings(admin_engine, canary.patterns()) == []
