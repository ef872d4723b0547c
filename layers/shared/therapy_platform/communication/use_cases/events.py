"""How the communication service reacts to other services' events (at least once, any order).

| event | reaction |
|---|---|
| `bundle.sent` | inquiry email to the therapist, or (no email) a phone-call task; bundle tracked |
| `bundle.response_received` | bundle answered (no reminder); staff alert email per conflict |
| `bundle.expired` | bundle expired (no reminder) |
| `search.created` | "search started" email to the patient (if they have an address) |
| `search.status_changed` | withdrawal notice per sent bundle the patient left (email or call, |
| | only bundles this service sent); `placed`: "place found" email to the patient |
| `patient.created/updated` | staff alert once per patient whose location is unknown |
| `patient.self_registered` | German confirmation email to a patient who registered on the website |
| `patient.deleted` | erasure (use_cases/patient_erasure.py): emails to the patient cancelled/blanked, |
| | their values scrubbed everywhere, stored reply mails naming them deleted |
| `therapist.deleted` | erased: emails, replies, calls scrubbed, queued emails cancelled |

Every event is handled in ONE transaction of the service, which the consumer runtime
(`platform.consumer.once_per_event`, wired in bootstrap.py) opens with the eventId claim in
`processed_events`: a redelivered event changes nothing, and a failed attempt leaves nothing
half-done. `react` is what runs inside it. Emails are stored queued in that transaction and
offered to the email queue once it commits (the sweeper re-offers if that fails). Idempotency
keys on emails and call tasks (from the bundle, alert, search or event id) are the second line:
the same cause never writes twice, even through two different events.

Open bundles still waiting for a call are left alone by later answers; when a bundle is
answered or expires, its scheduled calls are cancelled (their slots free again).

Payloads are read through their contract models (`therapy_platform.contracts`); one that does
not match its contract is poison (`payload_as`). Events carry ids only: names and addresses
are looked up when a letter or call needs them (`uow.contacts`, ports.ContactDirectory: the
patient and therapist services' contacts functions). A person the owning service does not
know (yet) raises `ContactMissingError`, a `RetryLaterError`: the runtime offers the message
again after its backoff; a failed look-up is retried the same way.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ValidationError

from therapy_platform.communication.domain.email_content import (
    BundleInquiry,
    ConflictAlert,
    EmailContent,
    PatientPlaceFound,
    PatientRegistrationConfirmed,
    PatientSearchStarted,
    TherapistContact,
    UnknownLocationAlert,
    WithdrawalNotice,
)
from therapy_platform.communication.domain.emails import PRODUCER, Addressing, Email, RecipientType
from therapy_platform.communication.domain.phone_calls import (
    CallPlanningPolicy,
    PhoneCallPurpose,
    PhoneCallTask,
    WorkingCalendar,
    plan_call,
    planning_range,
)
from therapy_platform.communication.domain.tracking import (
    BundleAddressee,
    FollowUpPolicy,
    PatientContact,
    TrackedBundle,
    person_of,
    search_reference,
)
from therapy_platform.communication.ports import CommunicationUnitOfWork, EmailQueue, StoredMail
from therapy_platform.communication.rendering.renderer import EmailRenderer
from therapy_platform.communication.use_cases import patient_erasure, therapist_erasure
from therapy_platform.communication.use_cases.emails import compose, offer_after_commit, stage_email
from therapy_platform.contracts.bundles import (
    BundleResponseReceived,
    BundleSent,
    BundleSnapshot,
    BundleStatus,
    Withdrawal,
)
from therapy_platform.contracts.patients import PatientDeleted, PatientSelfRegistered, PatientSnapshot
from therapy_platform.contracts.searches import SearchSnapshot, SearchStatus, SearchStatusChanged
from therapy_platform.contracts.therapists import TherapistDeleted
from therapy_platform.platform.clock import platform_today
from therapy_platform.platform.consumer import Handled, PoisonMessageError, RetryLaterError
from therapy_platform.platform.events import EventEnvelope
from therapy_platform.platform.outcome import Outcome
from therapy_platform.platform.publishing import record_event

Payload = TypeVar("Payload", bound=BaseModel)


def payload_as(contract: type[Payload], envelope: EventEnvelope) -> Payload:
    """The event's payload read through its contract model. One that does not match never will:
    it is poison (to the dead-letter queue with the fields named, never their values)."""
    try:
        return contract.model_validate(envelope.payload)
    except ValidationError as error:
        fields = ", ".join(".".join(str(part) for part in detail["loc"]) for detail in error.errors())
        raise PoisonMessageError(
            f"{envelope.event_type} payload does not match {contract.__name__} (fields: {fields})"
        ) from error


class ContactMissingError(RetryLaterError):
    """A contact the reaction needs has not arrived yet: try the event again later."""


@dataclass(frozen=True)
class CommunicationContext:
    """What the reactions and the reminder job need; bootstrap.py builds it from settings,
    unit tests from fakes."""

    unit_of_work: Callable[[], CommunicationUnitOfWork]
    queue: EmailQueue
    renderer: EmailRenderer
    addressing: Addressing
    calls: CallPlanningPolicy
    follow_up: FollowUpPolicy
    calendar: WorkingCalendar
    clock: Callable[[], datetime]
    stored_mail: StoredMail | None = None  # reply mails kept after intake (patient erasure)


@dataclass
class Effects:
    """What one unit of work did: emails to offer after commit, calls planned, the events
    written, notes for the log."""

    emails: list[Email] = field(default_factory=list)
    calls: list[PhoneCallTask] = field(default_factory=list)
    events: list[EventEnvelope] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EventOutcome:
    """What the reaction to one event wrote (ids only: it goes to the log)."""

    event_type: str
    emails: tuple[uuid.UUID, ...] = ()
    calls: tuple[uuid.UUID, ...] = ()
    notes: tuple[str, ...] = ()


class Actions:
    """The writes a reaction makes inside one unit of work."""

    def __init__(self, context: CommunicationContext, uow: CommunicationUnitOfWork, now: datetime) -> None:
        self.context, self.uow, self.now = context, uow, now
        self.effects = Effects()

    def email(
        self,
        content: EmailContent,
        *,
        recipient: str,
        recipient_type: RecipientType,
        key: str,
        recipient_name: str | None = None,
        recipient_id: uuid.UUID | None = None,
        bundle_id: uuid.UUID | None = None,
    ) -> Email:
        outgoing = compose(
            self.context.renderer,
            content,
            recipient=recipient,
            recipient_type=recipient_type,
            recipient_name=recipient_name,
            recipient_id=recipient_id,
            bundle_id=bundle_id,
            idempotency_key=key,
        )
        stored = stage_email(self.uow, outgoing, self.context.addressing, now=self.now)
        self.effects.emails.append(stored.value.email)
        self.effects.events.extend(stored.events)
        return stored.value.email

    def staff_alert(self, content: EmailContent, *, key: str, bundle_id: uuid.UUID | None = None) -> None:
        recipient = self.context.addressing.staff_alert_recipient
        if recipient is None:
            self.effects.notes.append(f"no STAFF_ALERT_EMAIL: {content.kind.value} not sent")
            return
        self.email(
            content, recipient=recipient, recipient_type=RecipientType.STAFF, key=key, bundle_id=bundle_id
        )

    def email_patient(self, patient: PatientContact, content: EmailContent, *, key: str) -> Email:
        """An email to the patient (the caller checked that they have an address)."""
        assert patient.email is not None
        return self.email(
            content,
            recipient=patient.email,
            recipient_type=RecipientType.PATIENT,
            recipient_name=patient.person.full_name,
            recipient_id=patient.id,
            key=key,
        )

    def email_therapist(self, bundle: TrackedBundle, content: EmailContent, *, key: str) -> Email:
        """An email about `bundle` to its therapist (the caller checked `writes_by_email`)."""
        assert bundle.therapist is not None
        return self.email(
            content,
            recipient=bundle.therapist_email or "",
            recipient_type=RecipientType.THERAPIST,
            recipient_name=person_of(bundle.therapist).full_name,
            recipient_id=bundle.therapist_id,
            bundle_id=bundle.id,
            key=key,
        )

    def call_therapist(self, bundle: TrackedBundle, purpose: PhoneCallPurpose, *, key: str) -> PhoneCallTask:
        """A call task about `bundle` for its therapist (no email address)."""
        assert bundle.therapist is not None
        return self.call(
            purpose, bundle.therapist, key=key, bundle_id=bundle.id, bundle_reference=bundle.reference
        )

    def call(
        self,
        purpose: PhoneCallPurpose,
        addressee: BundleAddressee,
        *,
        key: str,
        bundle_id: uuid.UUID | None = None,
        bundle_reference: str | None = None,
    ) -> PhoneCallTask:
        """A call task in the next free slot (domain/phone_calls.py) and its event, once per key."""
        calls = self.uow.calls
        existing = calls.find_by_idempotency_key(key)
        if existing is not None:
            return existing
        calls.lock_schedule()
        existing = calls.find_by_idempotency_key(key)  # planned meanwhile by a concurrent delivery
        if existing is not None:
            return existing
        policy = self.context.calls
        start, end = planning_range(self.now, policy)
        try:
            windows: Mapping[str, Sequence[str]] = addressee.phone_windows
            planned = plan_call(
                self.now, windows, calls.taken_slots(start, end), policy, self.context.calendar
            )
        except ValueError:  # a malformed stored window: plan as if there were none
            planned = plan_call(self.now, {}, calls.taken_slots(start, end), policy, self.context.calendar)
        task = PhoneCallTask.schedule(
            purpose=purpose,
            therapist_id=addressee.id,
            therapist_name=person_of(addressee).full_name[:300],
            phone=(addressee.phone or "").strip()[:40] or None,
            planned=planned,
            now=self.now,
            bundle_id=bundle_id,
            bundle_reference=bundle_reference,
            idempotency_key=key,
        )
        calls.add(task)
        event = record_event(
            self.uow.outbox,
            "phone_call.scheduled",
            producer=PRODUCER,
            key=task.id,
            payload=task.scheduled_event(),
            now=self.now,
        )
        self.effects.calls.append(task)
        self.effects.events.append(event)
        return task


# --------------------------------------------------------------------------- bundles


def _inquiry(actions: Actions, bundle: TrackedBundle) -> None:
    assert bundle.therapist is not None
    members = bundle.remaining_members
    if not members:
        actions.effects.notes.append(
            f"{bundle.reference}: every member withdrawn before sending; nothing sent"
        )
        return
    if bundle.writes_by_email:
        content = BundleInquiry(
            bundle_reference=bundle.reference,
            therapist=person_of(bundle.therapist),
            patients=[member.patient for member in members],
            listed_in_directory=bundle.therapist.listed_in_directory,
            sent_on=bundle.sent_on(),
            reminder_after_days=actions.context.follow_up.reminder_after_days,
            cooling_days=actions.context.follow_up.cooling_days,
        )
        actions.email_therapist(bundle, content, key=f"bundle-inquiry:{bundle.id}")
    else:
        actions.call_therapist(bundle, PhoneCallPurpose.INQUIRY, key=f"bundle-inquiry-call:{bundle.id}")


def on_bundle_sent(actions: Actions, envelope: EventEnvelope) -> None:
    sent = payload_as(BundleSent, envelope)
    if therapist_erasure.erased_before(actions, sent.therapist_id):  # a late bundle.sent
        return
    bundles = actions.uow.bundles
    known = bundles.get(sent.id, for_update=True) or TrackedBundle.placeholder(
        sent.id, sent.reference, sent.therapist_id, now=actions.now
    )
    contact = actions.uow.contacts.therapist(sent.therapist.id)
    if contact is None:
        if not actions.uow.contacts.knows_therapist(sent.therapist.id):
            raise ContactMissingError(f"therapist {sent.therapist.id} is not known to the therapist service")
        actions.effects.notes.append(f"{sent.reference}: the therapist was erased; nothing sent")
        return
    bundle = known.with_sent(sent, BundleAddressee.of(sent.therapist.id, contact, sent))
    bundles.save(bundle)
    if bundle.is_closed:
        actions.effects.notes.append(f"{bundle.reference} was answered or expired before bundle.sent arrived")
        return
    _inquiry(actions, bundle)


def _close(actions: Actions, bundle: BundleSnapshot, **closing: datetime) -> TrackedBundle:
    bundles = actions.uow.bundles
    known = bundles.get(bundle.id, for_update=True) or TrackedBundle.placeholder(
        bundle.id, bundle.reference, bundle.therapist_id, now=actions.now
    )
    changes = {name: value for name, value in closing.items() if getattr(known, name) is None}
    closed = known.model_copy(update={**changes, "updated_at": actions.now}) if changes else known
    bundles.save(closed)
    cancelled = actions.uow.calls.cancel_scheduled_for_bundle(bundle.id, actions.now)
    if cancelled:
        actions.effects.notes.append(f"{bundle.reference}: {len(cancelled)} scheduled call(s) cancelled")
    return closed


def _therapist_name(actions: Actions, tracked: TrackedBundle, therapist_id: uuid.UUID) -> str:
    if tracked.therapist is not None and tracked.therapist_id == therapist_id:
        return person_of(tracked.therapist).full_name
    contact = actions.uow.contacts.therapist(therapist_id)
    return contact.full_name if contact else f"Therapeut*in {str(therapist_id)[:8]}"


def on_response_received(actions: Actions, envelope: EventEnvelope) -> None:
    recorded = payload_as(BundleResponseReceived, envelope)
    bundle = recorded.bundle
    tracked = _close(actions, bundle, answered_at=bundle.answered_at or actions.now)
    members = {member.search_id: member for member in bundle.members}
    for conflict in recorded.conflicts:
        member = members.get(conflict.search_id)
        tracked_member = next((m for m in tracked.members if m.search_id == conflict.search_id), None)
        reference = (member.reference if member else None) or (
            tracked_member.reference if tracked_member else None
        )
        if reference is None:
            actions.effects.notes.append(
                f"conflict {conflict.alert_id}: member not found in {bundle.reference}"
            )
            continue
        placed_via = actions.uow.bundles.with_member(conflict.placed_with_therapist_id, conflict.search_id)
        content = ConflictAlert(
            bundle_reference=bundle.reference,
            therapist_name=_therapist_name(actions, tracked, conflict.therapist_id)[:300],
            patient_reference=reference,
            search_id=conflict.search_id,
            placed_via_bundle_reference=placed_via.reference if placed_via else None,
            accepted_at=(member.responded_at if member else None) or bundle.answered_at or actions.now,
        )
        actions.staff_alert(content, key=f"conflict-alert:{conflict.alert_id}", bundle_id=bundle.id)


def on_bundle_expired(actions: Actions, envelope: EventEnvelope) -> None:
    bundle = payload_as(BundleSnapshot, envelope)
    _close(actions, bundle, expired_at=bundle.expired_at or actions.now)


# --------------------------------------------------------------------------- searches


def _patient(actions: Actions, patient_id: uuid.UUID) -> PatientContact | None:
    """The patient's contact; None (nothing to send) when erased or without email."""
    state = actions.uow.contacts.patient(patient_id)
    if not state.known:
        raise ContactMissingError(f"patient {patient_id} is not known to the communication service yet")
    if state.contact is None:
        actions.effects.notes.append(f"patient {patient_id} was erased: no email")
        return None
    if not state.contact.email:
        actions.effects.notes.append(f"patient {patient_id} has no email address")
        return None
    return state.contact


