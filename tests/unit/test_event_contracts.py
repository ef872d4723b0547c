"""Event contract tests: what each producer puts on the bus is exactly what its contract model in
`therapy_platform/contracts/` describes.

For every event type of the catalogue, payloads are built the way the producing use case builds
them today (the services' own domain models and functions; `bundle.sent` and
`search.status_changed` through the matching use cases themselves), then
- the contract model parses them and serialises them back to the very same JSON;
- the committed JSON Schema (events/schemas/) accepts them inside an envelope.
Plus the rules around the catalogue: a topic and a schema per event type, contracts importing no
service, frozen models that tolerate fields a newer producer adds, enum values a consumer can
parse for every value a producer has.
"""

from __future__ import annotations

import ast
import enum
import json
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any, Final, Literal, get_args

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matching_fakes import MatchingWorld, StoredProfile
from pydantic import BaseModel, ValidationError

from therapy_platform.communication.domain import emails as email_domain
from therapy_platform.communication.domain import opt_out as opt_out_domain
from therapy_platform.communication.domain import phone_calls as call_domain
from therapy_platform.contracts import bundles, communication, patients, searches, therapists
from therapy_platform.contracts.base import EventPayload
from therapy_platform.contracts.catalog import EVENT_PAYLOADS
from therapy_platform.contracts.practices import hashed_practice_key
from therapy_platform.contracts.schedule import Weekday
from therapy_platform.contracts.symptoms import Symptom
from therapy_platform.contracts.therapy import Gender, TherapyProcedure
from therapy_platform.matching.domain import bundles as bundle_domain
from therapy_platform.matching.domain import models as matching_models
from therapy_platform.matching.domain import responses as response_domain
from therapy_platform.matching.domain import searches as search_domain
from therapy_platform.matching.domain.bundle import BundleMemberRecord, BundleRecord
from therapy_platform.matching.domain.read_models import ProfileKind
from therapy_platform.matching.use_cases.bundles import send_bundle
from therapy_platform.matching.use_cases.changes import Changes, status_changed
from therapy_platform.patients.domain import patient as patient_domain
from therapy_platform.patients.registration_intake import self_registered_payload
from therapy_platform.platform.events import TOPIC_BY_PREFIX, new_envelope, topic_for
from therapy_platform.platform.geography.locations import Location, LocationPrecision, TravelMode
from therapy_platform.therapists.domain import therapist as therapist_domain
from tools import event_schemas

NOW: Final = datetime(2026, 11, 23, 6, 5, 12, 345678, tzinfo=UTC)
LATER: Final = NOW + timedelta(days=3, hours=2)
CONTRACTS_DIR: Final = Path(bundles.__file__).resolve().parent
# Payloads that keep unknown fields (none since the minimal events: a snapshot keeps only what
# its contract declares, so a field a producer adds by mistake never reaches the bus).
SNAPSHOTS: Final[tuple[type[EventPayload], ...]] = ()

Payload = dict[str, Any]


