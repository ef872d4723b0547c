"""What the communication service keeps about bundles and people, from other services' events,
so that it can write to them without reading other schemas.

- `TrackedBundle`: a bundle as `bundle.sent` presented it (the members' data-minimised
  summaries) with the addressee as the therapist service named them when it was sent
  (`BundleAddressee`, looked up then: `bundle.sent` carries only the therapist's id), what
  became of it (answered, expired, members withdrawn) and whether its one reminder went out.
  A bundle first heard of through a later event (a response, an expiry, a withdrawal
  delivered before `bundle.sent`) is kept as a *placeholder* (`sent_at` None); `bundle.sent`
  then fills it in and sends nothing for a bundle that is already closed, and never lists a
  member already withdrawn.
- Contacts (`PatientContact`, email_content.TherapistContact): the few fields a letter needs,
  looked up in the patient and therapist services when needed (ports.ContactDirectory,
  contracts/contacts.py); none are kept from events.

Other services' events are read through their contract models (`therapy_platform.contracts`);
what is kept of them is this service's own models, so a contract growing a field changes
nothing stored here.

Reminder rule (`TrackedBundle.reminder_due`): sent at least `reminder_after_days` ago, neither
answered nor expired, no reminder yet, and at least one member not withdrawn.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field

from therapy_platform.communication.domain.email_content import (
    BundlePatient,
    Person,
    TherapistContact,
    bundle_patient_from_summary,
)
from therapy_platform.communication.domain.emails import (
    BundleReference,
    EmailKind,
    EmailStatus,
    RecipientType,
)
from therapy_platform.communication.domain.phone_calls import (
    PhoneCallOutcome,
    PhoneCallPurpose,
    PhoneCallStatus,
    PhoneCallTask,
)
from therapy_platform.communication.domain.replies import InboundReply
from therapy_platform.contracts.bundles import BundleSent, MemberStatus
from therapy_platform.contracts.therapy import Gender
from therapy_platform.platform.clock import platform_today
from therapy_platform.platform.rest.pagination import PageLinks


class FollowUpPolicy(BaseModel):
    """Days that shape the letters and the reminder (settings: REMINDER_AFTER_DAYS, ...)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reminder_after_days: int = Field(default=7, ge=1, le=60)
    expire_after_days: int = Field(default=14, ge=2, le=120)
    cooling_days: int = Field(default=28, ge=0, le=365)
    contact_within_days: int = Field(default=7, ge=1, le=60)


def search_reference(search_id: uuid.UUID) -> str:
    """What a patient quotes: "S-" and the first 8 hex digits of the search id ("S-1A2B3C4D")."""
    return f"S-{search_id.hex[:8].upper()}"


class Addressable(Protocol):
    @property
    def gender(self) -> str: ...
    @property
    def salutation(self) -> str | None: ...
    @property
    def title(self) -> str | None: ...
    @property
    def first_name(self) -> str | None: ...
    @property
    def last_name(self) -> str: ...


def person_of(addressee: Addressable) -> Person:
    """The addressee of a letter; records without a first name (directory imports) are fine."""
    return Person(
        gender=Gender(addressee.gender) if addressee.gender in set(Gender) else Gender.UNSPECIFIED,
        salutation=(addressee.salutation or "").strip() or None,
        title=(addressee.title or "").strip() or None,
        first_name=(addressee.first_name or "").strip() or None,
        last_name=addressee.last_name.strip() or "Praxis",
    )


class Channel(StrEnum):
    # How the bundle reached its therapist. No docstring: the API documents this enum as the
    # `Channel` component the matching API documents too, and the two must be equal.
    EMAIL = "email"
    PHONE = "phone"