def on_search_created(actions: Actions, envelope: EventEnvelope) -> None:
    search = payload_as(SearchSnapshot, envelope)
    if search.status is not SearchStatus.ACTIVE:
        return
    patient = _patient(actions, search.patient_id)
    if patient is None or patient.email is None:
        return
    content = PatientSearchStarted(
        patient=patient.person,
        search_reference=search_reference(search.id),
        started_on=platform_today(search.created_at),
        max_travel_km=patient.max_travel_km,
    )
    actions.email_patient(patient, content, key=f"search-started:{search.id}")


def on_patient_self_registered(actions: Actions, envelope: EventEnvelope) -> None:
    registered = payload_as(PatientSelfRegistered, envelope)
    patient = _patient(actions, registered.id)
    if patient is None or patient.email is None:
        return
    content = PatientRegistrationConfirmed(
        patient=patient.person,
        registered_on=platform_today(registered.registered_at),
        max_travel_km=patient.max_travel_km,
    )
    actions.email_patient(patient, content, key=f"registration-confirmed:{registered.registration_id}")


def _withdraw(actions: Actions, bundle_id: uuid.UUID, withdrawals: list[Withdrawal]) -> None:
    first = withdrawals[0]
    bundles = actions.uow.bundles
    known = bundles.get(bundle_id, for_update=True)
    if known is None:
        # Not (yet) sent by this service: remember the withdrawal so a late bundle.sent does not
        # list these members; no notice for a bundle we never presented.
        known = TrackedBundle.placeholder(
            bundle_id, first.bundle_reference, first.therapist_id, now=actions.now
        )
    updated, new = known.with_withdrawn([w.member_reference for w in withdrawals], actions.now)
    bundles.save(updated)
    if not new or not updated.is_sent or updated.is_closed:
        return
    assert updated.therapist is not None
    key_refs = ",".join(sorted(new))
    if updated.writes_by_email:
        content = WithdrawalNotice(
            bundle_reference=updated.reference,
            therapist=person_of(updated.therapist),
            withdrawn_references=new,
            inquiry_sent_on=updated.sent_on(),
            others_still_open=bool(updated.remaining_members),
        )
        actions.email_therapist(updated, content, key=f"withdrawal:{updated.id}:{key_refs}")
    else:
        actions.call_therapist(
            updated, PhoneCallPurpose.WITHDRAWAL, key=f"withdrawal-call:{updated.id}:{key_refs}"
        )