def _id(name: str) -> uuid.UUID:
    """Stable ids, so a failing comparison is readable."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"https://contracts.test/{name}")


# ------------------------------------------------------------------ producers' payloads


def _patients() -> tuple[patient_domain.Patient, patient_domain.Patient, patient_domain.Patient]:
    """A fully described patient, the same patient after a PUT, and a bare minimum one."""
    full = patient_domain.PatientDraft(
        salutation="Frau",
        gender=Gender.FEMALE,
        first_name="Ayşe",
        last_name="Yilmaz-Schneider",
        birth_date=date(1985, 4, 12),
        street="Karl-Marx-Straße 12",
        postcode="12043",
        city="Berlin",
        email="ayse@example.de",
        phone="+49 30 1234567",
        health_insurer="AOK Nordost",
        insurance_type=patient_domain.InsuranceType.STATUTORY,
        symptoms=[Symptom.ANXIETY, Symptom.SLEEP],
        previous_therapy=True,
        last_therapy_session=date(2021, 6, 1),
        therapy_procedures=[TherapyProcedure.BEHAVIOURAL, TherapyProcedure.SYSTEMIC],
        preferred_therapist_gender=patient_domain.TherapistGenderPreference.FEMALE,
        open_to_group_therapy=True,
        languages=["tr", "de"],
        needs_shared_language=True,
        max_travel_km=15,
        travel_mode=TravelMode.CAR,
        availability={Weekday.MON: ["08:00-12:00", "14:00 - 18:00"], Weekday.THU: ["17:00-24:00"]},
        excluded_therapist_ids=[_id("excluded-therapist")],
        notes="Bevorzugt Termine\nam Vormittag.",
    )
    registered = patient_domain.Patient.register(
        full,
        now=NOW,
        location=Location.at(52.4811, 13.4352, LocationPrecision.ADDRESS),
        patient_id=_id("patient"),
    )
    revised = registered.revised(
        full.model_copy(update={"street": None, "insurance_type": patient_domain.InsuranceType.SELF_PAY}),
        status=patient_domain.PatientStatus.SEARCHING,
        location=Location.at(52.48, 13.43, LocationPrecision.POSTCODE),
        now=LATER,
    )
    bare = patient_domain.Patient.register(
        patient_domain.PatientDraft(
            first_name="Jonas", last_name="Berg", postcode="01067", symptoms=[Symptom.DEPRESSION]
        ),
        now=NOW,
        location=Location.unknown(),
        patient_id=_id("bare-patient"),
    )
    return registered, revised, bare


def _therapists() -> dict[str, therapist_domain.Therapist]:
    draft = therapist_domain.TherapistDraft(
        salutation="Frau",
        gender=Gender.FEMALE,
        title="Dr.",
        first_name="Anna",
        last_name="Müller",
        street="Hauptstraße 5",
        postcode="10827",
        city="Berlin",
        phone="030 1234567",
        fax="030 1234568",
        email="Praxis@Mueller.example",
        website="www.praxis-mueller.example/team",
        statutory_seat=True,
        procedures=[TherapyProcedure.DEPTH_PSYCHOLOGICAL, TherapyProcedure.BEHAVIOURAL],
        languages=["en", "de"],
        phone_windows={Weekday.MON: ["08:00-09:00"], Weekday.WED: ["12:30-13:00"]},
        working_hours={Weekday.MON: ["09:00-17:00"], Weekday.FRI: ["08:00-12:00"]},
        preferred_age_min=21,
        preferred_age_max=65,
        preferred_patient_gender=Gender.FEMALE,
        offers_group_therapy=True,
        symptom_preferences=["trauma", "anxiety"],
        potentially_available=True,
    )
    located = Location.at(52.4862, 13.3535, LocationPrecision.ADDRESS)
    created = therapist_domain.Therapist.create(
        draft, location=located, now=NOW, staff_edited_fields=["email"], therapist_id=_id("therapist")
    )
    imported = therapist_domain.Therapist.create(
        therapist_domain.TherapistDraft(first_name="Peter", last_name="Schulz", postcode="80331"),
        location=Location.unknown(),
        now=NOW,
        directory_id="116117-0042",
        therapist_id=_id("imported-therapist"),
    )
    updated, _ = created.with_fields(
        draft.model_copy(update={"city": "Berlin-Schöneberg", "potentially_available": False}),
        location=located,
        now=LATER,
        by_staff=True,
    )
    cooling = updated.with_cooling_period(date(2026, 12, 21), now=LATER)
    blocked = cooling.transition(therapist_domain.TherapistAction.BLOCK, reason="Beschwerde", now=LATER)
    unblocked = blocked.transition(therapist_domain.TherapistAction.UNBLOCK, reason="geklärt", now=LATER)
    deactivated = unblocked.transition(
        therapist_domain.TherapistAction.DEACTIVATE, reason="Ruhestand", now=LATER
    )
    objected = deactivated.opted_out(therapist_domain.ContactOptOutReason.REPLY, now=LATER)
    return {
        "created": created,
        "imported": imported,
        "objected": objected,
        "updated": updated,
        "cooling": cooling,
        "blocked": blocked,
        "unblocked": unblocked,
        "deactivated": deactivated,
    }


def _searches() -> tuple[search_domain.PatientSearch, search_domain.PatientSearch]:
    """A new search and the same search placed (as `MatchingStore.search_view` gives them)."""
    active = search_domain.PatientSearch(
        id=_id("search"),
        patient_id=_id("patient"),
        status=matching_models.SearchStatus.ACTIVE,
        created_at=NOW,
        updated_at=NOW,
        total_requested_contacts=search_domain.DEFAULT_CONTACT_BUDGET,
        notes="Dringend",
    )
    placed = active.model_copy(
        update={
            "status": matching_models.SearchStatus.PLACED,
            "updated_at": LATER,
            "contacts_used": 4,
            "open_bundles": 1,
            "placed_therapist_id": _id("therapist"),
            "placed_at": LATER,
            "status_reason": "accepted in bundle B1042",
            "exclusions": [
                search_domain.Exclusion(
                    therapist_id=_id("excluded-therapist"),
                    reason="rejected as unsuitable in bundle B1041",
                    excluded_at=NOW,
                    excluded_by="staff:anna",
                )
            ],
            "waiting_days": 3,
        }
    )
    return active, placed


def _withdrawal() -> bundle_domain.Withdrawal:
    return bundle_domain.Withdrawal(
        bundle_id=_id("other-bundle"),
        bundle_reference="B1043",
        bundle_status=bundle_domain.BundleStatus.SENT,
        therapist_id=_id("other-therapist"),
        search_id=_id("search"),
        member_reference="B1043-2",
    )


def _status_changes() -> list[Payload]:
    """`search.status_changed` as the matching use cases emit it (`status_changed`)."""
    active, placed = _searches()
    changes = Changes(NOW, "staff:anna")
    status_changed(changes, active, None, reason="search started")
    status_changed(
        changes,
        placed,
        matching_models.SearchStatus.ACTIVE,
        reason="accepted in bundle B1042",
        withdrawals=[_withdrawal()],
    )
    return [envelope.payload for _, envelope in changes.events]


def _draft_bundle() -> bundle_domain.Bundle:
    """A bundle as `SqlMatchingStore.insert_bundles` returns it (built without validation)."""
    number, members = 1042, []
    for position, name in enumerate(("patient", "bare-patient"), start=1):
        members.append(
            bundle_domain.BundleMember.model_construct(
                id=_id(f"member-{position}"),
                search_id=_id(f"search-{position}"),
                patient_id=_id(name),
                position=position,
                reference=bundle_domain.member_reference(number, position),
                status=bundle_domain.MemberStatus.PENDING,
                outcome=None,
                responded_at=None,
                notes=None,
                patient=None,
            )
        )
    values: dict[str, Any] = {
        **{name: None for name in bundle_domain.Bundle.model_fields},
        "id": _id("bundle"),
        "number": number,
        "reference": bundle_domain.bundle_reference(number),
        "therapist_id": _id("therapist"),
        "practice_key": hashed_practice_key("praxis@mueller.example"),
        "kind": bundle_domain.BundleKind.ROUND,
        "status": bundle_domain.BundleStatus.DRAFT,
        "round_id": _id("round"),
        "created_at": NOW,
        "created_by": "system:round",
        "updated_at": NOW,
        "size": len(members),
        "applied_filters": [matching_models.SoftFilter.AVAILABILITY],
        "skipped_filters": [matching_models.SoftFilter.AGE_BAND],
        "needs_follow_up": False,
        "members": members,
    }
    return bundle_domain.Bundle.model_construct(**values)


def _bundle_sent(therapist: therapist_domain.Therapist | None = None) -> Payload:
    """`bundle.sent` from the real `send_bundle` use case (patient summaries, addressee), on the
    matching service's in-memory adapters; the read models hold the producers' payloads."""
    registered, _, bare = _patients()
    addressee = (therapist or _therapists()["created"]).event_payload() | {"id": str(_id("therapist"))}
    profiles = {p.id: p.event_payload() for p in (registered, bare)} | {_id("therapist"): addressee}
    world = MatchingWorld()
    for entity_id, payload in profiles.items():
        kind = ProfileKind.THERAPIST if entity_id == _id("therapist") else ProfileKind.PATIENT
        world.database.profiles[kind][entity_id] = StoredProfile(payload, str(uuid.uuid4()), NOW)
    draft = _draft_bundle()
    world.database.bundles[draft.id] = BundleRecord(
        id=draft.id,
        number=draft.number,
        therapist_id=draft.therapist_id,
        practice_key=draft.practice_key,
        kind=draft.kind,
        status=draft.status,
        round_id=draft.round_id,
        created_at=draft.created_at,
        created_by=draft.created_by,
        updated_at=draft.updated_at,
        applied_filters=list(draft.applied_filters),
        skipped_filters=list(draft.skipped_filters),
        members=[
            BundleMemberRecord(id=m.id, search_id=m.search_id, patient_id=m.patient_id, position=m.position)
            for m in draft.members
        ],
    )
    send_bundle(world.uow(), _id("bundle"), actor="staff:anna", now=LATER)
    (event,) = world.database.events()
    assert event.event_type == "bundle.sent"
    return event.payload


def _answered_bundle() -> bundle_domain.Bundle:
    """A bundle as `SqlMatchingStore.bundle` reads it back after a response."""
    draft = _draft_bundle()
    outcomes = (response_domain.MemberOutcome.ACCEPTED, response_domain.MemberOutcome.REJECTED_UNSUITABLE)
    statuses = (bundle_domain.MemberStatus.ACCEPTED, bundle_domain.MemberStatus.REJECTED)
    return bundle_domain.Bundle(
        **{
            **draft.model_dump(exclude={"members"}),
            "kind": bundle_domain.BundleKind.STAFF,
            "round_id": None,
            "status": bundle_domain.BundleStatus.ANSWERED,
            "updated_at": LATER,
            "sent_at": NOW,
            "channel": bundle_domain.Channel.EMAIL,
            "reminder_sent_at": NOW + timedelta(days=1),
            "answered_at": LATER,
            "response_type": response_domain.ResponseType.PARTIAL_ACCEPTANCE,
            "accepted_count": 1,
            "rejected_count": 1,
            "no_response_count": 0,
            "notes": "Rückruf am Dienstag",
            "needs_follow_up": True,
        },
        members=[
            bundle_domain.BundleMember(
                **member.model_dump(exclude={"status", "outcome", "responded_at", "notes"}),
                status=status,
                outcome=outcome,
                responded_at=LATER,
                notes="passt nicht" if outcome is not response_domain.MemberOutcome.ACCEPTED else None,
            )
            for member, outcome, status in zip(draft.members, outcomes, statuses, strict=True)
        ],
    )


def _expired_bundle() -> bundle_domain.Bundle:
    draft = _draft_bundle()
    return bundle_domain.Bundle(
        **{
            **draft.model_dump(exclude={"members"}),
            "status": bundle_domain.BundleStatus.EXPIRED,
            "sent_at": NOW,
            "channel": bundle_domain.Channel.PHONE,
            "expired_at": LATER,
            "updated_at": LATER,
            "response_type": response_domain.ResponseType.NO_RESPONSE,
        },
        members=[
            member.model_copy(
                update={
                    "status": bundle_domain.MemberStatus.NO_RESPONSE,
                    "outcome": response_domain.MemberOutcome.NO_RESPONSE,
                }
            )
            for member in draft.members
        ],
    )


def _response_received() -> Payload:
    """`bundle.response_received` as `record_response` builds it."""
    until = response_domain.cooling_until(LATER.date())
    return bundle_domain.ResponseRecorded(
        bundle=_answered_bundle(),
        placements=[
            bundle_domain.Placement(
                search_id=_id("search-1"),
                patient_id=_id("patient"),
                therapist_id=_id("therapist"),
                placed_at=LATER,
            )
        ],
        conflicts=[
            bundle_domain.Conflict(
                search_id=_id("search-3"),
                patient_id=_id("third-patient"),
                therapist_id=_id("therapist"),
                placed_with_therapist_id=_id("other-therapist"),
                alert_id=_id("alert"),
                follow_up_bundle_id=_id("follow-up-bundle"),
            )
        ],
        withdrawals=[_withdrawal()],
        exclusions_added=[_id("search-2")],
        next_contact_allowed_on=until,
    ).model_dump(mode="json")


def _cooling(cause: Literal["response", "expiry"]) -> Payload:
    return bundle_domain.CoolingPeriodStarted(
        therapist_id=_id("therapist"),
        next_contact_allowed_on=response_domain.cooling_until(LATER.date()),
        bundle_id=_id("bundle"),
        cause=cause,
        started_at=LATER,
    ).model_dump(mode="json")


def _emails() -> dict[str, list[Payload]]:
    """`email.*` as `communication/use_cases/emails.py` records them: `email.event_payload()`
    under `EVENT_BY_STATUS[email.status]`."""
    addressing = email_domain.Addressing(
        sender="Therapieplatz <team@example.de>", reply_domain="reply.example.de"
    )
    inquiry = email_domain.OutgoingEmail(
        kind=email_domain.EmailKind.BUNDLE_INQUIRY,
        recipient="praxis@mueller.example",
        recipient_name="Dr. Anna Müller",
        recipient_type=email_domain.RecipientType.THERAPIST,
        recipient_id=_id("therapist"),
        subject="Anfrage B1042",
        html="<p>Hallo</p>",
        text="Hallo",
        bundle_id=_id("bundle"),
        bundle_reference="B1042",
        idempotency_key="inquiry:B1042",
    )
    alert = email_domain.OutgoingEmail(
        kind=email_domain.EmailKind.STAFF_CONFLICT_ALERT,
        recipient="team@example.de",
        recipient_type=email_domain.RecipientType.STAFF,
        subject="Konflikt",
        html="<p>!</p>",
        text="!",
    )
    queued = email_domain.Email.draft(inquiry, addressing, now=NOW, email_id=_id("email")).queued(NOW)
    sent = queued.claimed(NOW, _id("claim"), 120).delivered(NOW + timedelta(seconds=2), "ses-0001")
    retried = (
        email_domain.Email.draft(alert, addressing, now=NOW, email_id=_id("alert-email"))
        .queued(NOW)
        .claimed(NOW, _id("claim-1"), 120)
        .retry_later(NOW, "SMTP server unreachable", 30)
    )
    failed = retried.claimed(LATER, _id("claim-2"), 120).given_up(LATER, "SMTP 550 mailbox unknown")
    found: dict[str, list[Payload]] = {}
    for email in (queued, sent, failed):
        found.setdefault(email_domain.EVENT_BY_STATUS[email.status], []).append(email.event_payload())
    return found


def _calls() -> tuple[Payload, Payload, Payload]:
    """`phone_call.scheduled` (a slot in a phone window, and the fallback for a therapist with no
    number and no windows) and `phone_call.completed`, from the communication domain."""
    policy = call_domain.CallPlanningPolicy()
    calendar = call_domain.WorkingCalendar()
    in_window = call_domain.PhoneCallTask.schedule(
        purpose=call_domain.PhoneCallPurpose.INQUIRY,
        therapist_id=_id("therapist"),
        therapist_name="Dr. Anna Müller",
        phone="030 1234567",
        planned=call_domain.plan_call(NOW, {"mon": ["08:00-09:00"]}, [], policy, calendar),
        now=NOW,
        bundle_id=_id("bundle"),
        bundle_reference="B1042",
        task_id=_id("call"),
    )
    fallback = call_domain.PhoneCallTask.schedule(
        purpose=call_domain.PhoneCallPurpose.FOLLOW_UP,
        therapist_id=_id("imported-therapist"),
        therapist_name="Peter Schulz",
        phone=None,
        planned=call_domain.plan_call(NOW, {}, [], policy, calendar),
        now=NOW,
        task_id=_id("fallback-call"),
    )
    done = in_window.completed(
        call_domain.PhoneCallOutcome.CALL_BACK_REQUESTED, "bitte Di anrufen", actor="staff:anna", now=LATER
    )
    return in_window.scheduled_event(), fallback.scheduled_event(), done.completed_event()


def _published(event_type: str, payload: Payload) -> Payload:
    """What the matching service's `Changes.event` puts in the outbox for this payload."""
    return dict(Changes(now=NOW, actor="test").event(event_type, uuid.uuid4(), payload).payload)


