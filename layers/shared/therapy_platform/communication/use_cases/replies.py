"""Reply intake: takes in the messages that arrived at our reply addresses (see
domain/replies.py), one at a time. A trustworthy reply is stored once (by Message-ID), linked to
its bundle and, when it quotes one, to the email it answers; anything else goes to the staff
review list with its reasons and is attached to nothing:

- over `policy.max_message_bytes`: reviewed without being parsed;
- unreadable: reviewed;
- SES's verdicts (spam, virus, sender authentication) not good: reviewed;
- the sender is not the therapist or practice of the bundle it names (or the recipient of the
  email it quotes), the bundle is unknown, or it names nothing of ours: reviewed.

A stored reply whose own words object to further inquiries ("keine weiteren Anfragen";
domain/opt_out.py) also publishes `email.opt_out_received` (the therapist's id and the reply's,
nothing else) through the outbox, in the reply's transaction; the therapist service marks the
therapist opted out. Only trustworthy replies count: an objection on the review list is for
staff (they record it with `POST /api/v2/therapists/{id}/opt-out`).

A message is marked done in the inbox only after its row is committed; a crash in between offers
it again, and the Message-ID (replies) or the inbox key (review list) keeps the second copy
out. The report counts outcomes and names inbox keys and bundle references only: never
addresses, names or text (health data)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from therapy_platform.communication.domain.emails import PRODUCER, Addressing, RecipientType
from therapy_platform.communication.domain.opt_out import objects_to_inquiries, opt_out_event_payload
from therapy_platform.communication.domain.replies import (
    InboundReply,
    ReadMessage,
    ReplyPolicy,
    ReviewedReply,
    ReviewReason,
    read_reply,
    sender_belongs,
    verdict_reasons,
)
from therapy_platform.communication.ports import CommunicationUnitOfWork, InboxEntry, ReplyInbox
from therapy_platform.platform.publishing import record_event
from therapy_platform.platform.rest.pagination import Page


@dataclass
class IntakeReport:
    looked_at: int = 0
    stored: int = 0
    duplicates: int = 0
    not_replies: int = 0
    reviewed: int = 0
    review_reasons: dict[str, int] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)  # inbox keys
    stored_references: list[str] = field(default_factory=list)
    opt_outs: int = 0  # stored replies that objected to further inquiries (event published)

    def count_review(self, reasons: list[ReviewReason]) -> None:
        self.reviewed += 1
        counts = Counter(self.review_reasons)
        counts.update(reason.value for reason in reasons)
        self.review_reasons = dict(sorted(counts.items()))


def _review(
    entry: InboxEntry, reasons: list[ReviewReason], *, size: int, read: ReadMessage | None = None
) -> ReviewedReply:
    reply = read.reply if read is not None else None
    return ReviewedReply(
        id=uuid.uuid4(),
        inbox_key=entry.key[:1024],
        reasons=list(dict.fromkeys(reasons)),
        message_id=reply.message_id if reply else None,
        from_address=(read.sender or reply.from_address)[:254] if read and reply else None,
        to_address=reply.to_address if reply else None,
        subject=reply.subject if reply else None,
        # A message SES found a virus in keeps no content; staff see who sent what and why.
        text=reply.text if reply and ReviewReason.VIRUS not in reasons else None,
        claimed_bundle_reference=reply.bundle_reference if reply else None,
        verdicts=read.verdicts.as_dict() if read and read.verdicts else {},
        size_bytes=size,
        received_at=entry.received_at,
    )


def _sender_reasons(
    uow: CommunicationUnitOfWork, read: ReadMessage
) -> tuple[list[ReviewReason], uuid.UUID | None, uuid.UUID | None]:
    """Whether the sender belongs to what the reply names (module docstring); the email it
    answers, if it is one of ours and fits; the therapist who replied (the bundle's, or the
    recipient of the therapist email it answers), if any."""
    reply = read.reply
    answered = uow.history.answered(reply.quoted_message_ids())
    reference = reply.bundle_reference
    if reference is not None:
        bundle = uow.bundles.by_reference(reference)
        if bundle is None or bundle.sent_at is None:
            return [ReviewReason.UNKNOWN_BUNDLE], None, None
        contact = uow.contacts.therapist(bundle.therapist_id)
        addresses = [bundle.therapist.email if bundle.therapist else None, contact.email if contact else None]
        if not sender_belongs(read.sender, addresses, [contact.website if contact else None]):
            return [ReviewReason.SENDER_NOT_ADDRESSEE], None, None
        fits = answered is not None and answered.bundle_reference in (None, reference)
        return [], answered.id if answered is not None and fits else None, bundle.therapist_id
    if answered is None:
        return [ReviewReason.UNMATCHED], None, None
    addresses = [answered.recipient]
    websites: list[str | None] = []
    therapist_id: uuid.UUID | None = None
    if answered.recipient_id is not None and answered.recipient_type == RecipientType.THERAPIST.value:
        therapist_id = answered.recipient_id
        therapist = uow.contacts.therapist(answered.recipient_id)
        addresses.append(therapist.email if therapist else None)
        websites.append(therapist.website if therapist else None)
    elif answered.recipient_id is not None and answered.recipient_type == RecipientType.PATIENT.value:
        patient = uow.contacts.patient(answered.recipient_id).contact
        addresses.append(patient.email if patient else None)
    if not sender_belongs(read.sender, addresses, websites):
        return [ReviewReason.SENDER_NOT_ADDRESSEE], None, None
    return [], answered.id, therapist_id


def _record_opt_out(
    uow: CommunicationUnitOfWork, reply: InboundReply, therapist_id: uuid.UUID | None, *, now: datetime
) -> bool:
    """`email.opt_out_received` when a therapist's stored reply objects (in its transaction)."""
    if therapist_id is None or not objects_to_inquiries(reply.text, reply.html):
        return False
    record_event(
        uow.outbox,
        "email.opt_out_received",
        producer=PRODUCER,
        key=therapist_id,
        payload=opt_out_event_payload(therapist_id),
        now=now,
    )
    return True


