"""Recording a therapist's response to a bundle: the pure part (validation, counts, response
type, cooling date). Persisting, placing, conflicts and events belong to the use case.

When the therapist answered (`responded_at`, staff may give it) decides the cooling date, so it
must lie between the bundle's sending and now (`check_responded_at`): a date in the future
would start a cooling period of any length (2031), one before the sending would end the cooling
at once. Now is allowed a small clock skew (`RESPONSE_CLOCK_SKEW`, 5 minutes): the time comes
from a staff member's device, whose clock may run a little ahead of the server's; five minutes
covers unsynchronised office machines and is far too little to move a cooling date by more
than the one calendar day a response near midnight can already cross."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Final

from therapy_platform.matching.domain.models import DEFAULT_CONFIG, MatchingConfig
from therapy_platform.platform.validation import FieldRuleError, FieldValidationError

RESPONSE_CLOCK_SKEW: Final = timedelta(minutes=5)


class MemberOutcome(StrEnum):
    ACCEPTED = "accepted"
    REJECTED_CAPACITY = "rejected_capacity"
    REJECTED_UNSUITABLE = "rejected_unsuitable"  # also excludes the therapist from that search
    REJECTED_OTHER = "rejected_other"
    NO_RESPONSE = "no_response"


REJECTIONS = frozenset(
    {MemberOutcome.REJECTED_CAPACITY, MemberOutcome.REJECTED_UNSUITABLE, MemberOutcome.REJECTED_OTHER}
)


class ResponseType(StrEnum):
    FULL_ACCEPTANCE = "full_acceptance"
    PARTIAL_ACCEPTANCE = "partial_acceptance"
    FULL_REJECTION = "full_rejection"
    NO_RESPONSE = "no_response"


@dataclass(frozen=True)
class ResponseCounts:
    accepted: int
    rejected: int
    no_response: int

    @property
    def total(self) -> int:
        return self.accepted + self.rejected + self.no_response


def count_outcomes(outcomes: Iterable[MemberOutcome]) -> ResponseCounts:
    values = list(outcomes)
    return ResponseCounts(
        accepted=sum(1 for o in values if o is MemberOutcome.ACCEPTED),
        rejected=sum(1 for o in values if o in REJECTIONS),
        no_response=sum(1 for o in values if o is MemberOutcome.NO_RESPONSE),
    )


def response_type(counts: ResponseCounts) -> ResponseType:
    """From the counts of this response: all accepted -> full acceptance; some accepted ->
    partial; none accepted but some rejected -> full rejection; nothing -> no response."""
    if counts.accepted and counts.accepted == counts.total:
        return ResponseType.FULL_ACCEPTANCE
    if counts.accepted:
        return ResponseType.PARTIAL_ACCEPTANCE
    if counts.rejected:
        return ResponseType.FULL_REJECTION
    return ResponseType.NO_RESPONSE


def cooling_until(response_date: date, config: MatchingConfig = DEFAULT_CONFIG) -> date:
    """`next_contact_allowed_on` after any response: response date + cooling days."""
    return response_date + timedelta(days=config.cooling_days)


def check_responded_at(
    responded_at: datetime, *, sent_at: datetime | None, now: datetime, skew: timedelta = RESPONSE_CLOCK_SKEW
) -> None:
    """Raise FieldValidationError (422 naming `responded_at`) unless the response time lies
    between the sending (`sent_at`; None for a bundle not sent, which takes no response anyway)
    and `now` plus the allowed clock skew."""
    if sent_at is not None and responded_at < sent_at:
        raise FieldValidationError.for_fields(
            {
                "responded_at": FieldRuleError(
                    "too_early", f"liegt vor dem Versand des Bündels ({sent_at.isoformat()})"
                )
            }
        )
    if responded_at > now + skew:
        minutes = int(skew.total_seconds() // 60)
        raise FieldValidationError.for_fields(
            {
                "responded_at": FieldRuleError(
                    "in_future", f"liegt in der Zukunft (mehr als {minutes} Minuten nach der Serverzeit)"
                )
            }
        )


class MemberMismatchError(ValueError):
    """A response that does not list exactly the bundle's members (HTTP 400 naming them)."""

    def __init__(self, missing: list[uuid.UUID], extra: list[uuid.UUID]) -> None:
        self.missing = missing
        self.extra = extra
        parts = []
        if missing:
            parts.append("missing members: " + ", ".join(map(str, missing)))
        if extra:
            parts.append("not members of this bundle: " + ", ".join(map(str, extra)))
        super().__init__("; ".join(parts))


def check_member_outcomes(
    member_ids: Iterable[uuid.UUID], outcomes: Mapping[uuid.UUID, MemberOutcome]
) -> None:
    """Raise MemberMismatchError naming missing and extra members (both sorted) unless the
    response lists exactly the bundle's members. Member ids are whatever identifies a member
    in the API (search id or member id): the caller decides, the rule is the same."""
    expected = set(member_ids)
    given = set(outcomes)
    missing = sorted(expected - given, key=str)
    extra = sorted(given - expected, key=str)
    if missing or extra:
        raise MemberMismatchError(missing, extra)
