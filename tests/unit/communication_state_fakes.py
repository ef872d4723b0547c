"""In-memory implementations of the communication service's follow-up ports (tracked bundles,
phone calls, contacts, replies, the event consumer's eventId claims), on top of
communication_fakes' emails; and `deliver`, which hands one bus event to the service's event
consumer (the platform runtime) as the function does."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

from communication_fakes import (
    ADDRESSING,
    LEGAL,
    Clock,
    CommunicationDatabase,
    FakeQueue,
    InMemoryCommunicationUnitOfWork,
)
from therapy_platform.communication.adapters.contact_directory import patient_state, therapist_contact
from therapy_platform.communication.bootstrap import events_consumer
from therapy_platform.communication.domain.email_content import TherapistContact
from therapy_platform.communication.domain.emails import Addressing, Email, EmailStatus, RecipientType
from therapy_platform.communication.domain.patient_erasure import (
    CANCELLED_FOR_ERASURE,
    ErasureReport,
    HeldValues,
)
from therapy_platform.communication.domain.phone_calls import (
    CallPlanningPolicy,
    PhoneCallQuery,
    PhoneCallStatus,
    PhoneCallTask,
    WorkingCalendar,
)
from therapy_platform.communication.domain.replies import AnsweredEmail, InboundReply, ReviewedReply
from therapy_platform.communication.domain.staff_emails import (
    DeliveryAttemptView,
    EmailDetail,
    EmailQuery,
    EmailSummary,
)
from therapy_platform.communication.domain.therapist_erasure import TherapistErasureCounts
from therapy_platform.communication.domain.tracking import (
    EmailHistoryItem,
    FollowUpPolicy,
    PatientContactState,
    TrackedBundle,
)
from therapy_platform.communication.ports import InboxEntry
from therapy_platform.communication.rendering.renderer import EmailRenderer
from therapy_platform.communication.settings import ConsumerSettings
from therapy_platform.communication.use_cases.events import CommunicationContext
from therapy_platform.communication.use_cases.staff_emails import StaffEmailContext
from therapy_platform.contracts.contacts import ContactState, PatientContactCard, TherapistContactCard
from therapy_platform.contracts.erasure import ErasureTerms
from therapy_platform.contracts.therapy import Gender
from therapy_platform.platform.consumer import Delivery
from therapy_platform.platform.events import EventEnvelope


@dataclass
class State:
    processed: set[uuid.UUID] = field(default_factory=set)
    bundles: dict[uuid.UUID, TrackedBundle] = field(default_factory=dict)
    calls: dict[uuid.UUID, PhoneCallTask] = field(default_factory=dict)
    replies: dict[str, InboundReply] = field(default_factory=dict)
    reviews: dict[str, ReviewedReply] = field(default_factory=dict)  # by inbox key
    audit: list[dict[str, Any]] = field(default_factory=list)
    redacted: set[uuid.UUID] = field(default_factory=set)


@dataclass
class StateDatabase(CommunicationDatabase):
    state: State = field(default_factory=State)
    directory: InMemoryContactDirectory = field(default_factory=lambda: InMemoryContactDirectory())


class _Part:
    def __init__(self, unit: InMemoryStateUnitOfWork) -> None:
        self.unit = unit

    @property
    def s(self) -> State:
        return self.unit.staged_state


class InMemoryProcessed(_Part):
    def first_time(self, event_id: uuid.UUID, consumer: str, at: datetime) -> bool:
        if event_id in self.s.processed:
            return False
        self.s.processed.add(event_id)
        return True


class InMemoryBundles(_Part):
    def get(self, bundle_id: uuid.UUID, *, for_update: bool = False) -> TrackedBundle | None:
        return self.s.bundles.get(bundle_id)

    def by_reference(self, reference: str) -> TrackedBundle | None:
        return next((b for b in self.s.bundles.values() if b.reference == reference), None)

    def save(self, bundle: TrackedBundle) -> None:
        self.s.bundles[bundle.id] = bundle

    def due_for_reminder(self, *, sent_before: datetime, limit: int) -> list[uuid.UUID]:
        due = [
            b
            for b in self.s.bundles.values()
            if b.sent_at is not None
            and b.sent_at <= sent_before
            and b.answered_at is None
            and b.expired_at is None
            and b.reminder_sent_at is None
        ]
        return [b.id for b in sorted(due, key=lambda b: (b.sent_at, b.id))][:limit]

    def with_member(self, therapist_id: uuid.UUID, search_id: uuid.UUID) -> TrackedBundle | None:
        found = [
            b
            for b in self.s.bundles.values()
            if b.therapist_id == therapist_id and any(m.search_id == search_id for m in b.members)
        ]
        return max(found, key=lambda b: b.sent_at or datetime.min.replace(tzinfo=UTC), default=None)

    def latest_to(self, therapist_id: uuid.UUID) -> TrackedBundle | None:
        found = [b for b in self.s.bundles.values() if b.therapist_id == therapist_id and b.therapist]
        return max(found, key=lambda b: b.sent_at or datetime.min.replace(tzinfo=UTC), default=None)


class InMemoryCalls(_Part):
    def lock_schedule(self) -> None:
        """One process, one thread: nothing to serialise."""

    def taken_slots(self, start: datetime, end: datetime) -> set[datetime]:
        return {
            c.slot_start
            for c in self.s.calls.values()
            if c.status is PhoneCallStatus.SCHEDULED and start <= c.slot_start < end
        }

    def add(self, task: PhoneCallTask) -> bool:
        if task.idempotency_key and self.find_by_idempotency_key(task.idempotency_key):
            return False
        # The database's partial unique index: one scheduled call per slot.
        assert task.slot_start not in self.taken_slots(task.slot_start, task.slot_end), "slot taken twice"
        self.s.calls[task.id] = task
        return True

    def find_by_idempotency_key(self, key: str) -> PhoneCallTask | None:
        return next((c for c in self.s.calls.values() if c.idempotency_key == key), None)

    def get(self, task_id: uuid.UUID, *, for_update: bool = False) -> PhoneCallTask | None:
        return self.s.calls.get(task_id)

    def update(self, task: PhoneCallTask) -> None:
        self.s.calls[task.id] = task

    def cancel_scheduled_for_bundle(self, bundle_id: uuid.UUID, at: datetime) -> list[uuid.UUID]:
        ids = [
            c.id
            for c in self.s.calls.values()
            if c.bundle_id == bundle_id and c.status is PhoneCallStatus.SCHEDULED
        ]
        for call_id in ids:
            self.s.calls[call_id] = self.s.calls[call_id].model_copy(
                update={"status": PhoneCallStatus.CANCELLED, "updated_at": at}
            )
        return ids

    def find(self, query: PhoneCallQuery) -> tuple[list[PhoneCallTask], int]:
        bounds = query.day_bounds()
        found = [
            c
            for c in self.s.calls.values()
            if (query.status is None or c.status is query.status)
            and (bounds is None or bounds[0] <= c.slot_start < bounds[1])
            and (query.therapist_id is None or c.therapist_id == query.therapist_id)
            and (query.bundle_reference is None or c.bundle_reference == query.bundle_reference)
        ]
        found.sort(key=lambda c: (c.slot_start, str(c.id)))
        return found[query.offset : query.offset + query.limit], len(found)

    def for_bundle(self, reference: str, limit: int) -> list[PhoneCallTask]:
        found = [c for c in self.s.calls.values() if c.bundle_reference == reference]
        return sorted(found, key=lambda c: c.created_at, reverse=True)[:limit]

    def for_therapist(self, therapist_id: uuid.UUID, limit: int) -> tuple[list[PhoneCallTask], int]:
        found = [c for c in self.s.calls.values() if c.therapist_id == therapist_id]
        found.sort(key=lambda c: (c.created_at, str(c.id)), reverse=True)
        return found[:limit], len(found)


# The patient and therapist services' records, as their contacts functions answer them
# (contracts/contacts.py). `patient_payload` / `bundle_sent_payload` / `therapist_payload`
# register the person they describe, as the owning service would hold them; `erase_patient`
# is the patient service's erasure.
PATIENT_SERVICE: dict[uuid.UUID, PatientContactCard] = {}
THERAPIST_SERVICE: dict[uuid.UUID, TherapistContactCard] = {}


def erase_patient(patient_id: uuid.UUID) -> None:
    PATIENT_SERVICE[patient_id] = PatientContactCard(id=patient_id, state=ContactState.ERASED)


class InMemoryContactDirectory:
    """ports.ContactDirectory over the fake services above (the deployed one invokes their
    contacts functions: communication/adapters/contact_directory.py, whose mapping it reuses)."""

    def __init__(self) -> None:
        self.lookups: list[tuple[str, uuid.UUID]] = []

    def patient(self, patient_id: uuid.UUID) -> PatientContactState:
        self.lookups.append(("patient", patient_id))
        card = PATIENT_SERVICE.get(patient_id) or PatientContactCard(
            id=patient_id, state=ContactState.UNKNOWN
        )
        return patient_state(card)

    def _therapist(self, therapist_id: uuid.UUID) -> TherapistContactCard:
        self.lookups.append(("therapist", therapist_id))
        return THERAPIST_SERVICE.get(therapist_id) or TherapistContactCard(
            id=therapist_id, state=ContactState.UNKNOWN
        )

    def therapist(self, therapist_id: uuid.UUID) -> TherapistContact | None:
        return therapist_contact(self._therapist(therapist_id))

    def knows_therapist(self, therapist_id: uuid.UUID) -> bool:
        return self._therapist(therapist_id).state is not ContactState.UNKNOWN


class InMemoryReplies(_Part):
    def add(self, reply: InboundReply) -> bool:
        if reply.message_id in self.s.replies:
            return False
        self.s.replies[reply.message_id] = reply
        return True

    def review(self, item: ReviewedReply) -> bool:
        if item.inbox_key in self.s.reviews:
            return False
        self.s.reviews[item.inbox_key] = item
        return True

    def reviews(self, *, page: int, limit: int) -> tuple[list[ReviewedReply], int]:
        found = sorted(self.s.reviews.values(), key=lambda r: (r.received_at, str(r.id)), reverse=True)
        return found[(page - 1) * limit : page * limit], len(found)

    def for_bundle(self, reference: str, limit: int) -> list[InboundReply]:
        found = [r for r in self.s.replies.values() if r.bundle_reference == reference]
        return sorted(found, key=lambda r: r.received_at, reverse=True)[:limit]

    def for_person(
        self, recipient_type: RecipientType, person_id: uuid.UUID, limit: int
    ) -> tuple[list[InboundReply], int]:
        emails = {**self.unit.database.emails, **self.unit.staged}.values()
        to_them = {e.id for e in emails if e.recipient_type is recipient_type and e.recipient_id == person_id}
        their_bundles = (
            {b.reference for b in self.s.bundles.values() if b.therapist_id == person_id}
            if recipient_type is RecipientType.THERAPIST
            else set()
        )
        found = [
            r
            for r in self.s.replies.values()
            if r.email_id in to_them
            or (r.bundle_reference is not None and r.bundle_reference in their_bundles)
        ]
        found.sort(key=lambda r: (r.received_at, str(r.id)), reverse=True)
        return found[:limit], len(found)


class InMemoryHistory(_Part):
    def _emails(self) -> list[Any]:
        return list({**self.unit.database.emails, **self.unit.staged}.values())

    def for_bundle(self, reference: str, limit: int) -> list[EmailHistoryItem]:
        found = [e for e in self._emails() if e.bundle_reference == reference]
        found.sort(key=lambda e: e.created_at, reverse=True)
        return [self._item(e) for e in found[:limit]]

    @staticmethod
    def _item(e: Email) -> EmailHistoryItem:
        return EmailHistoryItem(
            id=e.id,
            at=e.created_at,
            kind=e.kind,
            status=e.status,
            recipient_type=e.recipient_type,
            recipient=e.recipient,
            subject=e.subject,
            attempts=e.attempts,
            sent_at=e.sent_at,
            failed_at=e.failed_at,
            last_error=e.last_error,
        )

    def for_person(
        self, recipient_type: RecipientType, person_id: uuid.UUID, limit: int
    ) -> tuple[list[EmailHistoryItem], int]:
        found = [
            e for e in self._emails() if e.recipient_type is recipient_type and e.recipient_id == person_id
        ]
        found.sort(key=lambda e: (e.created_at, str(e.id)), reverse=True)
        return [self._item(e) for e in found[:limit]], len(found)

    def find(self, query: EmailQuery) -> tuple[list[EmailSummary], int]:
        found = [
            e
            for e in self._emails()
            if (query.status is None or e.status is query.status)
            and (query.kind is None or e.kind is query.kind)
            and (query.recipient_type is None or e.recipient_type is query.recipient_type)
            and (query.recipient_id is None or e.recipient_id == query.recipient_id)
            and (query.bundle_reference is None or e.bundle_reference == query.bundle_reference)
            and (query.created_from is None or e.created_at >= query.created_from)
            and (query.created_to is None or e.created_at < query.created_to)
        ]
        found.sort(key=lambda e: (e.created_at, str(e.id)), reverse=True)
        page = found[query.offset : query.offset + query.limit]
        return [EmailSummary.model_validate(e.model_dump()) for e in page], len(found)

    def detail(self, email_id: uuid.UUID) -> EmailDetail | None:
        email = {e.id: e for e in self._emails()}.get(email_id)
        if email is None:
            return None
        attempts = sorted(
            (a for a in self.unit.database.attempts.values() if a.email_id == email_id),
            key=lambda a: (a.started_at, a.attempt),
        )
        views = [
            DeliveryAttemptView(attempt=a.attempt, started_at=a.started_at, outcome=a.outcome, error=a.error)
            for a in attempts
        ]
        return EmailDetail.model_validate({**email.model_dump(), "delivery_attempts": views})

    def answered(self, message_ids: Sequence[str]) -> AnsweredEmail | None:
        by_id = {e.message_id: e for e in self._emails()}
        email = next((by_id[m] for m in message_ids if m in by_id), None)
        if email is None:
            return None
        return AnsweredEmail(
            id=email.id,
            recipient=email.recipient,
            recipient_type=email.recipient_type.value,
            recipient_id=email.recipient_id,
            bundle_reference=email.bundle_reference,
        )

    def redact_patient(self, patient_id: uuid.UUID, at: datetime) -> int:
        found = [
            e
            for e in self._emails()
            if e.recipient_type is RecipientType.PATIENT
            and e.recipient_id == patient_id
            and e.status in (EmailStatus.DRAFT, EmailStatus.SENT, EmailStatus.FAILED)
        ]
        for email in found:
            self.unit.staged[email.id] = email.model_copy(
                update={
                    "recipient": "geloescht@invalid",
                    "recipient_name": None,
                    "subject": "[gelöscht]",
                    "html": "",
                    "text": "",
                }
            )
        return len(found)


class InMemoryPatientErasure(_Part):
    """The patient erasure over the in-memory emails and contacts (free-text scrubbing of other
    tables is the SQL adapter's, tests/integration/test_erasure_everywhere.py)."""

    def _to(self, patient_id: uuid.UUID) -> list[Email]:
        emails = {**self.unit.database.emails, **self.unit.staged}
        return [
            e
            for e in emails.values()
            if e.recipient_type is RecipientType.PATIENT and e.recipient_id == patient_id
        ]

    def held_values(self, patient_id: uuid.UUID) -> HeldValues:
        emails = self._to(patient_id)
        contact = None  # contacts are looked up in the patient service, which erased them first
        return HeldValues(
            addresses=tuple(e.recipient for e in emails if e.recipient != "geloescht@invalid"),
            names=tuple(e.recipient_name for e in emails if e.recipient_name),
            contact=contact,
        )

    def erase(
        self,
        patient_id: uuid.UUID,
        terms: ErasureTerms,
        *,
        at: datetime,
        search_ids: Sequence[uuid.UUID] = (),
    ) -> ErasureReport:
        cancelled = redacted = 0
        for email in self._to(patient_id):
            update: dict[str, Any] = {"recipient": "geloescht@invalid", "recipient_name": None}
            update |= {"subject": "[gelöscht]", "html": "", "text": "", "updated_at": at}
            if email.status in (EmailStatus.DRAFT, EmailStatus.QUEUED, EmailStatus.SENDING):
                update |= {"status": EmailStatus.FAILED, "failed_at": at, "claim_token": None}
                update |= {"lease_until": None, "last_error": CANCELLED_FOR_ERASURE}
                cancelled += 1
            self.unit.staged[email.id] = email.model_copy(update=update)
            redacted += 1
        return ErasureReport(emails_cancelled=cancelled, emails_redacted=redacted)


class InMemoryAudit(_Part):
    def record(self, **entry: Any) -> None:
        self.s.audit.append(entry)


class InMemoryTherapistErasure(_Part):
    """Therapist erasure (the SQL adapter is tested against PostgreSQL): cancels the therapist's
    scheduled calls and records the erasure, so reactions can be checked."""

    def erase(self, therapist_id: uuid.UUID, *, at: datetime) -> TherapistErasureCounts:
        self.s.audit.append({"erased_therapist": therapist_id, "at": at})
        return TherapistErasureCounts()

    def was_erased(self, therapist_id: uuid.UUID) -> bool:
        return any(entry.get("erased_therapist") == therapist_id for entry in self.s.audit)


class InMemoryStateUnitOfWork(InMemoryCommunicationUnitOfWork):
    database: StateDatabase

    def __init__(self, database: StateDatabase) -> None:
        super().__init__(database)

    def __enter__(self) -> Self:
        super().__enter__()
        self.staged_state = copy.copy(self.database.state)
        for name in (
            "processed",
            "bundles",
            "calls",
            "replies",
            "reviews",
            "audit",
            "redacted",
        ):
            setattr(self.staged_state, name, copy.copy(getattr(self.database.state, name)))
        self.processed_events = InMemoryProcessed(self)
        self.bundles = InMemoryBundles(self)
        self.calls = InMemoryCalls(self)
        self.contacts = self.database.directory
        self.replies = InMemoryReplies(self)
        self.history = InMemoryHistory(self)
        self.audit = InMemoryAudit(self)
        self.therapist_erasure = InMemoryTherapistErasure(self)
        self.patient_erasure = InMemoryPatientErasure(self)
        return self

    def _apply(self) -> None:
        super()._apply()
        self.database.state = self.staged_state
        self.staged_state = copy.copy(self.database.state)
        for name in (
            "processed",
            "bundles",
            "calls",
            "replies",
            "reviews",
            "audit",
            "redacted",
        ):
            setattr(self.staged_state, name, copy.copy(getattr(self.database.state, name)))


@dataclass
class StateWorld:
    database: StateDatabase
    queue: FakeQueue
    clock: Clock
    context: CommunicationContext


def state_world(
    *,
    now: datetime | None = None,
    addressing: Addressing = ADDRESSING,
    calls: CallPlanningPolicy | None = None,
    follow_up: FollowUpPolicy | None = None,
) -> StateWorld:
    database = StateDatabase()
    queue, clock = FakeQueue(), Clock(now)
    policy = calls or CallPlanningPolicy()
    context = CommunicationContext(
        unit_of_work=lambda: InMemoryStateUnitOfWork(database),
        queue=queue,
        renderer=EmailRenderer(LEGAL),
        addressing=addressing,
        calls=policy,
        follow_up=follow_up or FollowUpPolicy(),
        calendar=WorkingCalendar.for_policy(policy),
        clock=clock,
    )
    return StateWorld(database, queue, clock, context)


@dataclass(frozen=True)
class Reaction:
    """What the event consumer made of one event: the runtime's outcome (done, duplicate,
    ignored, retry, failed) and what the reaction wrote."""

    outcome: str
    emails: tuple[uuid.UUID, ...] = ()
    calls: tuple[uuid.UUID, ...] = ()
    notes: tuple[str, ...] = ()
    reason: str | None = None

    @property
    def duplicate(self) -> bool:
        return self.outcome == "duplicate"

    @property
    def ignored(self) -> bool:
        return self.outcome == "ignored"


def bus_body(event: EventEnvelope, key: str | None = None) -> str:
    """The SQS body the bus rule delivers: an EventBridge event whose detail is the message."""
    detail = {"key": key or str(uuid.uuid4()), "envelope": event.to_wire()}
    source = f"therapy-platform.{event.producer}"
    return json.dumps({"source": source, "detail-type": event.event_type, "detail": detail})


def deliver(context: CommunicationContext, event: EventEnvelope) -> Reaction:
    """One bus event through the communication service's event consumer, as the function
    runs it (bootstrap.events_consumer): claimed once per eventId with the reaction's changes."""
    consumer = events_consumer(lambda: context, settings=ConsumerSettings(), queues=None)
    delivery = Delivery(str(uuid.uuid4()), bus_body(event), 1, "", "")
    [handled] = consumer.handle_batch([delivery]).handled
    detail = handled.detail
    return Reaction(
        outcome=handled.outcome,
        emails=tuple(uuid.UUID(i) for i in detail.get("emails", ())),
        calls=tuple(uuid.UUID(i) for i in detail.get("calls", ())),
        notes=tuple(detail.get("notes", ())),
        reason=detail.get("reason"),
    )


def staff_email_context(world: StateWorld) -> StaffEmailContext:
    """The emails API's writing context on a state world's fakes."""
    context = world.context
    return StaffEmailContext(
        unit_of_work=context.unit_of_work,
        queue=context.queue,
        renderer=context.renderer,
        addressing=context.addressing,
        clock=context.clock,
    )


class FakeInbox:
    """An inbox in memory; `reads` records each read (key, cap), `steps` reads and dones in order."""

    def __init__(self) -> None:
        self.new: dict[str, tuple[bytes, datetime]] = {}
        self.done_keys: list[tuple[str, bool]] = []
        self.reads: list[tuple[str, int]] = []
        self.steps: list[str] = []

    def deliver(self, key: str, raw: bytes, at: datetime) -> None:
        self.new[key] = (raw, at)

    def pending(self, limit: int) -> list[InboxEntry]:
        return [
            InboxEntry(key=key, size=len(self.new[key][0]), received_at=self.new[key][1])
            for key in sorted(self.new)
        ][:limit]

    def read(self, key: str, max_bytes: int) -> bytes | None:
        self.reads.append((key, max_bytes))
        self.steps.append(f"read {key}")
        found = self.new.get(key)
        return found[0][: max_bytes + 1] if found else None

    def done(self, key: str, *, stored: bool) -> None:
        self.new.pop(key, None)
        self.done_keys.append((key, stored))
        self.steps.append(f"done {key}")


# --------------------------------------------------------------------------- event builders


def envelope(
    event_type: str, payload: dict[str, Any], *, at: datetime, event_id: uuid.UUID | None = None
) -> Any:
    from therapy_platform.platform.events import EventEnvelope

    producer = {
        "bundle": "matching-service",
        "search": "matching-service",
        "patient": "patient-service",
        "therapist": "therapist-service",
    }[event_type.split(".")[0]]
    return EventEnvelope(
        event_id=event_id or uuid.uuid4(),
        event_type=event_type,
        timestamp=at,
        producer=producer,
        payload=payload,
    )


def bundle_sent_payload(
    *,
    number: int,
    sent_at: datetime,
    email: str | None = "praxis@example.org",
    phone: str | None = "030 1234567",
    phone_windows: dict[str, list[str]] | None = None,
    members: int = 3,
    therapist_id: uuid.UUID | None = None,
    bundle_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    bundle_id = bundle_id or uuid.uuid4()
    therapist_id = therapist_id or uuid.uuid4()
    reference = f"B{number}"
    THERAPIST_SERVICE[therapist_id] = TherapistContactCard(
        id=therapist_id,
        state=ContactState.FOUND,
        salutation="Frau",
        gender=Gender.FEMALE,
        title="Dr.",
        first_name="Anna",
        last_name="Müller",
        email=email,
        phone=phone,
        phone_windows=phone_windows or {},
    )
    return {
        "id": str(bundle_id),
        "number": number,
        "reference": reference,
        "therapist_id": str(therapist_id),
        "practice_key": "p:" + "0" * 32,
        "kind": "round",
        "status": "sent",
        "created_at": sent_at.isoformat(),
        "created_by": "round",
        "updated_at": sent_at.isoformat(),
        "sent_at": sent_at.isoformat(),
        "channel": "email" if email else "phone",
        "size": members,
        "members": [
            {
                "id": str(uuid.uuid4()),
                "search_id": str(uuid.uuid4()),
                "patient_id": str(uuid.uuid4()),
                "position": position,
                "reference": f"{reference}-{position}",
                "status": "pending",
                "patient": {
                    "reference": f"{reference}-{position}",
                    "age": 30 + position,
                    "gender": "female" if position % 2 else "male",
                    "symptoms": ["anxiety", "sleep"],
                    "insurance_type": "statutory",
                    "previous_therapy": position == 2,
                    "open_to_group_therapy": True,
                    "group_only": False,
                    "availability": {"mon": ["08:00-12:00"]},
                    "distance_band": "5-10 km",
                },
            }
            for position in range(1, members + 1)
        ],
        "therapist": {
            "id": str(therapist_id),
            "reachable_by_email": email is not None,
            "reachable_by_phone": phone is not None,
            "phone_windows": phone_windows or {},
        },
    }


def closed_bundle_payload(sent: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The Bundle of bundle.response_received / bundle.expired for a bundle.sent payload."""
    bundle = {key: value for key, value in sent.items() if key != "therapist"}
    bundle["members"] = [{k: v for k, v in m.items() if k != "patient"} for m in sent["members"]]
    bundle.update(changes)
    return bundle


# When the people in these payloads were recorded (their services' records, not the event).
RECORDED_AT = "2026-11-01T08:00:00Z"


_PATIENT_CARD_ONLY = {"salutation", "first_name", "last_name", "email", "phone", "street", "city"}
_THERAPIST_CARD_ONLY = {
    "salutation",
    "title",
    "first_name",
    "last_name",
    "street",
    "city",
    "phone",
    "email",
    "website",
    "fax",
}


def patient_payload(
    patient_id: uuid.UUID,
    *,
    email: str | None = "patientin@example.org",
    flagged: bool = False,
    **changes: Any,
) -> dict[str, Any]:
    """A `patient.created|updated` payload as the patient service sends it (contract
    `PatientSnapshot`: no name, no contact); the patient service's record of the person is
    registered for the contact look-up (name and contact changes go there, not on the bus)."""
    card = {k: changes.pop(k) for k in list(changes) if k in _PATIENT_CARD_ONLY}
    PATIENT_SERVICE[patient_id] = PatientContactCard.model_validate(
        {
            "id": patient_id,
            "state": ContactState.FOUND,
            "salutation": "Frau",
            "gender": Gender.FEMALE,
            "first_name": "Jana",
            "last_name": "Schröder",
            "email": email,
            "max_travel_km": 20,
            "location_flagged": flagged,
            **card,
        }
    )
    return {
        "id": str(patient_id),
        "gender": "female",
        "postcode": "10115",
        "max_travel_km": 20,
        "status": "open",
        "location_flagged": flagged,
        "shared_language_required": False,
        "created_at": RECORDED_AT,
        "updated_at": RECORDED_AT,
        **changes,
    }


def therapist_payload(therapist_id: uuid.UUID, **changes: Any) -> dict[str, Any]:
    """A `therapist.*` payload as the therapist service sends it (contract `TherapistSnapshot`:
    no name, no contact); the therapist service's record is registered for the look-up (name
    and contact changes go there, not on the bus)."""
    card = {k: changes.pop(k) for k in list(changes) if k in _THERAPIST_CARD_ONLY}
    THERAPIST_SERVICE[therapist_id] = TherapistContactCard.model_validate(
        {
            "id": therapist_id,
            "state": ContactState.FOUND,
            "salutation": "Herr",
            "gender": Gender.MALE,
            "title": "Dipl.-Psych.",
            "first_name": "Jörg",
            "last_name": "Weiß",
            "street": "Hauptstraße 5",
            "postcode": "10827",
            "city": "Berlin",
            "phone": "030 7654321",
            "email": "weiss@example.org",
            "website": "https://praxis-weiss.example.org",
            "phone_windows": {"tue": ["09:00-10:00"]},
            **card,
        }
    )
    return {
        "id": str(therapist_id),
        "gender": "male",
        "postcode": "10827",
        "reachable_by_email": True,
        "reachable_by_phone": True,
        "phone_windows": {"tue": ["09:00-10:00"]},
        "status": "active",
        "next_contact_allowed_on": None,
        "location": {"latitude": 52.4862, "longitude": 13.3538, "precision": "postcode"},
        "location_flagged": False,
        "practice_key": None,
        "created_at": RECORDED_AT,
        "updated_at": RECORDED_AT,
        **changes,
    }
