"""Patient searches: one patient's search for a place, its status machine, exclusions and
contact budget, and the API's models for them.

Rules chosen where the domain is silent:
- A new search starts `active` with a contact budget of `DEFAULT_CONTACT_BUDGET` (staff may
  give another); `contact-requests` adds 1-100 contacts.
- A contact is one presentation of the patient to a therapist: a membership in any bundle that
  was not discarded (a draft reserves its contacts; discarding gives them back).
- "Unfinished" (only one per patient) means `active` or `paused`.
- Going from `placed` back to `active` (the place fell through) needs a reason and clears the
  placed therapist; the accepted membership stays in the history.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from therapy_platform.matching.domain.bundles import Withdrawal
from therapy_platform.matching.domain.models import SearchStatus
from therapy_platform.platform.errors import ConflictError
from therapy_platform.platform.preconditions import entity_tag
from therapy_platform.platform.validation import FieldRuleError

DEFAULT_CONTACT_BUDGET: Final = 10
MAX_CONTACT_BUDGET: Final = 1000

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)]

_TRANSITIONS: Final[dict[SearchStatus, frozenset[SearchStatus]]] = {
    SearchStatus.ACTIVE: frozenset({SearchStatus.PAUSED, SearchStatus.PLACED, SearchStatus.CANCELLED}),
    SearchStatus.PAUSED: frozenset({SearchStatus.ACTIVE, SearchStatus.CANCELLED}),
    SearchStatus.PLACED: frozenset({SearchStatus.ACTIVE}),
    SearchStatus.CANCELLED: frozenset(),
}
UNFINISHED: Final = frozenset({SearchStatus.ACTIVE, SearchStatus.PAUSED})


def check_search_transition(current: SearchStatus, new: SearchStatus, *, reason: str | None) -> None:
    """Raise ConflictError (409) naming both states for an illegal transition."""
    if new not in _TRANSITIONS[current]:
        raise ConflictError(
            f"a search cannot go from {current.value} to {new.value}",
            details={"current_status": current.value, "requested_status": new.value},
        )
    if current is SearchStatus.PLACED and not reason:
        raise ConflictError(
            "a placed search goes back to active only with a reason (why the place fell through)",
            details={"current_status": current.value, "requested_status": new.value},
        )


class SearchDraft(BaseModel):
    """POST /api/v2/patient-searches."""

    model_config = ConfigDict(extra="forbid")

    patient_id: uuid.UUID
    total_requested_contacts: int = Field(DEFAULT_CONTACT_BUDGET, ge=1, le=MAX_CONTACT_BUDGET)
    notes: Text | None = None


class ExclusionChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    therapist_id: uuid.UUID
    reason: Reason


class SearchPatch(BaseModel):
    """PATCH /api/v2/patient-searches/{id}: a status transition (with a reason where needed),
    exclusions to add or lift, notes. Only what is sent changes."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["active", "paused", "placed", "cancelled"] | None = None
    status_reason: Reason | None = None
    placed_therapist_id: uuid.UUID | None = None  # when staff record a placement by hand
    add_exclusions: list[ExclusionChange] = Field(default_factory=list, max_length=100)
    remove_exclusions: list[uuid.UUID] = Field(default_factory=list, max_length=100)
    notes: Text | None = None

    @model_validator(mode="after")
    def _something_to_do(self) -> Self:
        if not self.model_fields_set:
            raise FieldRuleError(
                "nothing_to_change", "mindestens eines von status, add_exclusions, remove_exclusions, notes"
            )
        if self.placed_therapist_id is not None and self.status != "placed":
            raise FieldRuleError("inconsistent", "placed_therapist_id nur mit status 'placed'")
        if self.status == "placed" and self.placed_therapist_id is None:
            raise FieldRuleError("inconsistent", "status 'placed' braucht placed_therapist_id")
        both = {e.therapist_id for e in self.add_exclusions} & set(self.remove_exclusions)
        if both:
            raise FieldRuleError(
                "inconsistent",
                "eine Therapeutin kann nicht zugleich ausgeschlossen und wieder zugelassen werden: "
                + ", ".join(map(str, both)),
            )
        return self


class ContactRequest(BaseModel):
    """POST /api/v2/patient-searches/{id}/contact-requests: add to the contact budget."""

    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=1, le=100)


class Exclusion(BaseModel):
    therapist_id: uuid.UUID
    reason: str
    excluded_at: datetime
    excluded_by: str


class SearchBundleOutcome(BaseModel):
    """One bundle the search was in, with the member's outcome (search detail)."""

    bundle_id: uuid.UUID
    reference: str
    therapist_id: uuid.UUID
    bundle_status: str
    member_status: str
    outcome: str | None = None
    created_at: datetime
    sent_at: datetime | None = None
    responded_at: datetime | None = None


class PatientSearch(BaseModel):
    """A search as the API returns it and as `search.*` events carry it."""

    id: uuid.UUID
    patient_id: uuid.UUID
    status: SearchStatus
    created_at: datetime
    updated_at: datetime
    total_requested_contacts: int
    contacts_used: int = 0
    open_bundles: int = 0
    placed_therapist_id: uuid.UUID | None = None
    placed_at: datetime | None = None
    status_reason: str | None = None
    notes: str | None = None
    exclusions: list[Exclusion] = Field(default_factory=list)
    waiting_days: int = 0


# What a search's entity tag covers: everything but the days waited, which grow by themselves.
SEARCH_TAG_FIELDS: Final = frozenset(PatientSearch.model_fields) - {"waiting_days"}


def search_tag(search: PatientSearch) -> str:
    """The search's ETag (the same for the detail GET answers and the search PATCH answers)."""
    return entity_tag(search, include=SEARCH_TAG_FIELDS)


class PatientSearchDetail(PatientSearch):
    bundles: list[SearchBundleOutcome] = Field(default_factory=list)


class SearchStatusChanged(BaseModel):
    """Payload of `search.status_changed`: the patient service follows it with the patient's
    status (searching / in_therapy / ...)."""

    id: uuid.UUID
    patient_id: uuid.UUID
    previous_status: SearchStatus | None
    status: SearchStatus
    placed_therapist_id: uuid.UUID | None = None
    reason: str | None = None
    changed_at: datetime
    # Pending memberships withdrawn by this change; therapists of sent bundles among them get
    # a short withdrawal notice (the communication service reads them from here).
    withdrawals: list[Withdrawal] = Field(default_factory=list)


SearchSortKey = Literal["created_at", "-created_at", "updated_at", "-updated_at"]


class SearchQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: SearchStatus | None = None
    patient_id: uuid.UUID | None = None
    postcode_prefix: Annotated[str, StringConstraints(pattern=r"^\d{1,5}$")] | None = None
    waiting_longer_than_days: int | None = Field(None, ge=0, le=36500)
    page: int = Field(1, ge=1)
    limit: int = Field(50, ge=1, le=200)
    sort: SearchSortKey = "created_at"

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


def search_event_payload(search: PatientSearch) -> dict[str, Any]:
    return search.model_dump(mode="json")
