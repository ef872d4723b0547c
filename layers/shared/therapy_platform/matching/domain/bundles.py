"""Bundles and their members as the API and the events show them, the bundle status machine,
and the data-minimised patient summary a therapist may see.

Rules chosen where the domain is silent:
- A bundle's reference is "B<number>"; a member's reference is "B<number>-<position>" (what a
  therapist quotes on the phone; never a name).
- `expired` is final, as the domain's state machine says: a late answer to an expired bundle
  is recorded by staff on the search (PATCH status placed / exclusions), not as a response.
- "Needs follow-up": a sent bundle unanswered for `follow_up_after_days` (the reminder is due or
  done), or an answered bundle with a conflict member.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from therapy_platform.matching.domain.models import Reason, SoftFilter
from therapy_platform.matching.domain.responses import MemberOutcome, ResponseType
from therapy_platform.platform.errors import ConflictError
from therapy_platform.platform.validation import FieldRuleError

Notes = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
PostcodePrefix = Annotated[str, StringConstraints(pattern=r"^\d{1,5}$")]


class BundleStatus(StrEnum):
    DRAFT = "draft"
    SENT = "sent"
    ANSWERED = "answered"
    EXPIRED = "expired"
    DISCARDED = "discarded"


OPEN_BUNDLE_STATUSES: Final = frozenset({BundleStatus.DRAFT, BundleStatus.SENT})

_BUNDLE_TRANSITIONS: Final[dict[BundleStatus, frozenset[BundleStatus]]] = {
    BundleStatus.DRAFT: frozenset({BundleStatus.SENT, BundleStatus.DISCARDED}),
    BundleStatus.SENT: frozenset({BundleStatus.ANSWERED, BundleStatus.EXPIRED}),
    BundleStatus.ANSWERED: frozenset(),
    BundleStatus.EXPIRED: frozenset(),
    BundleStatus.DISCARDED: frozenset(),
}


def check_bundle_transition(current: BundleStatus, new: BundleStatus) -> None:
    if new not in _BUNDLE_TRANSITIONS[current]:
        raise ConflictError(
            f"a bundle cannot go from {current.value} to {new.value}",
            details={"current_status": current.value, "requested_status": new.value},
        )


class MemberStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    NO_RESPONSE = "no_response"
    WITHDRAWN = "withdrawn"
    CONFLICT = "conflict"


class BundleKind(StrEnum):
    ROUND = "round"  # planned by a round (scheduled or on demand)
    STAFF = "staff"  # built by staff for a chosen therapist
    FOLLOW_UP = "follow_up"  # offers a place freed by a conflict to the next waiting patient


class Channel(StrEnum):
    EMAIL = "email"
    PHONE = "phone"


def bundle_reference(number: int) -> str:
    return f"B{number}"


def member_reference(number: int, position: int) -> str:
    return f"B{number}-{position}"


def distance_band(km: float | None) -> str:
    """The coarse distance a therapist is told instead of an address."""
    if km is None:
        return "unknown"
    if km <= 5:
        return "up to 5 km"
    if km <= 10:
        return "5-10 km"
    if km <= 25:
        return "10-25 km"
    return "more than 25 km"


class PatientSummary(BaseModel):
    """What a therapist may learn about a listed patient: no name, no address, no contact."""

    reference: str
    age: int | None = None
    gender: str
    symptoms: list[str]
    insurance_type: str | None = None
    previous_therapy: bool = False
    open_to_group_therapy: bool = False
    group_only: bool = False
    availability: dict[str, list[str]] = Field(default_factory=dict)
    distance_band: str
    within_reach: bool | None = None  # within the patient's own km limit (None: unknown)


class BundleMember(BaseModel):
    id: uuid.UUID
    search_id: uuid.UUID
    patient_id: uuid.UUID
    position: int
    reference: str
    status: MemberStatus
    outcome: MemberOutcome | None = None
    responded_at: datetime | None = None
    notes: str | None = None
    patient: PatientSummary | None = None  # in the detail view and in bundle.sent


class Bundle(BaseModel):
    id: uuid.UUID
    number: int
    reference: str
    therapist_id: uuid.UUID
    practice_key: str
    kind: BundleKind
    status: BundleStatus
    round_id: uuid.UUID | None = None
    created_at: datetime
    created_by: str
    updated_at: datetime
    sent_at: datetime | None = None
    channel: Channel | None = None
    reminder_sent_at: datetime | None = None
    answered_at: datetime | None = None
    expired_at: datetime | None = None
    discarded_at: datetime | None = None
    discard_reason: str | None = None
    response_type: ResponseType | None = None
    accepted_count: int | None = None
    rejected_count: int | None = None
    no_response_count: int | None = None
    size: int
    applied_filters: list[SoftFilter] = Field(default_factory=list)
    skipped_filters: list[SoftFilter] = Field(default_factory=list)
    notes: str | None = None
    needs_follow_up: bool = False
    members: list[BundleMember] = Field(default_factory=list)


class BundleTherapist(BaseModel):
    """The addressee of a bundle as `bundle.sent` carries it: the id and how it can be reached
    (the communication service looks the contact up in the therapist service)."""

    id: uuid.UUID
    reachable_by_email: bool = False
    reachable_by_phone: bool = False
    phone_windows: dict[str, list[str]] = Field(default_factory=dict)
    listed_in_directory: bool | None = None  # the contact data's source (GDPR Art. 14)


class BundleSent(Bundle):
    """Payload of `bundle.sent`: the bundle with its members' summaries and the addressee."""

    therapist: BundleTherapist


