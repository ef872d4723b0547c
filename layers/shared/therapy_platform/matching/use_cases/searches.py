"""Patient search use cases: create, read and list, change (status, exclusions, notes), add
contacts, and the reaction to an erased patient. Every change writes its audit entry and its
events in the same transaction as the change itself."""

from __future__ import annotations

import uuid
from datetime import datetime

from therapy_platform.matching.domain.models import SearchStatus
from therapy_platform.matching.domain.search import Search
from therapy_platform.matching.domain.searches import (
    ContactRequest,
    PatientSearch,
    PatientSearchDetail,
    SearchDraft,
    SearchPatch,
    SearchQuery,
    search_tag,
)
from therapy_platform.matching.ports import MatchingUnitOfWork
from therapy_platform.matching.use_cases.changes import Changes, search_view, status_changed, withdraw_pending
from therapy_platform.platform.errors import ConflictError, InvalidInputError, NotFoundError
from therapy_platform.platform.outcome import Outcome
from therapy_platform.platform.preconditions import check_version
from therapy_platform.platform.rest.pagination import Page

ERASURE_ACTOR = "system:patient-erasure"


def _locked(uow: MatchingUnitOfWork, search_id: uuid.UUID) -> Search:
    search = uow.searches.get(search_id, for_update=True)
    if search is None:
        raise NotFoundError(f"patient search {search_id} does not exist")
    return search


def create_search(
    uow: MatchingUnitOfWork, draft: SearchDraft, *, actor: str, now: datetime
) -> Outcome[PatientSearch]:
    with uow:
        known, profile = uow.profiles.patient(draft.patient_id)
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
        problems = profile.readiness_problems()
        if problems:
            raise InvalidInputError(
                "the patient cannot be searched for yet: " + "; ".join(problems),
                details={"problems": problems},
            )
        existing = uow.searches.unfinished_of(draft.patient_id)
        if existing is not None:
            raise ConflictError(
                f"patient {draft.patient_id} already has an unfinished search "
                f"{existing.id} ({existing.status.value})",
                details={"search_id": str(existing.id), "search_status": existing.status.value},
            )
        search = Search.start(draft, now=now)
        uow.searches.add(search)
        view = search_view(uow, search.id, now)
        changes = Changes(now, actor)
        payload = view.model_dump(mode="json")
        changes.event("search.created", search.id, payload)
        status_changed(changes, view, None, reason="search started")
        changes.record("search.created", "search", search.id, after=payload)
        return Outcome(view, changes.commit(uow))


def get_search(
    uow: MatchingUnitOfWork, search_id: uuid.UUID, *, now: datetime
) -> Outcome[PatientSearchDetail]:
    with uow:
        search = search_view(uow, search_id, now)
        history = uow.queries.search_history(search_id)
        return Outcome(PatientSearchDetail(**search.model_dump(), bundles=history))


def list_searches(
    uow: MatchingUnitOfWork, query: SearchQuery, *, now: datetime
) -> Outcome[Page[PatientSearch]]:
    with uow:
        items, total = uow.queries.searches(query, now)
    return Outcome(Page[PatientSearch](items=items, total=total, page=query.page, limit=query.limit))


def change_search(
    uow: MatchingUnitOfWork,
    search_id: uuid.UUID,
    patch: SearchPatch,
    *,
    actor: str,
    now: datetime,
    if_match: str | None = None,
) -> Outcome[PatientSearch]:
    """`if_match`: the entity tag the client read; 412 when the search changed since (checked
    with the search locked)."""
    with uow:
        search = _locked(uow, search_id)
        before = search_view(uow, search_id, now)
        check_version(if_match, search_tag(before), what="patient search")
        changes = Changes(now, actor)
        withdraw = search.apply_patch(patch, actor=actor, now=now)
        withdrawals = []
        if withdraw is not None:
            withdrawn = withdraw_pending(
                uow, changes, search_id, reason=withdraw.reason, drafts_only=withdraw.drafts_only
            )
            withdrawals = withdrawn if withdraw.reported else []
        uow.searches.save(search)
        after = search_view(uow, search_id, now)
        if after.model_dump(exclude={"updated_at"}) == before.model_dump(exclude={"updated_at"}):
            return Outcome(before)  # nothing changed: no event, no audit entry (leaving rolls back)
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
        return Outcome(after, changes.commit(uow))


def add_contacts(
    uow: MatchingUnitOfWork, search_id: uuid.UUID, request: ContactRequest, *, actor: str, now: datetime
) -> Outcome[PatientSearch]:
    with uow:
        search = _locked(uow, search_id)
        before = search.total_requested_contacts
        search.add_contacts(request.count, now=now)
        uow.searches.save(search)
        view = search_view(uow, search_id, now)
        changes = Changes(now, actor)
        payload = view.model_dump(mode="json")
        changes.event("search.updated", search_id, payload)
        changes.record(
            "search.contacts_added",
            "search",
            search_id,
            before={"total_requested_contacts": before},
            after={"total_requested_contacts": view.total_requested_contacts},
        )
        return Outcome(view, changes.commit(uow))


def cancel_searches_of_erased_patient(
    uow: MatchingUnitOfWork, patient_id: uuid.UUID, *, now: datetime
) -> Outcome[list[uuid.UUID]]:
    """`patient.deleted`, inside the consumer's open transaction (the caller commits): the
    patient's unfinished search is cancelled and withdrawn from open bundles (therapists of
    sent ones get a withdrawal notice). A redelivery finds nothing unfinished."""
    found = uow.searches.unfinished_of(patient_id)
    if found is None:
        return Outcome([])
    search = _locked(uow, found.id)
    previous = search.status
    changes = Changes(now, ERASURE_ACTOR)
    reason = "patient data erased on request"
    withdrawals = withdraw_pending(uow, changes, search.id, reason=reason)
    search.cancel(reason, now=now)
    uow.searches.save(search)
    view = search_view(uow, search.id, now)
    status_changed(changes, view, previous, reason=reason, withdrawals=withdrawals)
    changes.record(
        "search.cancelled",
        "search",
        search.id,
        before={"status": previous.value},
        after={"status": SearchStatus.CANCELLED.value},
        reason=reason,
    )
    return Outcome([search.id], changes.write(uow))
