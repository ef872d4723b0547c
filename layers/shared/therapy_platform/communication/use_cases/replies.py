"""Reply intake: stores the replies that arrived at our reply addresses (see domain/replies.py),
each once (by Message-ID), linked to its bundle and, when it quotes one, to the email it answers.

A message is marked done in the inbox only after its reply is committed; a crash in between
offers it again and the Message-ID keeps the second copy out. A message that cannot be parsed
at all is logged and marked done (it would fail on every run)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from therapy_platform.communication.domain.emails import Addressing
from therapy_platform.communication.domain.replies import parse_reply
from therapy_platform.communication.ports import CommunicationUnitOfWork, ReplyInbox


@dataclass
class IntakeReport:
    looked_at: int = 0
    stored: int = 0
    duplicates: int = 0
    not_replies: int = 0
    unreadable: list[str] = field(default_factory=list)
    stored_references: list[str] = field(default_factory=list)


def take_in_replies(
    unit_of_work: Callable[[], CommunicationUnitOfWork],
    inbox: ReplyInbox,
    addressing: Addressing,
    *,
    now: datetime,
    limit: int = 200,
) -> IntakeReport:
    report = IntakeReport()
    for message in inbox.new_messages(limit):
        report.looked_at += 1
        try:
            reply = parse_reply(
                message.raw,
                reply_domain=addressing.reply_domain,
                local_part=addressing.reply_local_part,
                received_at=message.received_at,
            )
        except Exception as error:  # a message no parser can read must not block the inbox
            report.unreadable.append(f"{message.key}: {type(error).__name__}: {error}")
            inbox.done(message.key, stored=False)
            continue
        if reply is None:
            report.not_replies += 1
            inbox.done(message.key, stored=False)
            continue
        with unit_of_work() as uow:
            email_id = uow.history.id_by_message_id(reply.quoted_message_ids())
            stored = uow.replies.add(reply.model_copy(update={"email_id": email_id}))
            uow.commit()
        if stored:
            report.stored += 1
            report.stored_references.append(reply.bundle_reference or "-")
        else:
            report.duplicates += 1
        inbox.done(message.key, stored=True)
    return report