# ------------------------------------------------------------------ requests


class RoundRequest(BaseModel):
    """POST /api/v2/bundles/create."""

    model_config = ConfigDict(extra="forbid")

    dry_run: bool = False
    therapist_ids: list[uuid.UUID] | None = Field(None, min_length=1, max_length=1000)
    postcode_prefix: PostcodePrefix | None = None
    send_immediately: bool = False

    @model_validator(mode="after")
    def _dry_runs_send_nothing(self) -> Self:
        if self.dry_run and self.send_immediately:
            raise FieldRuleError("inconsistent", "dry_run und send_immediately schließen einander aus")
        return self


class StaffBundleRequest(BaseModel):
    """POST /api/v2/therapists/{id}/bundles."""

    model_config = ConfigDict(extra="forbid")

    size: int = Field(6, ge=1, le=6)
    search_ids: list[uuid.UUID] | None = Field(None, min_length=1, max_length=6)
    dry_run: bool = False
    send_immediately: bool = False
    notes: Notes | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.dry_run and self.send_immediately:
            raise FieldRuleError("inconsistent", "dry_run und send_immediately schließen einander aus")
        if self.search_ids is not None and len(set(self.search_ids)) != len(self.search_ids):
            raise FieldRuleError("duplicate", "search_ids nennt eine Suche doppelt")
        return self


class MemberResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    search_id: uuid.UUID
    outcome: MemberOutcome
    notes: Notes | None = None


class BundleResponseRequest(BaseModel):
    """PUT /api/v2/bundles/{id}/response: an outcome for exactly every member."""

    model_config = ConfigDict(extra="forbid")

    members: list[MemberResponse] = Field(min_length=1, max_length=6)
    responded_at: datetime | None = None  # when the therapist answered (default: now)
    notes: Notes | None = None

    @model_validator(mode="after")
    def _each_member_once(self) -> Self:
        counts = Counter(m.search_id for m in self.members)
        twice = sorted(str(search_id) for search_id, n in counts.items() if n > 1)
        if twice:
            raise FieldRuleError("duplicate", "members nennt eine Suche mehrfach: " + ", ".join(twice))
        if self.responded_at is not None and self.responded_at.tzinfo is None:
            raise FieldRuleError(
                "timezone_missing", "responded_at braucht eine Zeitzone (z. B. 2026-11-20T10:15:00+01:00)"
            )
        return self

    def outcomes(self) -> dict[uuid.UUID, MemberOutcome]:
        return {m.search_id: m.outcome for m in self.members}


class SendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notes: Notes | None = None


# ------------------------------------------------------------------ results


class ProposedMember(BaseModel):
    search_id: uuid.UUID
    patient_id: uuid.UUID
    position: int
    # With the patient's minutes limit in force: "≈ 24 min by public transport (limit 30)"
    reach: str | None = None


class ProposedBundle(BaseModel):
    therapist_id: uuid.UUID
    practice_key: str
    members: list[ProposedMember]
    applied_filters: list[SoftFilter]
    skipped_filters: list[SoftFilter]
    bundle_id: uuid.UUID | None = None  # set when written
    reference: str | None = None
    status: BundleStatus | None = None


class LeftOutTherapist(BaseModel):
    therapist_id: uuid.UUID
    reason: Reason


