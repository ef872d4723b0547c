"""Payloads the matching service publishes about bundles (`bundle.*`, `cooling.period_started`;
Kafka topic `bundle-events`).

A bundle is one inquiry to one therapist listing up to six waiting patients. Produced by
`matching/use_cases/bundles.py` (rounds, staff bundles, sending, responses, expiry). Consumed
today by
- the communication service (`communication/use_cases/events.py`): `bundle.sent` (inquiry email
  or phone-call task), `bundle.response_received` (conflict alerts), `bundle.expired`;
- the therapist service (`functions/therapist_matching_events`): `cooling.period_started`;
- anyone on Kafka, through the bridge (`bundle.created` has no other consumer today).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from therapy_platform.contracts.base import EventPayload

# The practice a bundle went to: the therapist service's hashed key (contracts/practices.py) or,
# for a therapist without a shared address, "therapist:" + the therapist's id.
BundlePracticeKey = Annotated[
    str,
    StringConstraints(
        pattern=r"^(p:[0-9a-f]{32}|therapist:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
    ),
]


class BundleStatus(StrEnum):
    DRAFT = "draft"
    SENT = "sent"
    ANSWERED = "answered"
    EXPIRED = "expired"
    DISCARDED = "discarded"


class BundleKind(StrEnum):
    """Who built the bundle: a round, staff for a chosen therapist, or a follow-up that offers
    a place freed by a conflict to the next waiting patient."""

    ROUND = "round"
    STAFF = "staff"
    FOLLOW_UP = "follow_up"


class Channel(StrEnum):
    """How a sent bundle reaches the therapist."""

    EMAIL = "email"
    PHONE = "phone"


class MemberStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    NO_RESPONSE = "no_response"
    WITHDRAWN = "withdrawn"
    CONFLICT = "conflict"


class MemberOutcome(StrEnum):
    """The therapist's answer for one listed patient."""

    ACCEPTED = "accepted"
    REJECTED_CAPACITY = "rejected_capacity"
    REJECTED_UNSUITABLE = "rejected_unsuitable"
    REJECTED_OTHER = "rejected_other"
    NO_RESPONSE = "no_response"


class ResponseType(StrEnum):
    FULL_ACCEPTANCE = "full_acceptance"
    PARTIAL_ACCEPTANCE = "partial_acceptance"
    FULL_REJECTION = "full_rejection"
    NO_RESPONSE = "no_response"


class SoftFilter(StrEnum):
    """Soft preferences, most specific first: the order progressive filtering tries them."""

    AVAILABILITY = "availability"
    SYMPTOM_PREFERENCES = "symptom_preferences"
    AGE_BAND = "age_band"
    GROUP_PREFERENCE = "group_preference"
    LEARNED_PREFERENCES = "learned_preferences"


class PatientSummary(EventPayload):
    """What a therapist may learn about a listed patient: no name, no address, no contact, no
    insurer. Only in `bundle.sent` (read by the communication service for the inquiry)."""

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
    within_reach: bool | None = Field(
        default=None, description="Within the patient's own distance limit (None: unknown)"
    )


class BundleMember(EventPayload):
    """One listed patient search; `patient` is set only in `bundle.sent`."""

    id: uuid.UUID
    search_id: uuid.UUID
    patient_id: uuid.UUID
    position: int
    reference: str
    status: MemberStatus
    outcome: MemberOutcome | None = None
    responded_at: datetime | None = None
    patient: PatientSummary | None = None


class BundleSnapshot(EventPayload):
    """Payload of `bundle.created` and `bundle.expired` (and the `bundle` of
    `bundle.response_received`): the bundle with its members after the change. Produced by the
    matching service; `bundle.expired` is consumed by the communication service (no reminder,
    scheduled calls cancelled), both by Kafka."""

    id: uuid.UUID
    number: int
    reference: str
    therapist_id: uuid.UUID
    practice_key: BundlePracticeKey
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
    response_type: ResponseType | None = None
    accepted_count: int | None = None
    rejected_count: int | None = None
    no_response_count: int | None = None
    size: int
    applied_filters: list[SoftFilter] = Field(default_factory=list)
    skipped_filters: list[SoftFilter] = Field(default_factory=list)
    needs_follow_up: bool = False
    members: list[BundleMember] = Field(default_factory=list)


class BundleTherapist(EventPayload):
    """The addressee of a bundle as `bundle.sent` carries it: an id and how it can be reached,
    no name and no contact data (the communication service looks those up in the therapist
    service when it writes or schedules the call, `contracts/contacts.py`)."""

    id: uuid.UUID
    reachable_by_email: bool = False
    reachable_by_phone: bool = False
    phone_windows: dict[str, list[str]] = Field(default_factory=dict)
    listed_in_directory: bool | None = Field(
        default=None,
        description="Contact data from the public 116117 directory (else the therapist's own registration); "
        "the inquiry names the source (GDPR Art. 14). None: unknown",
    )


class BundleSent(BundleSnapshot):
    """Payload of `bundle.sent`: the bundle with its members' patient summaries and the
    addressee by id. Produced by the matching service; consumed by the communication service (inquiry
    email, or a phone-call task when the therapist has no email) and Kafka."""

    therapist: BundleTherapist


class Withdrawal(EventPayload):
    """A pending membership withdrawn from an open bundle because its search was placed,
    cancelled or its patient erased. In `search.status_changed` and `bundle.response_received`;
    the communication service tells therapists of sent bundles."""

    bundle_id: uuid.UUID
    bundle_reference: str
    bundle_status: BundleStatus
    therapist_id: uuid.UUID
    search_id: uuid.UUID
    member_reference: str


class Placement(EventPayload):
    """A search placed by an acceptance in this response."""

    search_id: uuid.UUID
    patient_id: uuid.UUID
    therapist_id: uuid.UUID
    placed_at: datetime


class Conflict(EventPayload):
    """An acceptance for a search that was already placed elsewhere (a staff alert was raised;
    `follow_up_bundle_id`: the freed place offered to the next waiting patient)."""

    search_id: uuid.UUID
    patient_id: uuid.UUID
    therapist_id: uuid.UUID  # who accepted too late
    placed_with_therapist_id: uuid.UUID
    alert_id: uuid.UUID
    follow_up_bundle_id: uuid.UUID | None = None


class BundleResponseReceived(EventPayload):
    """Payload of `bundle.response_received`: the answered bundle and what the answer caused.
    Produced by the matching service; consumed by the communication service (bundle answered,
    staff alert per conflict) and Kafka."""

    bundle: BundleSnapshot
    placements: list[Placement] = Field(default_factory=list)
    conflicts: list[Conflict] = Field(default_factory=list)
    withdrawals: list[Withdrawal] = Field(default_factory=list)
    exclusions_added: list[uuid.UUID] = Field(
        default_factory=list, description="Searches that now exclude this therapist (rejected as unsuitable)"
    )
    next_contact_allowed_on: date
    repeated: bool = False


class CoolingPeriodStarted(EventPayload):
    """Payload of `cooling.period_started` (after a response or an expiry): no contact with the
    therapist before `next_contact_allowed_on`. Produced by the matching service; consumed by
    the therapist service (`functions/therapist_matching_events` stores the date) and Kafka."""

    therapist_id: uuid.UUID
    next_contact_allowed_on: date
    bundle_id: uuid.UUID
    cause: Literal["response", "expiry"]
    started_at: datetime