@cache
def producer_payloads() -> dict[str, list[Payload]]:
    """Event type -> payloads its producer sends today."""
    registered, revised, bare = _patients()
    therapist = _therapists()
    active, placed = _searches()
    scheduled, fallback, completed = _calls()
    phone_only = therapist["imported"]
    return {
        "patient.created": [registered.event_payload(), bare.event_payload()],
        "patient.updated": [revised.event_payload()],
        "patient.deleted": [
            patient_domain.PatientDeleted(id=_id("patient"), erased_at=LATER).model_dump(mode="json")
        ],
        "patient.self_registered": [
            self_registered_payload(_id("patient"), _id("registration"), NOW)  # the Kafka intake's
        ],
        "therapist.created": [therapist["created"].event_payload()],
        "therapist.imported": [therapist["imported"].event_payload()],
        "therapist.updated": [
            therapist[name].event_payload() for name in ("updated", "cooling", "deactivated", "objected")
        ],
        "therapist.blocked": [therapist["blocked"].event_payload()],
        "therapist.unblocked": [therapist["unblocked"].event_payload()],
        # The matching service publishes through `Changes.event`, which writes what the contract
        # declares (staff notes, reasons and other free text stay in the service).
        "therapist.deleted": [
            therapists.TherapistDeleted(id=_id("therapist"), erased_at=LATER).model_dump(mode="json")
        ],
        "search.created": [_published("search.created", search_domain.search_event_payload(active))],
        "search.updated": [_published("search.updated", placed.model_dump(mode="json"))],
        "search.status_changed": _status_changes(),
        "bundle.created": [_published("bundle.created", _draft_bundle().model_dump(mode="json"))],
        "bundle.sent": [_bundle_sent(), _bundle_sent(phone_only)],
        "bundle.response_received": [_published("bundle.response_received", _response_received())],
        "bundle.expired": [_published("bundle.expired", _expired_bundle().model_dump(mode="json"))],
        "cooling.period_started": [_cooling("response"), _cooling("expiry")],
        **_emails(),
        "phone_call.scheduled": [scheduled, fallback],
        "phone_call.completed": [completed],
        "email.opt_out_received": [_opt_out()],
    }


