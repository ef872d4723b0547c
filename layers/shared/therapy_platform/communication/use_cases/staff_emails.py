"""Staff's email use cases: list and read emails, write an ad-hoc email to one patient or
therapist, and the communication history of one person (rules: domain/staff_emails.py).

Reading an email's content or a person's history is access to personal data: it is audited
(who, what, when) in the same transaction as the read, like every patient read.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from therapy_platform.communication.domain.email_content import AdHocMessage, Person
from therapy_platform.communication.domain.emails import Addressing, Email, RecipientType
from therapy_platform.communication.domain.phone_calls import PhoneCallTask
from therapy_platform.communication.domain.staff_emails import (
    AdHocEmailRequest,
    EmailDetail,
    EmailQuery,
    EmailSummary,
    PersonCommunication,
    PersonType,
    RecipientUnknownError,
    RecipientUnreachableError,
    stored_idempotency_key,
)
from therapy_platform.communication.domain.tracking import (
    CommunicationItem,
    PhoneCallHistoryItem,
    ReplyHistoryItem,
    person_of,
)
from therapy_platform.communication.ports import CommunicationUnitOfWork, EmailQueue
from therapy_platform.communication.rendering.renderer import EmailRenderer
from therapy_platform.communication.use_cases.emails import (
    QueueResult,
    StoredEmail,
    compose,
    offer_after_commit,
    stage_email,
)
from therapy_platform.platform.errors import NotFoundError
from therapy_platform.platform.outcome import Outcome
from therapy_platform.platform.rest.pagination import Page
from therapy_platform.platform.validation import FieldRuleError, FieldValidationError

# Reading page p of a merged history needs at most p * limit items of each kind; deeper pages
# than this many items are refused rather than read in full.
MAX_HISTORY_DEPTH: Final = 10_000


@dataclass(frozen=True)
class StaffEmailContext:
    """What the emails API needs: its unit of work and clock, and for writing an email the queue,
    the renderer and the addressing; bootstrap.py builds it from settings, tests from fakes."""

    unit_of_work: Callable[[], CommunicationUnitOfWork]
    queue: EmailQueue
    renderer: EmailRenderer
    addressing: Addressing
    clock: Callable[[], datetime]


# --------------------------------------------------------------------------- reading


def list_emails(uow: CommunicationUnitOfWork, query: EmailQuery) -> Page[EmailSummary]:
    with uow:
        items, total = uow.history.find(query)
    return Page[EmailSummary](items=items, total=total, page=query.page, limit=query.limit)


def read_email(
    uow: CommunicationUnitOfWork, email_id: uuid.UUID, *, actor: str, now: datetime
) -> EmailDetail:
    """One email with its bodies and attempts; the read is audited."""
    with uow:
        email = uow.history.detail(email_id)
        if email is None:
            raise NotFoundError(f"email {email_id} does not exist")
        uow.audit.record(
            at=now,
            actor=actor,
            action="email.read",
            entity_type="email",
            entity_id=email.id,
            detail={"recipient_type": email.recipient_type.value, "recipient_id": _str(email.recipient_id)},
        )
        uow.commit()
    return email


def _str(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


# --------------------------------------------------------------------------- ad-hoc emails


@dataclass(frozen=True)
class Addressee:
    person: Person
    email: str


def _patient(uow: CommunicationUnitOfWork, patient_id: uuid.UUID) -> Addressee:
    state = uow.contacts.patient(patient_id)
    if not state.known:
        raise RecipientUnknownError(
            f"patient {patient_id} is not known to the communication service",
            details={"recipient_id": str(patient_id)},
        )
    if state.contact is None:
        raise RecipientUnreachableError(
            f"patient {patient_id} was erased: no email can be sent",
            details={"recipient_id": str(patient_id), "reason": "erased"},
        )
    if not state.contact.email:
        raise RecipientUnreachableError(
            f"patient {patient_id} has no email address",
            details={"recipient_id": str(patient_id), "reason": "no_email_address"},
        )
    return Addressee(state.contact.person, state.contact.email)


def _therapist(uow: CommunicationUnitOfWork, therapist_id: uuid.UUID) -> Addressee:
    contact = uow.contacts.therapist(therapist_id)
    known = uow.contacts.knows_therapist(therapist_id)
    if contact is None and known:
        raise RecipientUnreachableError(
            f"therapist {therapist_id} was erased: no email can be sent",
            details={"recipient_id": str(therapist_id), "reason": "erased"},
        )
    if contact is not None:
        person: Person = contact
        email = contact.email
    else:
        # Not in the read model (yet): the addressee data of the newest bundle to them, as the
        # "place found" email does.
        latest = uow.bundles.latest_to(therapist_id)
        if latest is None or latest.therapist is None:
            raise RecipientUnknownError(
                f"therapist {therapist_id} is not known to the communication service",
                details={"recipient_id": str(therapist_id)},
            )
        person, email = person_of(latest.therapist), latest.therapist.email
    if not email or not email.strip():
        raise RecipientUnreachableError(
            f"therapist {therapist_id} has no email address",
            details={"recipient_id": str(therapist_id), "reason": "no_email_address"},
        )
    return Addressee(person, email.strip())


def send_ad_hoc_email(
    context: StaffEmailContext,
    request: AdHocEmailRequest,
    *,
    actor: str,
    idempotency_key: str | None = None,
) -> Outcome[QueueResult]:
    """Store, audit and queue one email to one patient or therapist. `created` False: the
    client's idempotency key named an email sent before (one still queued is offered to the
    queue again, as `queue_email` does)."""
    now = context.clock()
    key = stored_idempotency_key(idempotency_key, actor) if idempotency_key else None
    with context.unit_of_work() as uow:
        stored = _store_ad_hoc(context, uow, request, key, actor=actor, now=now)
        email = stored.value.email
        offer = offer_after_commit(uow, context.unit_of_work, context.queue, [email], now=now)
        uow.commit()
    return Outcome(QueueResult(email, stored.value.created, offer.enqueued), events=stored.events)


def _store_ad_hoc(
    context: StaffEmailContext,
    uow: CommunicationUnitOfWork,
    request: AdHocEmailRequest,
    key: str | None,
    *,
    actor: str,
    now: datetime,
) -> Outcome[StoredEmail]:
    if key is not None:
        existing = uow.emails.find_by_idempotency_key(key)
        if existing is not None:
            return Outcome(StoredEmail(_same_request(existing, request), created=False))
    is_patient = request.recipient_type is PersonType.PATIENT
    addressee = (_patient if is_patient else _therapist)(uow, request.recipient_id)
    content = AdHocMessage(
        recipient=addressee.person,
        subject=request.subject,
        body_markdown=request.body,
        salutation=request.salutation,
        crisis_notice=is_patient,
    )
    outgoing = compose(
        context.renderer,
        content,
        recipient=addressee.email,
        recipient_type=RecipientType(request.recipient_type.value),
        recipient_name=addressee.person.full_name[:300] or None,
        recipient_id=request.recipient_id,
        idempotency_key=key,
    )
    stored = stage_email(uow, outgoing, context.addressing, now=now)
    email = stored.value.email
    if not stored.value.created:  # the same key stored by a concurrent request a moment ago
        return Outcome(StoredEmail(_same_request(email, request), created=False))
    uow.audit.record(
        at=now,
        actor=actor,
        action="email.ad_hoc_queued",
        entity_type="email",
        entity_id=email.id,
        detail={"recipient_type": request.recipient_type.value, "recipient_id": str(request.recipient_id)},
    )
    return stored


def _same_request(existing: Email, request: AdHocEmailRequest) -> Email:
    if (
        existing.recipient_type.value != request.recipient_type.value
        or existing.recipient_id != request.recipient_id
    ):
        raise RecipientUnreachableError(
            "this Idempotency-Key was used for another recipient",
            details={"header": "Idempotency-Key", "email_id": str(existing.id)},
        )
    return existing


# --------------------------------------------------------------------------- a person's history


def person_communication(
    uow: CommunicationUnitOfWork,
    person_type: PersonType,
    person_id: uuid.UUID,
    *,
    page: int,
    limit: int,
    actor: str,
    now: datetime,
) -> PersonCommunication:
    """Emails, replies and (therapists) calls, newest first. 404 for a person this service has
    never heard of; the read is audited."""
    depth = page * limit
    if depth > MAX_HISTORY_DEPTH:
        raise FieldValidationError.for_fields(
            {
                "page": FieldRuleError(
                    "too_large",
                    f"page * limit darf höchstens {MAX_HISTORY_DEPTH} sein (die neuesten Einträge)",
                )
            },
            location="query",
        )
    recipient_type = RecipientType(person_type.value)
    with uow:
        emails, email_total = uow.history.for_person(recipient_type, person_id, depth)
        replies, reply_total = uow.replies.for_person(recipient_type, person_id, depth)
        erased = False
        if person_type is PersonType.PATIENT:
            state = uow.contacts.patient(person_id)
            known, erased = state.known, state.erased
            calls: list[PhoneCallTask] = []
            call_total = 0
        else:
            calls, call_total = uow.calls.for_therapist(person_id, depth)
            known = (
                uow.contacts.knows_therapist(person_id)
                or uow.bundles.latest_to(person_id) is not None
                or bool(call_total)
            )
        if not known and not email_total:
            raise NotFoundError(
                f"{person_type.value} {person_id} is not known to the communication service",
                details={"person_id": str(person_id)},
            )
        uow.audit.record(
            at=now,
            actor=actor,
            action=f"{person_type.value}.communication_read",
            entity_type=person_type.value,
            entity_id=person_id,
            detail={"page": page, "limit": limit},
        )
        uow.commit()
    items: list[CommunicationItem] = [*emails]
    items += [PhoneCallHistoryItem.of(call) for call in calls]
    items += [ReplyHistoryItem.of(reply) for reply in replies]
    # Newest first; the id breaks ties so pages never overlap (each kind was read in this order).
    items.sort(key=lambda item: (item.at, str(item.id)), reverse=True)
    start = (page - 1) * limit
    return PersonCommunication(
        person_type=person_type,
        person_id=person_id,
        erased=erased,
        items=items[start : start + limit],
        total=email_total + reply_total + call_total,
        page=page,
        limit=limit,
    )
