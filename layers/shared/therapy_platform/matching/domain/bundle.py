"""The bundle aggregate: one inquiry to one therapist with its members, and the rules that
change it (draft -> sent -> answered | expired, draft -> discarded; withdrawing a member;
recording an answer per member). `bundles.Bundle` is its view for the API and the `bundle.*`
events; the repositories load and save this one.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from therapy_platform.matching.domain.bundles import (
    Bundle,
    BundleKind,
    BundleMember,
    BundleStatus,
    Channel,
    MemberStatus,
    Withdrawal,
    bundle_reference,
    check_bundle_transition,
    member_reference,
)
from therapy_platform.matching.domain.models import SoftFilter
from therapy_platform.matching.domain.responses import (
    MemberOutcome,
    ResponseCounts,
    ResponseType,
    check_member_outcomes,
)
from therapy_platform.matching.domain.round import PlannedBundle
from therapy_platform.platform.errors import ConflictError

DEFAULT_FOLLOW_UP_AFTER_DAYS: Final = 7


@dataclass
class BundleMemberRecord:
    id: uuid.UUID
    search_id: uuid.UUID
    patient_id: uuid.UUID
    position: int
    status: MemberStatus = MemberStatus.PENDING
    outcome: MemberOutcome | None = None
    responded_at: datetime | None = None
    notes: str | None = None

    @property
    def pending(self) -> bool:
        return self.status is MemberStatus.PENDING

    def answer(
        self, outcome: MemberOutcome, status: MemberStatus, *, at: datetime, notes: str | None
    ) -> None:
        """Record this member's outcome. A withdrawn member stays withdrawn (the outcome is kept)
        unless the therapist accepted."""
        self.outcome = outcome
        self.responded_at = at
        self.notes = notes or self.notes
        if self.status is MemberStatus.WITHDRAWN and outcome is not MemberOutcome.ACCEPTED:
            return
        self.status = status


@dataclass
class BundleRecord:
    id: uuid.UUID
    therapist_id: uuid.UUID
    practice_key: str
    kind: BundleKind
    status: BundleStatus
    created_at: datetime
    created_by: str
    updated_at: datetime
    number: int = 0  # given by the store when the bundle is first written
    round_id: uuid.UUID | None = None
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
    response: dict[str, str] | None = None  # search id -> outcome, as recorded
    applied_filters: list[SoftFilter] = field(default_factory=list)
    skipped_filters: list[SoftFilter] = field(default_factory=list)
    notes: str | None = None
    members: list[BundleMemberRecord] = field(default_factory=list)  # by position

    @classmethod
    def draft(
        cls,
        plan: PlannedBundle,
        *,
        kind: BundleKind,
        round_id: uuid.UUID | None,
        actor: str,
        now: datetime,
    ) -> BundleRecord:
        return cls(
            id=uuid.uuid4(),
            therapist_id=plan.therapist_id,
            practice_key=plan.practice_key,
            kind=kind,
            status=BundleStatus.DRAFT,
            round_id=round_id,
            created_at=now,
            created_by=actor,
            updated_at=now,
            applied_filters=list(plan.applied_filters),
            skipped_filters=list(plan.skipped_filters),
            members=[
                BundleMemberRecord(
                    id=uuid.uuid4(), search_id=m.search_id, patient_id=m.patient_id, position=m.position
                )
                for m in plan.members
            ],
        )

    @property
    def reference(self) -> str:
        return bundle_reference(self.number)

    @property
    def is_open(self) -> bool:
        return self.status in (BundleStatus.DRAFT, BundleStatus.SENT)

    @property
    def has_pending(self) -> bool:
        return any(member.pending for member in self.members)

    def member_of(self, search_id: uuid.UUID) -> BundleMemberRecord | None:
        return next((m for m in self.members if m.search_id == search_id), None)

    # ------------------------------------------------------------------ status machine

    def check_sendable(self) -> None:
        check_bundle_transition(self.status, BundleStatus.SENT)
        if not self.has_pending:
            raise ConflictError(
                f"bundle {self.reference} has no pending member left; discard it instead",
                details={"bundle_id": str(self.id)},
            )

    def send(self, channel: Channel, *, now: datetime) -> None:
        """draft -> sent, by email or as a phone call task."""
        self.check_sendable()
        self.status = BundleStatus.SENT
        self.sent_at = now
        self.channel = channel
        self.updated_at = now

    def discard(self, reason: str, *, now: datetime) -> None:
        """draft -> discarded. Its pending members are withdrawn: a draft never reached the
        therapist, so their contacts are given back."""
        check_bundle_transition(self.status, BundleStatus.DISCARDED)
        self.status = BundleStatus.DISCARDED
        self.discarded_at = now
        self.discard_reason = reason
        self.updated_at = now
        for member in self.members:
            if member.pending:
                member.status = MemberStatus.WITHDRAWN
                member.notes = reason

    def expire(self, *, now: datetime) -> None:
        """sent -> expired: unanswered members become no_response."""
        check_bundle_transition(self.status, BundleStatus.EXPIRED)
        for member in self.members:
            if member.pending:
                member.status = MemberStatus.NO_RESPONSE
                member.outcome = MemberOutcome.NO_RESPONSE
        self.status = BundleStatus.EXPIRED
        self.expired_at = now
        self.response_type = ResponseType.NO_RESPONSE
        self.updated_at = now

    def withdraw(self, search_id: uuid.UUID, reason: str) -> Withdrawal:
        """The search's pending membership is withdrawn (placed elsewhere, paused, cancelled)."""
        member = self.member_of(search_id)
        if member is None or not member.pending:
            raise ValueError(f"search {search_id} has no pending membership in bundle {self.reference}")
        member.status = MemberStatus.WITHDRAWN
        member.notes = reason
        return Withdrawal(
            bundle_id=self.id,
            bundle_reference=self.reference,
            bundle_status=self.status,
            therapist_id=self.therapist_id,
            search_id=search_id,
            member_reference=member_reference(self.number, member.position),
        )

    # ------------------------------------------------------------------ responses

    def recorded_response(self) -> dict[str, str]:
        return {str(m.search_id): m.outcome.value for m in self.members if m.outcome is not None}

    def check_response(self, outcomes: Mapping[uuid.UUID, MemberOutcome]) -> None:
        """Raise MemberMismatchError unless the response lists exactly this bundle's members."""
        check_member_outcomes([m.search_id for m in self.members], outcomes)

    def answered(
        self,
        counts: ResponseCounts,
        response_type: ResponseType,
        outcomes: Mapping[uuid.UUID, MemberOutcome],
        *,
        at: datetime,
        now: datetime,
        notes: str | None,
    ) -> None:
        """sent -> answered, with the counts of this response (members were answered one by one)."""
        check_bundle_transition(self.status, BundleStatus.ANSWERED)
        self.status = BundleStatus.ANSWERED
        self.answered_at = at
        self.updated_at = now
        self.response_type = response_type
        self.accepted_count = counts.accepted
        self.rejected_count = counts.rejected
        self.no_response_count = counts.no_response
        self.response = {str(k): v.value for k, v in outcomes.items()}
        self.notes = notes or self.notes

    # ------------------------------------------------------------------ view

    def needs_follow_up(
        self, now: datetime, follow_up_after_days: int = DEFAULT_FOLLOW_UP_AFTER_DAYS
    ) -> bool:
        """Sent and unanswered for `follow_up_after_days` (the reminder is due or done), or a
        conflict among its members."""
        overdue = (
            self.status is BundleStatus.SENT
            and self.sent_at is not None
            and self.sent_at <= now - timedelta(days=follow_up_after_days)
        )
        return overdue or any(m.status is MemberStatus.CONFLICT for m in self.members)

    def view(self, *, needs_follow_up: bool = False) -> Bundle:
        """The API's and the events' shape. Built without validation: every value is typed
        already (a national round builds 20,000 of these)."""
        number = self.number
        return Bundle.model_construct(
            id=self.id,
            number=number,
            reference=bundle_reference(number),
            therapist_id=self.therapist_id,
            practice_key=self.practice_key,
            kind=self.kind,
            status=self.status,
            round_id=self.round_id,
            created_at=self.created_at,
            created_by=self.created_by,
            updated_at=self.updated_at,
            sent_at=self.sent_at,
            channel=self.channel,
            reminder_sent_at=self.reminder_sent_at,
            answered_at=self.answered_at,
            expired_at=self.expired_at,
            discarded_at=self.discarded_at,
            discard_reason=self.discard_reason,
            response_type=self.response_type,
            accepted_count=self.accepted_count,
            rejected_count=self.rejected_count,
            no_response_count=self.no_response_count,
            size=len(self.members),
            applied_filters=list(self.applied_filters),
            skipped_filters=list(self.skipped_filters),
            notes=self.notes,
            needs_follow_up=needs_follow_up,
            members=[
                BundleMember.model_construct(
                    id=m.id,
                    search_id=m.search_id,
                    patient_id=m.patient_id,
                    position=m.position,
                    reference=member_reference(number, m.position),
                    status=m.status,
                    outcome=m.outcome,
                    responded_at=m.responded_at,
                    notes=m.notes,
                    patient=None,
                )
                for m in self.members
            ],
        )