class BundleAddressee(BaseModel):
    """The therapist a bundle went to, as the therapist service named them when `bundle.sent`
    arrived (stored with the bundle: what was written to whom)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: uuid.UUID
    salutation: str | None = None
    gender: str
    title: str | None = None
    first_name: str
    last_name: str
    email: str | None = None
    phone: str | None = None
    phone_windows: dict[str, list[str]] = Field(default_factory=dict)
    listed_in_directory: bool | None = None  # where the contact data came from (GDPR Art. 14)

    @classmethod
    def of(cls, therapist_id: uuid.UUID, contact: TherapistContact, sent: BundleSent) -> BundleAddressee:
        """The addressee from the therapist service's card; the phone windows as matching
        planned with them (`bundle.sent`) when the card has none."""
        return cls(
            id=therapist_id,
            salutation=contact.salutation,
            gender=contact.gender.value,
            title=contact.title,
            first_name=contact.first_name or "",
            last_name=contact.last_name,
            email=contact.email,
            phone=contact.phone,
            phone_windows=contact.model_dump(mode="json")["phone_windows"] or sent.therapist.phone_windows,
        )


class TrackedMember(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    search_id: uuid.UUID
    reference: str
    patient: BundlePatient


class TrackedBundle(BaseModel):
    """The communication service's record of a bundle (table `sent_bundles`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: uuid.UUID
    reference: BundleReference
    therapist_id: uuid.UUID
    therapist: BundleAddressee | None = None
    channel: Channel | None = None
    members: list[TrackedMember] = Field(default_factory=list)
    withdrawn_references: list[str] = Field(default_factory=list)
    sent_at: datetime | None = None
    answered_at: datetime | None = None
    expired_at: datetime | None = None
    reminder_sent_at: datetime | None = None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def placeholder(
        cls, bundle_id: uuid.UUID, reference: str, therapist_id: uuid.UUID, *, now: datetime
    ) -> Self:
        return cls(
            id=bundle_id, reference=reference, therapist_id=therapist_id, created_at=now, updated_at=now
        )

    @property
    def is_sent(self) -> bool:
        return self.sent_at is not None

    @property
    def is_closed(self) -> bool:
        return self.answered_at is not None or self.expired_at is not None

    @property
    def remaining_members(self) -> list[TrackedMember]:
        withdrawn = set(self.withdrawn_references)
        return [member for member in self.members if member.reference not in withdrawn]

    @property
    def therapist_email(self) -> str | None:
        return self.therapist.email if self.therapist and self.therapist.email else None

    @property
    def writes_by_email(self) -> bool:
        """Email when the bundle went out by email and the addressee has an address; else phone."""
        return self.channel is Channel.EMAIL and self.therapist_email is not None

    def with_sent(self, sent: BundleSent, addressee: BundleAddressee) -> Self:
        """Filled in from `bundle.sent` (channel, the pending members' summaries) and the
        addressee looked up for it."""
        members = [
            TrackedMember(
                search_id=member.search_id,
                reference=member.reference,
                patient=bundle_patient_from_summary(member.patient.model_dump()),
            )
            for member in sorted(sent.members, key=lambda m: m.position)
            if member.status is MemberStatus.PENDING and member.patient is not None
        ]
        return self.model_copy(
            update={
                "reference": sent.reference,
                "therapist_id": sent.therapist_id,
                "therapist": addressee,
                "channel": Channel(sent.channel.value)
                if sent.channel
                else (Channel.EMAIL if sent.therapist.reachable_by_email else Channel.PHONE),
                "members": members,
                "sent_at": sent.sent_at or sent.updated_at,
                "updated_at": max(self.updated_at, sent.updated_at),
            }
        )

    def with_withdrawn(self, references: list[str], now: datetime) -> tuple[Self, list[str]]:
        """The bundle with these members withdrawn, and which of them are new."""
        new = [ref for ref in dict.fromkeys(references) if ref not in self.withdrawn_references]
        if not new:
            return self, []
        updated = self.model_copy(
            update={"withdrawn_references": [*self.withdrawn_references, *new], "updated_at": now}
        )
        return updated, new

    def reminder_due(self, now: datetime, policy: FollowUpPolicy) -> bool:
        return (
            self.sent_at is not None
            and self.sent_at <= now - timedelta(days=policy.reminder_after_days)
            and not self.is_closed
            and self.reminder_sent_at is None
            and bool(self.remaining_members)
        )

    def sent_on(self) -> date:
        assert self.sent_at is not None
        return platform_today(self.sent_at)

    def expires_on(self, policy: FollowUpPolicy) -> date:
        return self.sent_on() + timedelta(days=policy.expire_after_days)