def take_in_replies(
    unit_of_work: Callable[[], CommunicationUnitOfWork],
    inbox: ReplyInbox,
    addressing: Addressing,
    *,
    now: datetime,
    limit: int = 200,
    policy: ReplyPolicy | None = None,
) -> IntakeReport:
    policy = policy or ReplyPolicy()
    report = IntakeReport()
    for entry in inbox.pending(limit):
        report.looked_at += 1
        _take_in(unit_of_work, inbox, addressing, entry, policy, report, now=now)
    return report


def _store_review(
    unit_of_work: Callable[[], CommunicationUnitOfWork], item: ReviewedReply, report: IntakeReport
) -> None:
    with unit_of_work() as uow:
        uow.replies.review(item)
        uow.commit()
    report.count_review(item.reasons)


def _take_in(
    unit_of_work: Callable[[], CommunicationUnitOfWork],
    inbox: ReplyInbox,
    addressing: Addressing,
    entry: InboxEntry,
    policy: ReplyPolicy,
    report: IntakeReport,
    *,
    now: datetime,
) -> None:
    cap = policy.max_message_bytes
    raw = None if entry.size > cap else inbox.read(entry.key, cap)
    if raw is None and entry.size <= cap:
        return  # taken by a concurrent intake meanwhile
    if raw is None or len(raw) > cap:
        _store_review(unit_of_work, _review(entry, [ReviewReason.TOO_LARGE], size=entry.size), report)
        inbox.done(entry.key, stored=True)
        return
    try:
        read = read_reply(
            raw,
            reply_domain=addressing.reply_domain,
            local_part=addressing.reply_local_part,
            received_at=entry.received_at,
        )
    except Exception:  # a message no parser can read must not block the inbox
        report.unreadable.append(entry.key)
        _store_review(unit_of_work, _review(entry, [ReviewReason.UNREADABLE], size=len(raw)), report)
        inbox.done(entry.key, stored=True)
        return
    if read is None:
        report.not_replies += 1
        inbox.done(entry.key, stored=False)
        return
    reasons = verdict_reasons(read.verdicts, read.sender, required=policy.verdicts_required)
    stored = objected = False
    with unit_of_work() as uow:
        sender_reasons, email_id, therapist_id = _sender_reasons(uow, read)
        reasons += sender_reasons
        review = _review(entry, reasons, size=len(raw), read=read) if reasons else None
        if review is not None:
            uow.replies.review(review)
        else:
            reply = read.reply.model_copy(update={"email_id": email_id})
            stored = uow.replies.add(reply)
            # Once per stored reply: a redelivered copy (same Message-ID) is not stored again.
            objected = stored and _record_opt_out(uow, reply, therapist_id, now=now)
        uow.commit()
    if objected:
        report.opt_outs += 1
    if review is not None:
        report.count_review(review.reasons)
    elif stored:
        report.stored += 1
        report.stored_references.append(read.reply.bundle_reference or "-")
    else:
        report.duplicates += 1
    inbox.done(entry.key, stored=True)


def review_list(uow: CommunicationUnitOfWork, *, page: int, limit: int) -> Page[ReviewedReply]:
    """The staff review list, newest first."""
    with uow:
        items, total = uow.replies.reviews(page=page, limit=limit)
    return Page[ReviewedReply](items=items, total=total, page=page, limit=limit)
