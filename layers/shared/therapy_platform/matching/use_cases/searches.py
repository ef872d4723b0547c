"""Patient search use cases: create, change (status, exclusions, notes), add contacts, and the
reaction to an erased patient. Every change writes its audit entry and its events in the same
transaction as the change itself."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Generic, TypeVar

from therapy_platform.matching.domain.bundles import BundleStatus, MemberStatus, Withdrawal, member_reference
from therapy_platform.matching.domain.candidates import matching_readiness_problems
from therapy_platform.matching.domain.models import SearchStatus
from therapy_platform.matching.domain.searches import (
    ContactRequest,
    PatientSearch,
    PatientSearchDetail,
    SearchDraft,
    SearchPatch,
    SearchQuery,
    SearchStatusChanged,
    check_search_transition,
)
from therapy_platform.matching.ports import MatchingStore, MatchingUnitOfWork
from therapy_platform.platform.errors import ConflictError, InvalidInputError, NotFoundError
from therapy_platform.platform.events import EventEnvelope, new_envelope

PRODUCER: Final = "matching-service"
T = TypeVar("T")


@dataclass(frozen=True)
class Result(Generic[T]):
    """What a use case returns, with the events it committed (publish them right away)."""

    value: T
    events: tuple[EventEnvelope, ...] = ()


@dataclass
class Changes:
    """Events and audit entries a use case collects before it commits them together."""

    now: datetime
    actor: str
    events: list[tuple[str, EventEnvelope]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)

    def event(self, event_type: str, key: uuid.UUID, payload: dict[str, Any]) -> EventEnvelope:
        envelope = new_envelope(event_type, PRODUCER, payload, now=self.now)
        self.events.append((str(key), envelope))
        return envelope

    def record(
        self,
        action: str,
        entity_type: str,
        entity_id: uuid.UUID,
        *,
        before: Any = None,
        after: Any = None,
        reason: str | None = None,
    ) -> None:
        self.audit.append(
            {
                "at": self.now,
                "actor": self.actor,
                "action": action,
                "entity_type": entity_type,
                "entity_id": entity_id,
                "before": before,
                "after": after,
                "reason": reason,
            }
        )

    def commit(self, uow: MatchingUnitOfWork) -> tuple[EventEnvelope, ...]:
        uow.outbox.add_many(self.events)
        uow.store.audit(self.audit)
        uow.commit()
        return tuple(envelope for _, envelope in self.events)


def _view(store: MatchingStore, search_id: uuid.UUID, now: datetime) -> PatientSearch:
    search = store.search_view(search_id, now)
    if search is None:
        raise NotFoundError(f"patient search {search_id} does not exist")
    return search


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
    store: MatchingStore,
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
    for membership in store.pending_memberships(search_id):
        if membership["bundle_id"] == keep_bundle:
            continue
        if drafts_only and membership["bundle_status"] != BundleStatus.DRAFT:
            continue
        store.update_member(membership["id"], {"status": MemberStatus.WITHDRAWN.value, "notes": reason})
        withdrawals.append(
            Withdrawal(
                bundle_id=membership["bundle_id"],
                bundle_reference=f"B{membership['number']}",
                bundle_status=membership["bundle_status"],
                therapist_id=membership["therapist_id"],
                search_id=search_id,
                member_reference=member_reference(membership["number"], membership["position"]),
            )
        )
        changes.record(
            "member.withdrawn",
            "bundle",
            membership["bundle_id"],
            after={"search_id": str(search_id)},
            reason=reason,
        )
        if membership["bundle_status"] == BundleStatus.DRAFT:
            discard_if_empty(store, changes, membership["bundle_id"])
    return withdrawals


def discard_if_empty(store: MatchingStore, changes: Changes, bundle_id: uuid.UUID) -> None:
    bundle = store.bundle(bundle_id, now=changes.now, for_update=True)
    if bundle is None or bundle.status != BundleStatus.DRAFT:
        return
    if any(member.status == MemberStatus.PENDING for member in bundle.members):
        return
    discard_draft(store, changes, bundle_id, reason="every member was withdrawn")


def discard_draft(store: MatchingStore, changes: Changes, bundle_id: uuid.UUID, *, reason: str) -> None:
    """A discarded draft gives its members' contacts back (they never reached a therapist)."""
    store.update_bundle(
        bundle_id,
        {
            "status": BundleStatus.DISCARDED.value,
            "discarded_at": changes.now,
            "discard_reason": reason,
            "updated_at": changes.now,
        },
    )
    for member in store.bundle(bundle_id, now=changes.now).members:  # type: ignore[union-attr]
        if member.status == MemberStatus.PENDING:
            store.update_member(member.id, {"status": MemberStatus.WITHDRAWN.value, "notes": reason})
    changes.record(
        "bundle.discarded",
        "bundle",
        bundle_id,
        before={"status": "draft"},
        after={"status": "discarded"},
        reason=reason,
    )


