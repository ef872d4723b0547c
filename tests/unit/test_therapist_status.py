"""The therapist status machine (active / blocked / inactive), checked exhaustively on the pure
rule and by random action sequences through the use case with the in-memory unit of work."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from therapist_fakes import FakeGeocoder, InMemoryTherapistUnitOfWork, TherapistDatabase
from therapy_platform.platform.errors import ConflictError
from therapy_platform.therapists.domain.therapist import (
    TherapistAction,
    TherapistDraft,
    TherapistStatus,
    next_status,
)
from therapy_platform.therapists.use_cases import change_status, create_therapist

ACTIVE, BLOCKED, INACTIVE = TherapistStatus.ACTIVE, TherapistStatus.BLOCKED, TherapistStatus.INACTIVE

# The rules as staff would state them, written independently of TRANSITIONS.
ALLOWED = {
    (ACTIVE, TherapistAction.BLOCK): BLOCKED,
    (BLOCKED, TherapistAction.UNBLOCK): ACTIVE,
    (ACTIVE, TherapistAction.DEACTIVATE): INACTIVE,
    (BLOCKED, TherapistAction.DEACTIVATE): INACTIVE,
    (INACTIVE, TherapistAction.REACTIVATE): ACTIVE,
}
EVENT = {
    TherapistAction.BLOCK: "therapist.blocked",
    TherapistAction.UNBLOCK: "therapist.unblocked",
    TherapistAction.DEACTIVATE: "therapist.updated",
    TherapistAction.REACTIVATE: "therapist.updated",
}


@pytest.mark.parametrize(("status", "action"), list(itertools.product(TherapistStatus, TherapistAction)))
def test_every_status_and_action(status: TherapistStatus, action: TherapistAction) -> None:
    if (status, action) in ALLOWED:
        assert next_status(status, action) == ALLOWED[(status, action)]
        return
    with pytest.raises(ConflictError) as error:
        next_status(status, action)
    # The message names both the current and the requested state.
    target = {"block": "blocked", "unblock": "active", "deactivate": "inactive", "reactivate": "active"}[
        action
    ]
    assert f"{status} -> {target}" in error.value.message
    assert error.value.details == {"current_status": str(status), "requested_status": target}


def test_blocking_a_blocked_therapist_says_so() -> None:
    with pytest.raises(
        ConflictError, match="cannot block a therapist whose status is blocked: blocked -> blocked"
    ):
        next_status(BLOCKED, TherapistAction.BLOCK)


class StatusMachine(RuleBasedStateMachine):
    """Random block / unblock / deactivate / reactivate sequences through the use case."""

    @initialize()
    def create(self) -> None:
        self.database = TherapistDatabase()
        self.now = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
        outcome = create_therapist(
            InMemoryTherapistUnitOfWork(self.database),
            FakeGeocoder(),
            TherapistDraft.model_validate({"first_name": "A", "last_name": "B", "postcode": "52062"}),
            actor="staff@example.org",
            now=self.now,
        )
        self.therapist_id: uuid.UUID = outcome.value.id
        self.expected = ACTIVE
        self.expected_events = ["therapist.created"]
        self.expected_audit = 1

    @rule(action=st.sampled_from(TherapistAction), reason=st.text(min_size=1, max_size=20))
    def act(self, action: TherapistAction, reason: str) -> None:
        self.now += timedelta(minutes=1)
        before = self.database.therapists[self.therapist_id]
        uow = InMemoryTherapistUnitOfWork(self.database)
        if action is TherapistAction.DEACTIVATE and self.expected is INACTIVE:
            outcome = change_status(uow, self.therapist_id, action, reason=reason, actor="s", now=self.now)
            assert outcome.events == () and outcome.value == before  # DELETE again: nothing happens
        elif (self.expected, action) in ALLOWED:
            outcome = change_status(uow, self.therapist_id, action, reason=reason, actor="s", now=self.now)
            self.expected = ALLOWED[(self.expected, action)]
            self.expected_events.append(EVENT[action])
            self.expected_audit += 1
            assert outcome.value.updated_at == self.now
            assert self.database.audit[-1].reason == reason
            assert self.database.audit[-1].before == {
                "status": str(before.status),
                "block_reason": before.block_reason,
            }
        else:
            with pytest.raises(ConflictError):
                change_status(uow, self.therapist_id, action, reason=reason, actor="s", now=self.now)
            assert self.database.therapists[self.therapist_id] == before  # nothing half-written

    @invariant()
    def stored_state_matches_the_model(self) -> None:
        therapist = self.database.therapists[self.therapist_id]
        assert therapist.status == self.expected
        # A reason is kept exactly while blocked; the events say what happened, in order.
        assert (therapist.block_reason is not None) == (therapist.status is BLOCKED)
        assert [event.event_type for event in self.database.events()] == self.expected_events
        assert len(self.database.audit) == self.expected_audit
        assert all(event.payload["id"] == str(self.therapist_id) for event in self.database.events())
        assert self.database.events()[-1].payload["status"] == str(self.expected)


StatusMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
TestStatusMachine = StatusMachine.TestCase
