"""Staff's side of phone calls and of a bundle's history: list and read calls, record a call's
outcome (`phone_call.completed`, audited), and everything said about one bundle."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final

from therapy_platform.communication.domain.emails import PRODUCER
from therapy_platform.communication.domain.phone_calls import CallCompletion, PhoneCallQuery, PhoneCallTask
from therapy_platform.communication.domain.tracking import (
    BundleCommunication,
    BundleSummary,
    CommunicationItem,
    PhoneCallHistoryItem,
    ReplyHistoryItem,
)
from therapy_platform.communication.ports import CommunicationUnitOfWork
from therapy_platform.platform.errors import NotFoundError
from therapy_platform.platform.outcome import Outcome
from therapy_platform.platform.publishing import record_event
from therapy_platform.platform.rest.pagination import Page

# A bundle's history is short (an inquiry, a reminder, a few notices, calls, replies); replies
# from a mail loop could pile up, so each kind is read up to this many, newest first.
MAX_HISTORY_PER_KIND: Final = 500


def list_calls(uow: CommunicationUnitOfWork, query: PhoneCallQuery) -> Page[PhoneCallTask]:
    with uow:
        items, total = uow.calls.find(query)
    return Page[PhoneCallTask](items=items, total=total, page=query.page, limit=query.limit)


def get_call(uow: CommunicationUnitOfWork, call_id: uuid.UUID) -> PhoneCallTask:
    with uow:
        task = uow.calls.get(call_id)
    if task is None:
        raise NotFoundError(f"phone call {call_id} does not exist")
    return task


def complete_call(
    uow: CommunicationUnitOfWork,
    call_id: uuid.UUID,
    completion: CallCompletion,
    *,
    actor: str,
    now: datetime,
) -> Outcome[PhoneCallTask]:
    """scheduled -> completed with outcome and notes (`phone_call.completed`, published once
    committed); 409 naming both states otherwise."""
    with uow:
        task = uow.calls.get(call_id, for_update=True)
        if task is None:
            raise NotFoundError(f"phone call {call_id} does not exist")
        done = task.completed(completion.outcome, completion.notes, actor=actor, now=now)
        uow.calls.update(done)
        uow.audit.record(
            at=now,
            actor=actor,
            action="phone_call.completed",
            entity_type="phone_call",
            entity_id=done.id,
            detail={"outcome": done.outcome.value if done.outcome else None, "bundle": done.bundle_reference},
        )
        event = record_event(
            uow.outbox,
            "phone_call.completed",
            producer=PRODUCER,
            key=done.id,
            payload=done.completed_event(),
            now=now,
        )
        uow.commit()
    return Outcome(done, events=(event,))


def bundle_communication(
    uow: CommunicationUnitOfWork, reference: str, *, page: int, limit: int
) -> BundleCommunication:
    with uow:
        bundle = uow.bundles.by_reference(reference)
        emails = uow.history.for_bundle(reference, MAX_HISTORY_PER_KIND)
        calls = uow.calls.for_bundle(reference, MAX_HISTORY_PER_KIND)
        replies = uow.replies.for_bundle(reference, MAX_HISTORY_PER_KIND)
    items: list[CommunicationItem] = [*emails]
    items += [PhoneCallHistoryItem.of(call) for call in calls]
    items += [ReplyHistoryItem.of(reply) for reply in replies]
    # Newest first; the id breaks ties so pages never overlap.
    items.sort(key=lambda item: (item.at, str(item.id)), reverse=True)
    start = (page - 1) * limit
    return BundleCommunication(
        bundle_reference=reference,
        bundle=BundleSummary.of(bundle) if bundle else None,
        items=items[start : start + limit],
        total=len(items),
        page=page,
        limit=limit,
    )