def _placed_therapist(actions: Actions, therapist_id: uuid.UUID) -> TherapistContact:
    contact = actions.uow.contacts.therapist(therapist_id)
    if contact is not None:
        return contact
    latest = actions.uow.bundles.latest_to(therapist_id)
    if latest is not None and latest.therapist is not None:
        return TherapistContact.model_validate(
            {
                **person_of(latest.therapist).model_dump(),
                "phone": latest.therapist.phone or None,
                "email": latest.therapist.email or None,
                "phone_windows": latest.therapist.phone_windows,
            }
        )
    raise ContactMissingError(f"therapist {therapist_id} is not known to the communication service yet")


def on_search_status_changed(actions: Actions, envelope: EventEnvelope) -> None:
    change = payload_as(SearchStatusChanged, envelope)
    by_bundle: dict[uuid.UUID, list[Withdrawal]] = defaultdict(list)
    for withdrawal in change.withdrawals:
        # Drafts never reached the therapist: nothing to take back.
        if withdrawal.bundle_status is BundleStatus.SENT:
            by_bundle[withdrawal.bundle_id].append(withdrawal)
    for bundle_id, withdrawals in by_bundle.items():
        _withdraw(actions, bundle_id, withdrawals)
    if change.status is SearchStatus.PLACED and change.previous_status is not SearchStatus.PLACED:
        if change.placed_therapist_id is None:
            actions.effects.notes.append(f"search {change.id} placed without a therapist: no email")
            return
        patient = _patient(actions, change.patient_id)
        if patient is None or patient.email is None:
            return
        content = PatientPlaceFound(
            patient=patient.person,
            therapist=_placed_therapist(actions, change.placed_therapist_id),
            search_reference=search_reference(change.id),
            contact_within_days=actions.context.follow_up.contact_within_days,
        )
        actions.email_patient(patient, content, key=f"place-found:{change.id}:{envelope.event_id}")