# ------------------------------------------------------------------ use cases


def create_search(
    uow: MatchingUnitOfWork, draft: SearchDraft, *, actor: str, now: datetime
) -> Result[PatientSearch]:
    with uow:
        store = uow.store
        known, profile = store.patient_profile(draft.patient_id)
        if not known:
            raise NotFoundError(
                f"patient {draft.patient_id} is not known to the matching service; a patient registered a "
                "moment ago arrives within seconds, so retry shortly",
                details={"patient_id": str(draft.patient_id)},
            )
        if profile is None:
            raise ConflictError(
                f"patient {draft.patient_id} was erased", details={"patient_id": str(draft.patient_id)}
            )
        problems = matching_readiness_problems(profile)
        if problems:
            raise InvalidInputError(
                "the patient cannot be searched for yet: " + "; ".join(problems),
                details={"problems": problems},
            )
        existing = store.unfinished_search_of(draft.patient_id)
        if existing is not None:
            raise ConflictError(
                f"patient {draft.patient_id} already has an unfinished search "
                f"{existing['id']} ({existing['status']})",
                details={"search_id": str(existing["id"]), "search_status": existing["status"]},
            )
        search_id = uuid.uuid4()
        store.add_search(
            {
                "id": search_id,
                "patient_id": draft.patient_id,
                "status": SearchStatus.ACTIVE.value,
                "created_at": now,
                "updated_at": now,
                "total_requested_contacts": draft.total_requested_contacts,
                "notes": draft.notes,
            }
        )
        search = _view(store, search_id, now)
        changes = Changes(now, actor)
        payload = search.model_dump(mode="json")
        changes.event("search.created", search_id, payload)
        status_changed(changes, search, None, reason="search started")
        changes.record("search.created", "search", search_id, after=payload)
        return Result(search, changes.commit(uow))


def get_search(uow: MatchingUnitOfWork, search_id: uuid.UUID, *, now: datetime) -> PatientSearchDetail:
    with uow:
        search = _view(uow.store, search_id, now)
        return PatientSearchDetail(**search.model_dump(), bundles=uow.store.search_history(search_id))


def list_searches(
    uow: MatchingUnitOfWork, query: SearchQuery, *, now: datetime
) -> tuple[list[PatientSearch], int]:
    with uow:
        return uow.store.list_searches(query, now)