def _opt_out() -> Payload:
    """`email.opt_out_received`, as reply intake builds it for the therapist who objected."""
    return opt_out_domain.opt_out_event_payload(_id("therapist"))


# ------------------------------------------------------------------ helpers


def _models_within(model: type[BaseModel]) -> Iterator[type[BaseModel]]:
    """The model and every model nested in its fields (lists, optionals, dicts), once each."""
    seen: set[type[BaseModel]] = set()
    todo: list[Any] = [model]
    while todo:
        candidate = todo.pop()
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            if candidate in seen:
                continue
            seen.add(candidate)
            yield candidate
            todo += [field.annotation for field in candidate.model_fields.values()]
        else:
            todo += get_args(candidate)


def _no_extras(model: BaseModel, path: str = "payload") -> None:
    """Nothing was parsed into `extra`: every field the producer sent is a declared one."""
    assert not model.model_extra, f"{path}: fields the contract does not declare: {sorted(model.model_extra)}"
    for name in type(model).model_fields:
        value = getattr(model, name)
        for index, item in enumerate(value if isinstance(value, list) else [value]):
            if isinstance(item, BaseModel):
                _no_extras(item, f"{path}.{name}[{index}]" if isinstance(value, list) else f"{path}.{name}")


def _round_trip(event_type: str, payload: Payload) -> None:
    wire = json.loads(json.dumps(payload))  # what a consumer receives
    parsed = EVENT_PAYLOADS[event_type].model_validate(wire)
    _no_extras(parsed)
    assert parsed.model_dump(mode="json", by_alias=True) == payload