# --------------------------------------------------------------------------- contacts


class PatientContact(BaseModel):
    """What letters to a patient need (nothing about health)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: uuid.UUID
    salutation: str | None = None
    gender: Gender = Gender.UNSPECIFIED
    first_name: str | None = None
    last_name: str
    email: str | None = None
    max_travel_km: int = Field(default=25, ge=1, le=500)
    location_flagged: bool = False  # as the patient service holds the record now

    @property
    def person(self) -> Person:
        return Person(
            gender=self.gender,
            salutation=self.salutation or None,
            first_name=self.first_name or None,
            last_name=self.last_name,
        )


class PatientContactState(BaseModel):
    """What the service knows of a patient: never heard of, erased, or the contact."""

    model_config = ConfigDict(frozen=True)

    known: bool
    contact: PatientContact | None = None  # None with known=True: erased

    @property
    def erased(self) -> bool:
        return self.known and self.contact is None


# --------------------------------------------------------------------------- history (API)


class EmailHistoryItem(BaseModel):
    """An email of a bundle, without its body (GET /api/v2/emails/{id} shows it)."""

    type: Literal["email"] = "email"
    id: uuid.UUID
    at: datetime = Field(description="When the email was created")
    kind: EmailKind
    status: EmailStatus
    recipient_type: RecipientType
    recipient: str
    subject: str
    attempts: int
    sent_at: datetime | None = None
    failed_at: datetime | None = None
    last_error: str | None = None


class PhoneCallHistoryItem(BaseModel):
    type: Literal["phone_call"] = "phone_call"
    id: uuid.UUID
    at: datetime = Field(description="When the call was planned")
    purpose: PhoneCallPurpose
    status: PhoneCallStatus
    therapist_name: str
    phone: str | None = None
    slot_start: datetime
    outcome: PhoneCallOutcome | None = None
    outcome_notes: str | None = None
    completed_at: datetime | None = None
    completed_by: str | None = None

    @classmethod
    def of(cls, call: PhoneCallTask) -> Self:
        return cls(
            id=call.id,
            at=call.created_at,
            purpose=call.purpose,
            status=call.status,
            therapist_name=call.therapist_name,
            phone=call.phone,
            slot_start=call.slot_start,
            outcome=call.outcome,
            outcome_notes=call.outcome_notes,
            completed_at=call.completed_at,
            completed_by=call.completed_by,
        )


class ReplyHistoryItem(BaseModel):
    type: Literal["reply"] = "reply"
    id: uuid.UUID
    at: datetime = Field(description="When the reply was received")
    from_address: str
    subject: str | None = None
    text: str | None = None
    email_id: uuid.UUID | None = Field(default=None, description="The email it answers, when known")

    @classmethod
    def of(cls, reply: InboundReply) -> Self:
        return cls(
            id=reply.id,
            at=reply.received_at,
            from_address=reply.from_address,
            subject=reply.subject,
            text=reply.text,
            email_id=reply.email_id,
        )


CommunicationItem = Annotated[
    EmailHistoryItem | PhoneCallHistoryItem | ReplyHistoryItem, Field(discriminator="type")
]


class BundleSummary(BaseModel):
    """The communication service's view of the bundle itself."""

    id: uuid.UUID
    reference: str
    therapist_id: uuid.UUID
    channel: Channel | None = None
    sent_at: datetime | None = None
    answered_at: datetime | None = None
    expired_at: datetime | None = None
    reminder_sent_at: datetime | None = None
    withdrawn_references: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, bundle: TrackedBundle) -> Self:
        return cls.model_validate(bundle.model_dump(include=set(cls.model_fields)))


class BundleCommunication(PageLinks):
    """GET /api/v2/communications?bundle_reference=B123: everything said about one bundle,
    newest first."""

    bundle_reference: str
    bundle: BundleSummary | None = Field(default=None, description="None: no bundle.sent seen for it")
    items: list[CommunicationItem]
    total: int = Field(ge=0)
    page: int = Field(ge=1)
    limit: int = Field(ge=1)
