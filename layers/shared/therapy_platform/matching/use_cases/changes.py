"""What the matching use cases share: collecting a change's events and audit entries to write
them with the change, and the changes several use cases make (a search's status event,
withdrawing its pending memberships, discarding a draft)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from therapy_platform.contracts.catalog import EVENT_PAYLOADS
from therapy_platform.matching.domain.bundle import BundleRecord
from therapy_platform.matching.domain.bundles import BundleStatus, Withdrawal
from therapy_platform.matching.domain.models import SearchStatus
from therapy_platform.matching.domain.records import AuditEntry, JsonObject
from therapy_platform.matching.domain.searches import PatientSearch, SearchStatusChanged
from therapy_platform.matching.ports import MatchingUnitOfWork
from therapy_platform.platform.errors import NotFoundError
from therapy_platform.platform.events import EventEnvelope, new_envelope

PRODUCER: Final = "matching-service"


@dataclass
class Changes:
    """Events and audit entries a use case collects; `write` puts them into the unit of work
    (outbox and audit log) in one go, so a national round writes them in bulk."""

    now: datetime
    actor: str
    events: list[tuple[str, EventEnvelope]] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)

    def event(self, event_type: str, key: uuid.UUID, payload: dict[str, Any]) -> EventEnvelope:
        """The event as its contract (contracts/catalog.py) publishes it: a field the API view
        gains does not reach the bus, and one the contract needs but the view lost fails here,
        in the producer's tests, not in a consumer."""
        contract = EVENT_PAYLOADS[event_type]
        published = contract.model_validate(payload).model_dump(mode="json", by_alias=True)
        envelope = new_envelope(event_type, PRODUCER, published, now=self.now)
        self.events.append((str(key), envelope))
        return envelope

    def record(
        self,
        action: str,
        entity_type: str,
        entity_id: uuid.UUID,
        *,
        before: JsonObject | None = None,
        after: JsonObject | None = None,
        reason: str | None = None,
    ) -> None:
        self.audit.append(
            AuditEntry(
                at=self.now,
                actor=self.actor,
                action=action,
                entity_type=entity_type,
                entity_id=entity_id,
                before=before,
                after=after,
                reason=reason,
            )
        )

    def write(self, uow: MatchingUnitOfWork) -> tuple[EventEnvelope, ...]:
        """Into the open transaction; the caller commits (or a consumer's runtime does)."""
        uow.outbox.add_many(self.events)
        uow.audit.record(self.audit)
        written = tuple(envelope for _, envelope in self.events)
        self.events, self.audit = [], []
        return written

    def commit(self, uow: MatchingUnitOfWork) -> tuple[EventEnvelope, ...]:
        written = self.write(uow)
        uow.commit()
        return written


def search_view(uow: MatchingUnitOfWork, search_id: uuid.UUID, now: datetime) -> PatientSearch:
    view = uow.queries.search(search_id, now)
    if view is None:
        raise NotFoundError(f"patient search {search_id} does not exist")
    return view


def status_changed(
    changes: Changes,
    search: PatientSearch,
    previous: SearchStatus | None,
    *,
    reason: str | None,
    withdrawals: Sequence[Withdrawal] = (),
) -> None:
    payload = SearchStatusChanged(
        id=search.id,
        patient_id=search.patient_id,
        previous_status=previous,
        status=search.status,
        placed_therapist_id=search.placed_therapist_id,
        reason=reason,
        changed_at=changes.now,
        withdrawals=list(withdrawals),
    )
    changes.event("search.status_changed", search.id, payload.model_dump(mode="json"))


def withdraw_pending(
    uow: MatchingUnitOfWork,
    changes: Changes,
    search_id: uuid.UUID,
    *,
    keep_bundle: uuid.UUID | None = None,
    reason: str,
    drafts_only: bool = False,
) -> list[Withdrawal]:
    """Withdraw the search's pending memberships from open bundles (but `keep_bundle`). A draft
    left without any pending member is discarded: there is nothing left to send."""
    withdrawals: list[Withdrawal] = []
    for bundle in uow.bundles.with_pending_member(search_id):
        if bundle.id == keep_bundle:
            continue
        if drafts_only and bundle.status != BundleStatus.DRAFT:
            continue
        withdrawals.append(bundle.withdraw(search_id, reason))
        changes.record(
            "member.withdrawn", "bundle", bundle.id, after={"search_id": str(search_id)}, reason=reason
        )
        if bundle.status == BundleStatus.DRAFT and not bundle.has_pending:
            discard_draft(changes, bundle, reason="every member was withdrawn")
        uow.bundles.save(bundle)
    return withdrawals


def discard_draft(changes: Changes, bundle: BundleRecord, *, reason: str) -> None:
    """A discarded draft gives its members' contacts back (they never reached a therapist).
    The caller saves the bundle."""
    bundle.discard(reason, now=changes.now)
    changes.record(
        "bundle.discarded",
        "bundle",
        bundle.id,
        before={"status": "draft"},
        after={"status": "discarded"},
        reason=reason,
    )