# ------------------------------------------------------------------ the producers keep their contracts


@pytest.mark.parametrize("event_type", sorted(EVENT_PAYLOADS))
def test_what_the_producer_sends_round_trips_through_its_contract(event_type: str) -> None:
    payloads = producer_payloads()[event_type]
    assert payloads, f"no sample payload for {event_type}"
    for payload in payloads:
        _round_trip(event_type, payload)


@pytest.mark.parametrize("event_type", sorted(EVENT_PAYLOADS))
def test_what_the_producer_sends_matches_the_committed_schema(event_type: str) -> None:
    schema = json.loads((event_schemas.SCHEMA_DIR / f"{event_type}.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    for payload in producer_payloads()[event_type]:
        validator.validate(new_envelope(event_type, "producer", payload, now=NOW).to_wire())


def test_samples_cover_what_the_catalogue_promises() -> None:
    """Every sample is for a catalogued event type, and the samples reach the optional corners
    (members with patient summaries, withdrawals, unknown locations, both cooling causes)."""
    samples = producer_payloads()
    assert set(samples) == set(EVENT_PAYLOADS)
    assert {p["channel"] for p in samples["bundle.sent"]} == {"email", "phone"}
    assert all(m["patient"] for p in samples["bundle.sent"] for m in p["members"])
    assert samples["search.status_changed"][1]["withdrawals"]
    assert {p["location_flagged"] for p in samples["patient.created"]} == {True, False}
    assert {p["status"] for p in samples["therapist.updated"]} == {"active", "inactive"}
    assert samples["therapist.blocked"][0]["status"] == "blocked"
    assert {p["cause"] for p in samples["cooling.period_started"]} == {"response", "expiry"}
    assert samples["email.failed"][0]["status"] == "failed"
    assert {p["scheduling_rule"] for p in samples["phone_call.scheduled"]} == {"phone_window", "fallback"}


# ------------------------------------------------------------------ hypothesis: any value a producer may hold

_moments = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=2))]),
)
_ids = st.uuids()
_text = st.text(max_size=20)
_maybe_id = st.none() | _ids
_maybe_reference = st.none() | st.from_regex(r"B[1-9][0-9]{0,5}", fullmatch=True)
_withdrawals = st.builds(
    bundle_domain.Withdrawal,
    bundle_id=_ids,
    bundle_reference=_text,
    bundle_status=st.sampled_from(bundle_domain.BundleStatus),
    therapist_id=_ids,
    search_id=_ids,
    member_reference=_text,
)