# --------------------------------------------------------------------------- people


def on_patient_changed(actions: Actions, envelope: EventEnvelope) -> None:
    patient = payload_as(PatientSnapshot, envelope)
    # One alert per patient (the key), and only while the patient service still holds the
    # record flagged: a stale event or an erased patient raises none. The alert names the
    # postcode only; staff open the record for the rest.
    if patient.location_flagged and _still_flagged(actions, patient.id):
        content = UnknownLocationAlert(
            entity_type="patient",
            entity_id=patient.id,
            postcode=(patient.postcode or "").strip() or None,
            city=None,
            detected_at=envelope.timestamp,
        )
        actions.staff_alert(content, key=f"unknown-location:patient:{patient.id}")


def _still_flagged(actions: Actions, patient_id: uuid.UUID) -> bool:
    state = actions.uow.contacts.patient(patient_id)
    return state.contact is not None and state.contact.location_flagged


def on_patient_deleted(actions: Actions, envelope: EventEnvelope) -> None:
    deleted = payload_as(PatientDeleted, envelope)
    # Patient erasure (use_cases/patient_erasure.py), before the contact below is tombstoned.
    note = patient_erasure.erase_patient(
        actions.uow, actions.context.stored_mail, deleted.id, now=actions.now
    )
    actions.effects.notes.append(note)
    redacted = actions.uow.history.redact_patient(deleted.id, actions.now)
    actions.effects.notes.append(f"patient {deleted.id} erased; {redacted} stored email(s) redacted")


