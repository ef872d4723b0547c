"""Staff's view of emails (`/api/v2/emails`) and of one person's communication history
(`/api/v2/patients/{id}/communications`, `/api/v2/therapists/{id}/communications`).

Rules chosen where the domain is silent:
- **Lists never carry bodies.** A list item is the email without subject HTML/text; one email
  (`EmailDetail`) shows subject, HTML, text, delivery state and every delivery attempt.
- **Ad-hoc emails go to exactly one patient or therapist**, named by id and resolved through the
  communication service's contact read models (never an address typed by staff): unknown id
  404, erased or without email address 409. The body is Markdown rendered to safe HTML
  (`markdown_html.py`) in the shared layout with the legal footer; patient emails carry the
  crisis notice. A client's `Idempotency-Key` header makes a retried POST answer the first
  email (the resolver, per staff member, 24 h); the email itself keeps the key
  (`ad-hoc:<actor hash>:<key>`), so racing retries still store one email.
- **Creation time filters** `created_from` / `created_to`: a date alone (`2026-11-23`) is a day
  in Germany, both ends inclusive (`created_to=2026-11-23` includes that whole day); a date-time
  is an instant (without a zone: wall-clock time in Germany), `created_from` inclusive,
  `created_to` exclusive.
- **A person's history** holds the emails to them, replies to those emails (and, for a therapist,
  replies about their bundles) and, for a therapist, phone calls; newest first, ids breaking ties.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Final
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from therapy_platform.communication.domain.emails import (
    BUNDLE_REFERENCE_PATTERN,
    EmailKind,
    EmailStatus,
    RecipientType,
)
from therapy_platform.communication.domain.tracking import CommunicationItem
from therapy_platform.communication.rendering.markdown_html import MAX_MARKDOWN_CHARS
from therapy_platform.platform.clock import PLATFORM_TIMEZONE
from therapy_platform.platform.errors import ConflictError, NotFoundError
from therapy_platform.platform.paging import DEFAULT_LIMIT, MAX_LIMIT, MAX_PAGE
from therapy_platform.platform.rest.pagination import PageLinks
from therapy_platform.platform.validation import FieldRuleError

MAX_SUBJECT_CHARS: Final = 200
IDEMPOTENCY_PREFIX: Final = "ad-hoc:"
CREATED_DESCRIPTION: Final = (
    "A day (2026-11-23: that whole day in Germany) or a date-time (without a zone: German "
    "wall-clock time); created_to is exclusive for date-times"
)


class PersonType(StrEnum):
    """Who an ad-hoc email or a history belongs to."""

    PATIENT = "patient"
    THERAPIST = "therapist"


_DATE_ONLY: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(PLATFORM_TIMEZONE)).astimezone(UTC)


def _as_aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=ZoneInfo(PLATFORM_TIMEZONE)).astimezone(UTC)


class EmailQuery(BaseModel):
    """GET /api/v2/emails filters; newest first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: EmailStatus | None = None
    kind: EmailKind | None = None
    recipient_type: RecipientType | None = None
    recipient_id: uuid.UUID | None = None
    bundle_reference: Annotated[str, StringConstraints(pattern=BUNDLE_REFERENCE_PATTERN)] | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    page: int = Field(default=1, ge=1, le=MAX_PAGE)
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)

    @field_validator("created_from", "created_to", mode="before")
    @classmethod
    def _whole_days(cls, value: object, info: ValidationInfo) -> object:
        """A date alone: the start of that day in Germany (`created_to`: of the next day)."""
        if isinstance(value, str) and _DATE_ONLY.match(value.strip()):
            day = date.fromisoformat(value.strip())
            return _day_start(day + timedelta(days=1) if info.field_name == "created_to" else day)
        return value

    @field_validator("created_from", "created_to")
    @classmethod
    def _zone(cls, moment: datetime | None) -> datetime | None:
        return _as_aware(moment)

    @field_validator("created_to")
    @classmethod
    def _after_from(cls, moment: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("created_from")
        if moment is not None and start is not None and start >= moment:
            raise FieldRuleError("inconsistent", "muss nach created_from liegen")
        return moment

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


class EmailSummary(BaseModel):
    """An email in a list: who, what kind, how far delivery got; no body."""

    id: uuid.UUID
    kind: EmailKind
    status: EmailStatus
    recipient_type: RecipientType
    recipient_id: uuid.UUID | None = None
    recipient: str
    recipient_name: str | None = None
    subject: str
    bundle_reference: str | None = None
    attempts: int
    last_error: str | None = None
    created_at: datetime
    queued_at: datetime | None = None
    sent_at: datetime | None = None
    failed_at: datetime | None = None


class DeliveryAttemptView(BaseModel):
    """One hand-over to the mail transport. `outcome` None: the sender died during it."""

    attempt: int
    started_at: datetime
    finished_at: datetime | None = None
    outcome: str | None = Field(default=None, description="sent, retry or failed")
    error: str | None = None


class EmailDetail(EmailSummary):
    """GET /api/v2/emails/{id}: the email as it was (or will be) sent, and its delivery."""

    sender: str
    reply_to: str | None = None
    message_id: str
    html: str
    text: str
    max_attempts: int
    interrupted_attempts: int
    next_attempt_at: datetime | None = None
    bundle_id: uuid.UUID | None = None
    delivery_attempts: list[DeliveryAttemptView] = Field(default_factory=list)


Subject = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=MAX_SUBJECT_CHARS, pattern=r"^[^\r\n]*$"
    ),
]
MarkdownBody = Annotated[str, StringConstraints(min_length=1, max_length=MAX_MARKDOWN_CHARS, pattern=r"\S")]


def stored_idempotency_key(key: str, actor: str) -> str:
    """The email's own idempotency key for a client's `Idempotency-Key`: scoped per staff member
    like the header (platform/idempotency.py), so one email per key even when two retries race
    past the resolver's check; the actor enters as a hash (fixed length, no address stored)."""
    return f"{IDEMPOTENCY_PREFIX}{hashlib.sha256(actor.encode()).hexdigest()[:16]}:{key}"


class AdHocEmailRequest(BaseModel):
    """POST /api/v2/emails: one email to one patient or therapist."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    recipient_type: PersonType
    recipient_id: uuid.UUID
    subject: Subject = Field(description="One line, up to 200 characters")
    body: MarkdownBody = Field(
        description="Markdown (CommonMark; raw HTML and images are shown as text, links only to "
        "http(s), mailto and tel)"
    )
    salutation: bool = Field(
        default=True,
        description="Open with the German form of address and close with the team's greeting",
    )


class RecipientUnknownError(NotFoundError):
    code = "recipient_unknown"


class RecipientUnreachableError(ConflictError):
    """The person exists but cannot get an email: erased, or no address."""

    code = "recipient_unreachable"


class PersonCommunication(PageLinks):
    """Everything said to and from one patient or therapist, newest first."""

    person_type: PersonType
    person_id: uuid.UUID
    erased: bool = Field(default=False, description="The patient was erased: emails are redacted")
    items: list[CommunicationItem]
    total: int = Field(ge=0)
    page: int = Field(ge=1)
    limit: int = Field(ge=1)