def change_search(
    uow: MatchingUnitOfWork, search_id: uuid.UUID, patch: SearchPatch, *, actor: str, now: datetime
) -> Result[PatientSearch]:
    with uow:
        store = uow.store
        row = store.search_row(search_id, for_update=True)
        if row is None:
            raise NotFoundError(f"patient search {search_id} does not exist")
        before = _view(store, search_id, now)
        changes = Changes(now, actor)
        values: dict[str, Any] = {}
        withdrawals: list[Withdrawal] = []
        new_status = SearchStatus(patch.status) if patch.status is not None else None
        current = SearchStatus(row["status"])
        if new_status is not None and new_status != current:
            check_search_transition(current, new_status, reason=patch.status_reason)
            values["status"] = new_status.value
            values["status_reason"] = patch.status_reason
            if new_status is SearchStatus.PLACED:
                values["placed_therapist_id"] = patch.placed_therapist_id
                values["placed_at"] = now
                withdrawals = withdraw_pending(store, changes, search_id, reason="placed (recorded by staff)")
            elif new_status is SearchStatus.CANCELLED:
                withdrawals = withdraw_pending(store, changes, search_id, reason="search cancelled")
            elif new_status is SearchStatus.PAUSED:
                # A paused patient stays in bundles already sent; drafts are not sent with them.
                withdraw_pending(store, changes, search_id, reason="search paused", drafts_only=True)
            elif current is SearchStatus.PLACED:
                values["placed_therapist_id"] = None
                values["placed_at"] = None
        elif new_status is not None and patch.status_reason is not None:
            values["status_reason"] = patch.status_reason
        if "notes" in patch.model_fields_set:
            values["notes"] = patch.notes
        for exclusion in patch.add_exclusions:
            store.add_exclusion(
                search_id, exclusion.therapist_id, reason=exclusion.reason, at=now, actor=actor
            )
        for therapist_id in patch.remove_exclusions:
            if not store.remove_exclusion(search_id, therapist_id):
                raise ConflictError(
                    f"therapist {therapist_id} is not excluded from search {search_id}",
                    details={"therapist_id": str(therapist_id)},
                )
        if values:
            store.update_search(search_id, {**values, "updated_at": now})
        elif patch.add_exclusions or patch.remove_exclusions:
            store.update_search(search_id, {"updated_at": now})
        after = _view(store, search_id, now)
        if after.model_dump(exclude={"updated_at"}) == before.model_dump(exclude={"updated_at"}):
            return Result(before)  # nothing changed: no event, no audit entry
        payload = after.model_dump(mode="json")
        changes.event("search.updated", search_id, payload)
        if after.status != before.status:
            status_changed(changes, after, before.status, reason=patch.status_reason, withdrawals=withdrawals)
        changes.record(
            "search.updated",
            "search",
            search_id,
            before=before.model_dump(mode="json"),
            after=payload,
            reason=patch.status_reason,
        )
        return Result(after, changes.commit(uow))


def add_contacts(
    uow: MatchingUnitOfWork, search_id: uuid.UUID, request: ContactRequest, *, actor: str, now: datetime
) -> Result[PatientSearch]:
    with uow:
        store = uow.store
        row = store.search_row(search_id, for_update=True)
        if row is None:
            raise NotFoundError(f"patient search {search_id} does not exist")
        if row["status"] not in (SearchStatus.ACTIVE, SearchStatus.PAUSED):
            raise ConflictError(
                f"contacts are added only to an active or paused search; this one is {row['status']}",
                details={"current_status": row["status"]},
            )
        before = row["total_requested_contacts"]
        store.update_search(
            search_id, {"total_requested_contacts": before + request.count, "updated_at": now}
        )
        search = _view(store, search_id, now)
        changes = Changes(now, actor)
        payload = search.model_dump(mode="json")
        changes.event("search.updated", search_id, payload)
        changes.record(
            "search.contacts_added",
            "search",
            search_id,
            before={"total_requested_contacts": before},
            after={"total_requested_contacts": search.total_requested_contacts},
        )
        return Result(search, changes.commit(uow))


def cancel_searches_of_erased_patient(
    uow: MatchingUnitOfWork, patient_id: uuid.UUID, *, now: datetime
) -> Result[list[uuid.UUID]]:
    """`patient.deleted`: the patient's unfinished search is cancelled and withdrawn from open
    bundles (therapists of sent ones get a withdrawal notice). Idempotent: a redelivery finds
    nothing unfinished."""
    with uow:
        store = uow.store
        row = store.unfinished_search_of(patient_id)
        if row is None:
            return Result([])
        store.search_row(row["id"], for_update=True)
        changes = Changes(now, "system:patient-erasure")
        reason = "patient data erased on request"
        withdrawals = withdraw_pending(store, changes, row["id"], reason=reason)
        store.update_search(
            row["id"], {"status": SearchStatus.CANCELLED.value, "status_reason": reason, "updated_at": now}
        )
        search = _view(store, row["id"], now)
        status_changed(changes, search, SearchStatus(row["status"]), reason=reason, withdrawals=withdrawals)
        changes.record(
            "search.cancelled",
            "search",
            row["id"],
            before={"status": row["status"]},
            after={"status": "cancelled"},
            reason=reason,
        )
        return Result([row["id"]], changes.commit(uow))