def on_therapist_deleted(actions: Actions, envelope: EventEnvelope) -> None:
    """Therapist erasure (GDPR Art. 17): communication/use_cases/therapist_erasure.py."""
    therapist_erasure.erase_therapist(actions, payload_as(TherapistDeleted, envelope), envelope)


Reaction = Callable[[Actions, EventEnvelope], None]

REACTIONS: Final[dict[str, Reaction]] = {
    "bundle.sent": on_bundle_sent,
    "bundle.response_received": on_response_received,
    "bundle.expired": on_bundle_expired,
    "search.created": on_search_created,
    "search.status_changed": on_search_status_changed,
    "patient.created": on_patient_changed,
    "patient.updated": on_patient_changed,
    "patient.deleted": on_patient_deleted,
    "patient.self_registered": on_patient_self_registered,
    "therapist.deleted": on_therapist_deleted,  # therapist erasure
}
HANDLED_EVENT_TYPES: Final = frozenset(REACTIONS)


def react(
    context: CommunicationContext, uow: CommunicationUnitOfWork, envelope: EventEnvelope
) -> Outcome[EventOutcome]:
    """React to one event of a handled type inside the caller's open unit of work (the runtime
    claims its eventId in the same transaction and commits). Raises ContactMissingError (retry
    later) or a validation error for a payload that is not what its type promises."""
    actions = Actions(context, uow, context.clock())
    REACTIONS[envelope.event_type](actions, envelope)
    effects = actions.effects
    if effects.emails:
        offer_after_commit(uow, context.unit_of_work, context.queue, effects.emails, now=actions.now)
    outcome = EventOutcome(
        envelope.event_type,
        emails=tuple(email.id for email in effects.emails),
        calls=tuple(call.id for call in effects.calls),
        notes=tuple(effects.notes),
    )
    return Outcome(outcome, events=tuple(effects.events))


def reaction_handlers(
    context: Callable[[], CommunicationContext],
) -> dict[str, Callable[[CommunicationUnitOfWork, EventEnvelope], Handled]]:
    """The event consumer's table (`platform.consumer.once_per_event`): each handled type to
    `react`, answering what the runtime logs about the message."""

    def handle(uow: CommunicationUnitOfWork, envelope: EventEnvelope) -> Handled:
        outcome = react(context(), uow, envelope).value
        return Handled("", envelope.event_type, "done", describe(outcome))

    return dict.fromkeys(REACTIONS, handle)


def describe(outcome: EventOutcome) -> dict[str, Any]:
    return {
        "event_type": outcome.event_type,
        "emails": [str(i) for i in outcome.emails],
        "calls": [str(i) for i in outcome.calls],
        "notes": list(outcome.notes),
    }