PRODUCER_MODELS: Final[dict[str, st.SearchStrategy[BaseModel]]] = {
    "patient.deleted": st.builds(patient_domain.PatientDeleted, id=_ids, erased_at=_moments),
    "therapist.deleted": st.builds(therapists.TherapistDeleted, id=_ids, erased_at=_moments),
    "search.status_changed": st.builds(
        search_domain.SearchStatusChanged,
        id=_ids,
        patient_id=_ids,
        previous_status=st.none() | st.sampled_from(matching_models.SearchStatus),
        status=st.sampled_from(matching_models.SearchStatus),
        placed_therapist_id=_maybe_id,
        reason=st.none() | _text,
        changed_at=_moments,
        withdrawals=st.lists(_withdrawals, max_size=3),
    ),
    "cooling.period_started": st.builds(
        bundle_domain.CoolingPeriodStarted,
        therapist_id=_ids,
        next_contact_allowed_on=st.dates(),
        bundle_id=_ids,
        cause=st.sampled_from(["response", "expiry"]),
        started_at=_moments,
    ),
    # The communication service builds its payloads with the contract models themselves.
    "email.sent": st.builds(
        communication.EmailStatusChanged,
        email_id=_ids,
        kind=st.sampled_from(email_domain.EmailKind),
        status=st.sampled_from(list(email_domain.EVENT_BY_STATUS)),
        recipient_type=st.sampled_from(email_domain.RecipientType),
        recipient_id=_maybe_id,
        bundle_id=_maybe_id,
        bundle_reference=_maybe_reference,
        message_id=_text,
        attempts=st.integers(0, 50),
        error=st.none() | _text,
        at=_moments,
    ),
    "phone_call.scheduled": st.builds(
        communication.PhoneCallScheduled,
        task_id=_ids,
        purpose=st.sampled_from(call_domain.PhoneCallPurpose),
        therapist_id=_ids,
        bundle_id=_maybe_id,
        bundle_reference=_maybe_reference,
        slot_start=_moments,
        slot_end=_moments,
        scheduling_rule=st.sampled_from(call_domain.SlotRule),
        has_phone_number=st.booleans(),
        scheduled_at=_moments,
    ),
    "email.opt_out_received": st.builds(communication.OptOutReceived, therapist_id=_ids),
    "phone_call.completed": st.builds(
        communication.PhoneCallCompleted,
        task_id=_ids,
        purpose=st.sampled_from(call_domain.PhoneCallPurpose),
        therapist_id=_ids,
        bundle_id=_maybe_id,
        bundle_reference=_maybe_reference,
        outcome=st.sampled_from(call_domain.PhoneCallOutcome),
        completed_at=_moments,
        completed_by=_text,
    ),
}


