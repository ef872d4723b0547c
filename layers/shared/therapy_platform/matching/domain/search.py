"""The patient search aggregate: one patient's search for a place with its exclusions, and
the rules that change it (status machine, placement, cancellation, contact budget, exclusions,
who wins when several therapists accept). `searches.PatientSearch` is its view for the API
and the `search.*` events; the repositories load and save this one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from therapy_platform.matching.domain.models import SearchStatus
from therapy_platform.matching.domain.searches import (
    UNFINISHED,
    Exclusion,
    PatientSearch,
    SearchDraft,
    SearchPatch,
    check_search_transition,
)
from therapy_platform.platform.errors import ConflictError


@dataclass(frozen=True)
class Withdraw:
    """What a change asks of the search's pending memberships in open bundles."""

    reason: str
    drafts_only: bool = False  # a paused patient stays in bundles already sent
    reported: bool = True  # listed in `search.status_changed` (therapists get a notice)


class Acceptance(StrEnum):
    """What a therapist's acceptance does to the search (the earliest answer wins)."""

    PLACE = "place"  # the search was still looking: placed with this therapist
    OVERRIDE = "override"  # placed already, but this answer came earlier: it wins instead
    CONFLICT = "conflict"  # placed already with an earlier answer: this one is a conflict


@dataclass
class Search:
    id: uuid.UUID
    patient_id: uuid.UUID
    status: SearchStatus
    created_at: datetime
    updated_at: datetime
    total_requested_contacts: int
    placed_therapist_id: uuid.UUID | None = None
    placed_at: datetime | None = None
    status_reason: str | None = None
    notes: str | None = None
    exclusions: dict[uuid.UUID, Exclusion] = field(default_factory=dict)  # by therapist id

    @classmethod
    def start(cls, draft: SearchDraft, *, now: datetime) -> Search:
        return cls(
            id=uuid.uuid4(),
            patient_id=draft.patient_id,
            status=SearchStatus.ACTIVE,
            created_at=now,
            updated_at=now,
            total_requested_contacts=draft.total_requested_contacts,
            notes=draft.notes,
        )

    @property
    def unfinished(self) -> bool:
        return self.status in UNFINISHED

    # ------------------------------------------------------------------ staff changes

    def apply_patch(self, patch: SearchPatch, *, actor: str, now: datetime) -> Withdraw | None:
        """PATCH: a status transition, exclusions to add or lift, notes. Returns what must happen
        to the search's pending memberships (None: nothing)."""
        withdraw: Withdraw | None = None
        touched = False
        new_status = SearchStatus(patch.status) if patch.status is not None else None
        current = self.status
        if new_status is not None and new_status != current:
            check_search_transition(current, new_status, reason=patch.status_reason)
            self.status = new_status
            self.status_reason = patch.status_reason
            touched = True
            if new_status is SearchStatus.PLACED:
                self.placed_therapist_id = patch.placed_therapist_id
                self.placed_at = now
                withdraw = Withdraw("placed (recorded by staff)")
            elif new_status is SearchStatus.CANCELLED:
                withdraw = Withdraw("search cancelled")
            elif new_status is SearchStatus.PAUSED:
                withdraw = Withdraw("search paused", drafts_only=True, reported=False)
            elif current is SearchStatus.PLACED:
                self.placed_therapist_id = None
                self.placed_at = None
        elif new_status is not None and patch.status_reason is not None:
            self.status_reason = patch.status_reason
            touched = True
        if "notes" in patch.model_fields_set:
            self.notes = patch.notes
            touched = True
        for change in patch.add_exclusions:
            self.exclude(
                Exclusion(
                    therapist_id=change.therapist_id, reason=change.reason, excluded_at=now, excluded_by=actor
                )
            )
        for therapist_id in patch.remove_exclusions:
            self.readmit(therapist_id)
        if touched or patch.add_exclusions or patch.remove_exclusions:
            self.updated_at = now
        return withdraw

    def exclude(self, exclusion: Exclusion) -> bool:
        """Exclude a therapist from this search; False when they were excluded already (the
        first exclusion and its reason stay)."""
        if exclusion.therapist_id in self.exclusions:
            return False
        self.exclusions[exclusion.therapist_id] = exclusion
        return True

    def readmit(self, therapist_id: uuid.UUID) -> None:
        if self.exclusions.pop(therapist_id, None) is None:
            raise ConflictError(
                f"therapist {therapist_id} is not excluded from search {self.id}",
                details={"therapist_id": str(therapist_id)},
            )

    def add_contacts(self, count: int, *, now: datetime) -> None:
        if self.status not in UNFINISHED:
            raise ConflictError(
                f"contacts are added only to an active or paused search; this one is {self.status.value}",
                details={"current_status": self.status.value},
            )
        self.total_requested_contacts += count
        self.updated_at = now

    def cancel(self, reason: str, *, now: datetime) -> None:
        """Cancelled by the system (the patient was erased): no status machine check, the
        search is unfinished by construction."""
        self.status = SearchStatus.CANCELLED
        self.status_reason = reason
        self.updated_at = now

    # ------------------------------------------------------------------ responses

    def acceptance(self, responded_at: datetime) -> Acceptance:
        if self.status in UNFINISHED:
            return Acceptance.PLACE
        if (
            self.status is SearchStatus.PLACED
            and self.placed_at is not None
            and responded_at < self.placed_at
        ):
            return Acceptance.OVERRIDE
        return Acceptance.CONFLICT

    def place(self, therapist_id: uuid.UUID, *, at: datetime, reason: str, now: datetime) -> None:
        self.status = SearchStatus.PLACED
        self.placed_therapist_id = therapist_id
        self.placed_at = at
        self.status_reason = reason
        self.updated_at = now

    # ------------------------------------------------------------------ view

    def view(self, *, contacts_used: int, open_bundles: int, now: datetime) -> PatientSearch:
        """The API's and the events' shape. Exclusions oldest first (ties by therapist id)."""
        return PatientSearch(
            id=self.id,
            patient_id=self.patient_id,
            status=self.status,
            created_at=self.created_at,
            updated_at=self.updated_at,
            total_requested_contacts=self.total_requested_contacts,
            contacts_used=contacts_used,
            open_bundles=open_bundles,
            placed_therapist_id=self.placed_therapist_id,
            placed_at=self.placed_at,
            status_reason=self.status_reason,
            notes=self.notes,
            exclusions=sorted(self.exclusions.values(), key=lambda e: (e.excluded_at, str(e.therapist_id))),
            waiting_days=max(0, (now - self.created_at).days),
        )