class LeftOutSearch(BaseModel):
    search_id: uuid.UUID
    reason: Reason


class PairReason(BaseModel):
    therapist_id: uuid.UUID
    search_id: uuid.UUID
    reason: Reason
    soft_filter: SoftFilter | None = None
    # With the patient's minutes limit in force: "≈ 42 min by public transport (limit 30)"
    reach: str | None = None


class RoundResult(BaseModel):
    round_id: uuid.UUID | None = None  # None for a dry run
    run_date: date
    dry_run: bool
    bundles: list[ProposedBundle]
    therapists_left_out: list[LeftOutTherapist]
    searches_left_out: list[LeftOutSearch]
    # Dry runs limited to therapists or a region: why each candidate was left out (at most
    # MAX_EXPLAINED_PAIRS; `pairs_truncated` says when more were left out than listed).
    pairs: list[PairReason] = Field(default_factory=list)
    pairs_explained: bool = False
    pairs_truncated: bool = False
    therapists_considered: int
    searches_considered: int
    skipped_by_concurrency: int = 0
    # A scheduled round: the postcode regions whose `automatic_rounds` flag was off (their
    # therapists got no inquiry). docs/feature-flags.md
    regions_paused: list[str] = Field(default_factory=list)
    # How many therapists' bundles used the learned soft filter (`preference_aware_ordering`
    # on); a dry run's `pairs` name the searches it left out (`not_chosen_learned_preferences`).
    learned_preferences_therapists: int = 0


class StaffBundleResult(BaseModel):
    dry_run: bool
    bundle: ProposedBundle | None
    therapist_reason: Reason | None = None
    pairs: list[PairReason] = Field(default_factory=list)


class Withdrawal(BaseModel):
    """A pending membership withdrawn because the patient was placed elsewhere."""

    bundle_id: uuid.UUID
    bundle_reference: str
    bundle_status: BundleStatus
    therapist_id: uuid.UUID
    search_id: uuid.UUID
    member_reference: str


class Placement(BaseModel):
    search_id: uuid.UUID
    patient_id: uuid.UUID
    therapist_id: uuid.UUID
    placed_at: datetime


class Conflict(BaseModel):
    search_id: uuid.UUID
    patient_id: uuid.UUID
    therapist_id: uuid.UUID  # who accepted too late
    placed_with_therapist_id: uuid.UUID
    alert_id: uuid.UUID
    follow_up_bundle_id: uuid.UUID | None = None


class ResponseRecorded(BaseModel):
    """The answer of PUT .../response and the payload of `bundle.response_received`."""

    bundle: Bundle
    placements: list[Placement] = Field(default_factory=list)
    conflicts: list[Conflict] = Field(default_factory=list)
    withdrawals: list[Withdrawal] = Field(default_factory=list)
    exclusions_added: list[uuid.UUID] = Field(default_factory=list)  # search ids
    next_contact_allowed_on: date
    repeated: bool = False  # an identical repeat of the recorded response


class CoolingPeriodStarted(BaseModel):
    """Payload of `cooling.period_started`: the therapist service stores the date."""

    therapist_id: uuid.UUID
    next_contact_allowed_on: date
    bundle_id: uuid.UUID
    cause: Literal["response", "expiry"]
    started_at: datetime


class StaffAlert(BaseModel):
    id: uuid.UUID
    kind: str
    created_at: datetime
    bundle_id: uuid.UUID | None = None
    search_id: uuid.UUID | None = None
    therapist_id: uuid.UUID | None = None
    message: str
    resolved_at: datetime | None = None


BundleSortKey = Literal["created_at", "-created_at", "sent_at", "-sent_at"]


class BundleQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: BundleStatus | None = None
    therapist_id: uuid.UUID | None = None
    postcode_prefix: PostcodePrefix | None = None
    needs_follow_up: bool | None = None
    search_id: uuid.UUID | None = None
    page: int = Field(1, ge=1)
    limit: int = Field(50, ge=1, le=200)
    sort: BundleSortKey = "-created_at"

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


class EligibleTherapist(BaseModel):
    """One row of the staff selection list (one per practice: the owner). Names and contact data
    are the therapist service's (GET /api/v2/therapists/{id}); matching keeps none."""

    therapist_id: uuid.UUID
    postcode: str
    has_email: bool
    potentially_available: bool
    practice_key: str
    practice_size: int