@pytest.mark.parametrize("event_type", sorted(PRODUCER_MODELS))
def test_any_payload_of_the_producer_model_round_trips(event_type: str) -> None:
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(PRODUCER_MODELS[event_type])
    def check(model: BaseModel) -> None:
        payload = model.model_dump(mode="json")
        if event_type.startswith(("search.", "bundle.", "cooling.")):
            payload = _published(event_type, payload)  # the matching service's Changes.event
        _round_trip(event_type, payload)

    check()


# ------------------------------------------------------------------ the catalogue and its schemas


def test_every_catalogued_event_has_a_topic_and_a_committed_schema() -> None:
    families = {prefix for prefix in TOPIC_BY_PREFIX if any(t.startswith(prefix) for t in EVENT_PAYLOADS)}
    assert families == set(TOPIC_BY_PREFIX), "a topic family without any catalogued event"
    for event_type in EVENT_PAYLOADS:
        assert topic_for(event_type)
        assert (event_schemas.SCHEMA_DIR / f"{event_type}.schema.json").is_file(), event_type
    committed = {
        path.name.removesuffix(".schema.json") for path in event_schemas.SCHEMA_DIR.glob("*.schema.json")
    }
    assert committed - set(EVENT_PAYLOADS) == {"envelope", "bus-message"}, (
        "a schema for an event no one catalogues"
    )


def test_contracts_import_only_contracts_platform_pydantic_and_the_standard_library() -> None:
    allowed = ("therapy_platform.contracts", "therapy_platform.platform")
    for path in sorted(CONTRACTS_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                assert name.startswith(allowed) or top == "pydantic" or top in sys.stdlib_module_names, (
                    f"{path.name} imports {name}"
                )


# ------------------------------------------------------------------ consumers can rely on the models


def _all_contract_models() -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}
    for model in EVENT_PAYLOADS.values():
        for nested in _models_within(model):
            found[f"{nested.__module__}.{nested.__qualname__}"] = nested
    return [found[name] for name in sorted(found)]


