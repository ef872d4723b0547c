"""The erasure proof against real PostgreSQL (issue 12 item 2; the deployed stack's twin is
tests/e2e/test_erasure_canary.py): a patient with unique canary values goes through the
services' use cases and handlers (registration, matching read model, a search with a staff
note, a staff bundle sent by email, the patient's "search started" email left queued, a
reply naming the patient taken in from a Maildir, a phone bundle whose call note names the
patient), is erased, and `patient.deleted` reaches matching and communication. Then no text
or JSON column of any table of any schema, and no stored reply mail, contains any canary
value; the queued email was cancelled before it was sent; statistics kept an anonymous row."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from canary_scan import Canary, files_under, scan_database, scan_objects
from sqlalchemy import Engine, text

from communication_fakes import ADDRESSING, LEGAL, FakeQueue
from communication_state_fakes import THERAPIST_SERVICE, bundle_sent_payload, deliver, envelope
from fakes import FakeBus
from localcloud.aws import client
from matching_world import World
from support import api_event, call, least_roles, load_function
from therapy_platform.communication.adapters.contact_directory import LookupContactDirectory
from therapy_platform.communication.adapters.patient_erasure import MaildirStoredMail, S3StoredMail
from therapy_platform.communication.adapters.reply_inbox import MaildirInbox
from therapy_platform.communication.adapters.unit_of_work import SqlCommunicationUnitOfWork
from therapy_platform.communication.domain.emails import reply_address
from therapy_platform.communication.domain.patient_erasure import HeldValues, patient_terms
from therapy_platform.communication.domain.phone_calls import (
    CallCompletion,
    CallPlanningPolicy,
    PhoneCallOutcome,
    WorkingCalendar,
)
from therapy_platform.communication.domain.tracking import FollowUpPolicy
from therapy_platform.communication.rendering.renderer import EmailRenderer
from therapy_platform.communication.use_cases.events import CommunicationContext
from therapy_platform.communication.use_cases.patient_erasure import delete_stored_mails
from therapy_platform.communication.use_cases.phone_calls import complete_call
from therapy_platform.communication.use_cases.replies import take_in_replies
from therapy_platform.contracts.contacts import ContactState, InvokedContacts, TherapistContactCard
from therapy_platform.matching.adapters.unit_of_work import SqlMatchingUnitOfWork
from therapy_platform.matching.domain.bundles import StaffBundleRequest
from therapy_platform.matching.domain.searches import SearchDraft
from therapy_platform.matching.use_cases.bundles import staff_bundle
from therapy_platform.matching.use_cases.profile_events import apply_profile_event
from therapy_platform.matching.use_cases.searches import create_search
from therapy_platform.patients.adapters.store import SqlPatientUnitOfWork
from therapy_platform.patients.bootstrap import build
from therapy_platform.patients.use_cases import contact_card
from therapy_platform.platform.database import make_engine
from therapy_platform.platform.events import EventEnvelope
from therapy_platform.platform.geography.postcodes import postcode_directory
from therapy_platform.platform.idempotency import SqlIdempotencyStore

pytestmark = pytest.mark.integration

STAFF = "sabine.staff@example.org"
NOW = datetime(2026, 11, 23, 6, 5, tzinfo=UTC)  # Monday 07:05 in Berlin


@pytest.fixture(scope="module")
def engines(service_url: Callable[[str], str]) -> Iterator[dict[str, Engine]]:
    made = {
        name: make_engine(service_url(schema))
        for name, schema in (
            ("patients", "patient_service"),
            ("matching", "matching_service"),
            ("communication", "communication_service"),
        )
    }
    yield made
    for engine in made.values():
        engine.dispose()


def _contacts(patients: Engine) -> LookupContactDirectory:
    """The contact directory as deployed, with the invocation done in-process: patient cards from
    the real patient service (its contacts use case on PostgreSQL, so an erased patient answers
    `erased`), therapist cards from the fake therapist service the payload helpers fill."""

    def invoke(function: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        person = uuid.UUID(payload["id"])
        if function == "patients":
            return contact_card(lambda: SqlPatientUnitOfWork(patients), person).model_dump(mode="json")
        card = THERAPIST_SERVICE.get(person) or TherapistContactCard(id=person, state=ContactState.UNKNOWN)
        return card.model_dump(mode="json")

    return LookupContactDirectory(
        InvokedContacts(invoke, patient_function="patients", therapist_function="therapists")
    )


def _communication(engine: Engine, maildir: Path, patients: Engine) -> CommunicationContext:
    calls = CallPlanningPolicy()
    return CommunicationContext(
        unit_of_work=lambda: SqlCommunicationUnitOfWork(engine, contacts=lambda: _contacts(patients)),
        queue=FakeQueue(),
        renderer=EmailRenderer(LEGAL),
        addressing=ADDRESSING,
        calls=calls,
        follow_up=FollowUpPolicy(),
        calendar=WorkingCalendar.for_policy(calls),
        clock=lambda: NOW,
        stored_mail=MaildirStoredMail(maildir),
    )


def _to_matching(engine: Engine, event: EventEnvelope) -> None:
    with SqlMatchingUnitOfWork(engine) as uow:
        apply_profile_event(uow, event, now=NOW)
        uow.commit()


def _reply(canary: Canary, to: str, maildir: Path) -> None:
    message = EmailMessage()
    message["From"] = "praxis.erasure@example.org"
    message["To"] = to
    message["Subject"] = "Re: Anfrage"
    message["Message-ID"] = f"<{uuid.uuid4()}@example.org>"
    message.set_content(
        f"Guten Tag, Frau {canary.first_name} {canary.last_name} ({canary.email}) kann am Dienstag kommen."
    )
    (maildir / "new").mkdir(parents=True, exist_ok=True)
    for folder in ("cur", "tmp"):
        (maildir / folder).mkdir(exist_ok=True)
    (maildir / "new" / f"{int(NOW.timestamp())}.{uuid.uuid4().hex}.test").write_bytes(bytes(message))


def _links(connection: Any, search_id: uuid.UUID, member_reference: str) -> tuple[int, int]:
    """(tracked bundles listing the search, emails naming the member reference)."""
    row = connection.execute(
        text(
            "SELECT (SELECT count(*) FROM communication_service.sent_bundles"
            " WHERE members @> CAST(:member AS jsonb)),"
            " (SELECT count(*) FROM communication_service.emails WHERE text LIKE :ref OR html LIKE :ref)"
        ),
        {"member": f'[{{"search_id": "{search_id}"}}]', "ref": f"%{member_reference}%"},
    ).one()
    return int(row[0]), int(row[1])


def test_an_erased_patient_leaves_no_value_in_any_table_or_stored_mail(
    engines: dict[str, Engine], admin_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = Canary.new()
    maildir = tmp_path / "maildir"
    communication = _communication(engines["communication"], maildir, engines["patients"])

    # --- the patient service: registration
    patients_api = load_function("patients_api")
    bus = FakeBus()
    patients = replace(
        build(engine=lambda: engines["patients"], publisher=lambda: bus), geocoder=postcode_directory()
    )
    monkeypatch.setattr(patients_api, "service", patients)
    keys = SqlIdempotencyStore(lambda: engines["patients"], "patient_service")
    monkeypatch.setattr(patients_api, "idempotency_keys", keys)

    def request(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        # An Idempotency-Key: the stored answer holds the whole record until the erasure.
        headers = {"Idempotency-Key": str(uuid.uuid4())} if method == "POST" else None
        event = api_event(method, path, body, user=STAFF, roles=least_roles(method, path), headers=headers)
        return call(patients_api.lambda_handler, event)

    status, created = request(
        "POST",
        "/api/v2/patients",
        {
            "salutation": "Frau",
            "gender": "female",
            "first_name": canary.first_name,
            "last_name": canary.last_name,
            "birth_date": "1990-04-01",
            "street": "Pontstraße 3",
            "postcode": "52062",
            "city": "Aachen",
            "email": canary.email,
            "phone": canary.phone,
            "health_insurer": "AOK Rheinland/Hamburg",
            "symptoms": ["anxiety", "sleep"],
            "max_travel_km": 30,
            "travel_mode": "car",
            "notes": f"Erreichbar unter {canary.phone}",
        },
    )
    assert status == 201, created
    patient_id = uuid.UUID(created["id"])
    [registered] = [m.envelope for m in bus.messages if m.envelope.event_type == "patient.created"]

    # --- matching: read model, a search with a staff note, a staff bundle sent by email
    _to_matching(engines["matching"], registered)
    world = World(engines["matching"], now=NOW)
    therapist = world.therapist(postcode="52062", email="praxis.erasure@example.org")
    THERAPIST_SERVICE[therapist.id] = TherapistContactCard(
        id=therapist.id,
        state=ContactState.FOUND,
        last_name="Erasure",
        email="praxis.erasure@example.org",
    )
    search = create_search(
        SqlMatchingUnitOfWork(engines["matching"]),
        SearchDraft(patient_id=patient_id, notes=f"Frau {canary.last_name} nur vormittags"),
        actor=STAFF,
        now=NOW - timedelta(days=20),
    )
    bundle = staff_bundle(
        SqlMatchingUnitOfWork(engines["matching"]),
        therapist.id,
        StaffBundleRequest(
            search_ids=[search.value.id],
            send_immediately=True,
            notes=f"auf Wunsch von {canary.first_name} {canary.last_name}",
        ),
        actor=STAFF,
        now=NOW,
    )
    assert bundle.value.bundle is not None

    # --- communication: contact, "search started" email (left queued), the inquiry email
    for event in (registered, *search.events, *bundle.events):
        assert deliver(communication, event).outcome in ("done", "ignored"), event.event_type
    with admin_engine.connect() as connection:
        queued = connection.execute(
            text(
                "SELECT id, status FROM communication_service.emails"
                " WHERE recipient_type = 'patient' AND recipient_id = :id"
            ),
            {"id": patient_id},
        ).all()
        reference = connection.execute(
            text("SELECT bundle_reference FROM communication_service.emails WHERE bundle_id = :id"),
            {"id": bundle.value.bundle.bundle_id},
        ).scalar_one()
        member_reference = connection.execute(
            text(
                "SELECT m->>'reference' FROM communication_service.sent_bundles,"
                " jsonb_array_elements(members) m WHERE id = :id AND m->>'search_id' = :search"
            ),
            {"id": bundle.value.bundle.bundle_id, "search": str(search.value.id)},
        ).scalar_one()
    assert [row.status for row in queued] == ["queued"]

    # a reply naming the patient, taken in from the Maildir (kept in cur/ afterwards)
    _reply(canary, reply_address(ADDRESSING.reply_domain, reference), maildir)
    report = take_in_replies(communication.unit_of_work, MaildirInbox(maildir), ADDRESSING, now=NOW)
    assert report.looked_at == 1
    assert scan_objects(files_under(maildir), canary)  # the scan sees the stored mail

    # a phone bundle, and the call's note naming the patient
    phone = deliver(
        communication,
        envelope(
            "bundle.sent",
            bundle_sent_payload(number=900000 + int(uuid.uuid4().int % 99999), sent_at=NOW, email=None),
            at=NOW,
        ),
    )
    [call_id] = phone.calls
    complete_call(
        SqlCommunicationUnitOfWork(engines["communication"]),
        call_id,
        CallCompletion(
            outcome=PhoneCallOutcome.REACHED,
            notes=f"Praxis fragt nach {canary.first_name} {canary.last_name}",
        ),
        actor=STAFF,
        now=NOW,
    )
    with admin_engine.connect() as connection:
        before = scan_database(connection, canary)
        assert _links(connection, search.value.id, member_reference) >= (1, 1)
    assert "patient_service.idempotency_keys.body" in {hit.where for hit in before}, before
    assert {hit.where.split(".")[0] for hit in before} >= {
        "patient_service",
        "matching_service",
        "communication_service",
    }, before

    # --- erasure: the patient service, then patient.deleted to every consumer (twice: idempotent)
    status, erased = request("DELETE", f"/api/v2/patients/{patient_id}")
    assert status == 200, erased
    [deleted] = [m.envelope for m in bus.messages if m.envelope.event_type == "patient.deleted"]
    for _ in range(2):
        with SqlMatchingUnitOfWork(engines["matching"]) as uow:
            outcome = apply_profile_event(uow, deleted, now=NOW)
            uow.commit()
        for event in outcome.events:  # the search's cancellation, withdrawals
            deliver(communication, event)
        assert deliver(communication, deleted).outcome in ("done", "duplicate")

    # --- the proof
    with admin_engine.connect() as connection:
        left = scan_database(connection, canary)
        cancelled = connection.execute(
            text("SELECT status, last_error, recipient FROM communication_service.emails WHERE id = :id"),
            {"id": queued[0].id},
        ).one()
        statistics = connection.execute(
            text(
                "SELECT count(*) FROM patient_service.patient_statistics"
                " WHERE age_band = '35-44' AND postcode_region = '52' AND symptoms = '{anxiety,sleep}'"
            )
        ).scalar_one()
        linked = _links(connection, search.value.id, member_reference)
    assert left == [], left
    # The summary the inquiry carried no longer links to the patient: the tracked member is
    # gone, and no email names their member reference any more.
    assert linked == (0, 0)
    assert scan_objects(files_under(maildir), canary) == []
    assert cancelled.status == "failed" and "erased" in cancelled.last_error
    assert cancelled.recipient == "geloescht@invalid"
    assert statistics >= 1


def test_stored_reply_mails_in_s3_that_name_the_patient_are_deleted(localstack_server: None) -> None:
    """The S3 adapter of `StoredMail` (the reply bucket's `processed/` in AWS) against LocalStack:
    only the processed mails that name the patient go; inbound and other mails stay."""
    canary = Canary.new()
    s3 = client("s3")
    bucket = f"erasure-test-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    naming = EmailMessage()
    naming["From"], naming["Subject"] = canary.email, "Rückfrage"
    naming.set_content(f"Viele Grüße, {canary.first_name} {canary.last_name}", cte="base64")
    objects = {
        "processed/naming": bytes(naming),
        "processed/other": b"From: praxis@example.org\r\nSubject: Re: B1\r\n\r\nKein Platz.\r\n",
        "inbound/naming": bytes(naming),  # not yet taken in: reply intake's, not the erasure's
    }
    for key, body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    terms = patient_terms(
        HeldValues(addresses=(canary.email,), names=(f"{canary.first_name} {canary.last_name}",))
    )
    try:
        deleted = delete_stored_mails(S3StoredMail(s3, bucket, prefix="processed/"), terms)
        left = sorted(item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
        assert (deleted, left) == (1, ["inbound/naming", "processed/other"])
        assert delete_stored_mails(S3StoredMail(s3, bucket, prefix="processed/"), terms) == 0
    finally:
        for key in objects:
            s3.delete_object(Bucket=bucket, Key=key)
        s3.delete_bucket(Bucket=bucket)