@pytest.mark.parametrize("model", _all_contract_models(), ids=lambda m: m.__qualname__)
def test_contract_models_are_frozen_and_documented(model: type[BaseModel]) -> None:
    assert model.model_config.get("frozen") is True
    if model.__module__.startswith("therapy_platform.contracts."):  # not platform's Location
        assert issubclass(model, EventPayload)
        assert (model.__doc__ or "").strip(), f"{model.__qualname__} needs a docstring"


@pytest.mark.parametrize("event_type", sorted(EVENT_PAYLOADS))
def test_a_field_added_by_a_newer_producer_does_not_break_a_consumer(event_type: str) -> None:
    model = EVENT_PAYLOADS[event_type]
    payload = producer_payloads()[event_type][0]
    newer = json.loads(json.dumps({**payload, "added_later": {"any": ["thing"]}}))
    if event_type.startswith("bundle.") and payload.get("members"):
        newer["members"][0]["added_later"] = 1
    parsed = model.model_validate(newer)
    dumped = parsed.model_dump(mode="json", by_alias=True)
    if model in SNAPSHOTS:  # kept whole by read models: the new field survives
        assert dumped == {**payload, "added_later": {"any": ["thing"]}}
    else:
        assert dumped == payload
    first_field = next(iter(model.model_fields))
    with pytest.raises(ValidationError):  # frozen
        setattr(parsed, first_field, None)


def test_the_schemas_say_which_payloads_keep_unknown_fields() -> None:
    for event_type, model in EVENT_PAYLOADS.items():
        payload_schema = json.loads((event_schemas.SCHEMA_DIR / f"{event_type}.schema.json").read_text())
        additional = payload_schema["properties"]["payload"].get("additionalProperties")
        assert additional is (True if model in SNAPSHOTS else None), event_type


def test_a_payload_without_a_required_field_is_refused() -> None:
    payload = dict(producer_payloads()["cooling.period_started"][0])
    del payload["next_contact_allowed_on"]
    with pytest.raises(ValidationError):
        bundles.CoolingPeriodStarted.model_validate(payload)


# ------------------------------------------------------------------ vocabulary


def _values(enumeration: Any) -> set[str]:
    return {str(member.value) for member in enumeration}


ENUMS: Final[list[tuple[type[enum.Enum], type[enum.Enum]]]] = [
    (patient_domain.InsuranceType, patients.InsuranceType),
    (patient_domain.PatientStatus, patients.PatientStatus),
    (patient_domain.TherapistGenderPreference, patients.TherapistGenderPreference),
    (therapist_domain.TherapistStatus, therapists.TherapistStatus),
    (matching_models.SearchStatus, searches.SearchStatus),
    (bundle_domain.BundleStatus, bundles.BundleStatus),
    (bundle_domain.BundleKind, bundles.BundleKind),
    (bundle_domain.Channel, bundles.Channel),
    (bundle_domain.MemberStatus, bundles.MemberStatus),
    (response_domain.MemberOutcome, bundles.MemberOutcome),
    (response_domain.ResponseType, bundles.ResponseType),
    (matching_models.SoftFilter, bundles.SoftFilter),
    (email_domain.EmailKind, communication.EmailKind),
    (email_domain.RecipientType, communication.RecipientType),
    (call_domain.PhoneCallPurpose, communication.PhoneCallPurpose),
    (call_domain.SlotRule, communication.SlotRule),
    (call_domain.PhoneCallOutcome, communication.PhoneCallOutcome),
]


@pytest.mark.parametrize(("producer", "contract"), ENUMS, ids=lambda e: f"{e.__module__}.{e.__qualname__}")
def test_contract_enums_have_exactly_the_producers_values(
    producer: type[enum.Enum], contract: type[enum.Enum]
) -> None:
    # A value a producer may send but consumers cannot parse would break them; a value no
    # producer has any more is a contract change to make on purpose.
    assert _values(producer) == _values(contract)


def test_literal_and_subset_vocabularies_match_the_producers() -> None:
    assert _values(communication.EmailStatus) == {
        str(status.value) for status in email_domain.EVENT_BY_STATUS
    }
    contract_causes = get_args(bundles.CoolingPeriodStarted.model_fields["cause"].annotation)
    producer_causes = get_args(bundle_domain.CoolingPeriodStarted.model_fields["cause"].annotation)
    assert contract_causes == producer_causes
