"""Matching honours a therapist's objection to inquiries (GDPR Art. 21, therapist events'
`contact_opt_out`): the therapist gets no bundle (`contact_opt_out`), and neither does any
colleague of their practice, who shares the mailbox the objection came from
(`practice_contact_opt_out`); staff bundles are refused the same way; the flag is read from the
read model, and a `therapist.*` event with it discards the therapist's draft bundles."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from therapy_platform.contracts.codes import VOCABULARIES
from therapy_platform.contracts.practices import hashed_practice_key
from therapy_platform.contracts.therapy import TherapyProcedure
from therapy_platform.matching.domain import (
    Reason,
    SearchCandidate,
    TherapistCandidate,
    decide_practice,
    plan_round,
    plan_staff_bundle,
)
from therapy_platform.matching.domain.candidates import therapist_candidate
from therapy_platform.platform.geography.locations import Location, LocationPrecision

TODAY = date(2026, 12, 7)
T0 = datetime(2025, 1, 1, tzinfo=UTC)
MITTE = Location.at(52.52, 13.40, LocationPrecision.ADDRESS)
PRACTICE = hashed_practice_key("team@praxis.example")


def therapist(n: int = 1, **fields: Any) -> TherapistCandidate:
    base = TherapistCandidate(
        id=uuid.UUID(int=n),
        created_at=T0,
        status="active",
        location=MITTE,
        procedures=frozenset(TherapyProcedure),
    )
    return replace(base, **fields)


def search(n: int = 1) -> SearchCandidate:
    return SearchCandidate(
        id=uuid.UUID(int=1000 + n),
        patient_id=uuid.UUID(int=2000 + n),
        created_at=T0 + timedelta(days=n),
        location=MITTE,
        birth_date=date(1990, 1, 1),
        contact_budget=5,
    )


SEARCHES = [search(n) for n in range(1, 7)]


def test_an_opted_out_therapist_gets_no_bundle_in_a_round() -> None:
    assert len(plan_round([therapist()], SEARCHES, TODAY).bundles) == 1  # the same one, contactable
    plan = plan_round([therapist(contact_opt_out=True)], SEARCHES, TODAY)
    assert plan.bundles == ()
    assert [(d.therapist_id.int, d.reason) for d in plan.therapists_left_out] == [(1, Reason.CONTACT_OPT_OUT)]


def test_the_objection_comes_before_the_other_reasons_of_an_active_therapist() -> None:
    busy = therapist(
        contact_opt_out=True, has_open_bundle=True, next_contact_allowed_on=TODAY + timedelta(days=3)
    )
    assert decide_practice([busy], TODAY).left_out == ((uuid.UUID(int=1), Reason.CONTACT_OPT_OUT),)
    # An inactive therapist is simply not active, objection or not.
    gone = therapist(status="inactive", contact_opt_out=True)
    assert decide_practice([gone], TODAY).left_out == ((uuid.UUID(int=1), Reason.THERAPIST_NOT_ACTIVE),)


def test_a_colleague_sharing_the_mailbox_gets_no_bundle_either() -> None:
    objecting = therapist(1, practice_key=PRACTICE, contact_opt_out=True)
    colleague = therapist(2, practice_key=PRACTICE)
    other = therapist(3, practice_key=hashed_practice_key("praxis@anderswo.example"))
    decision = decide_practice([objecting, colleague], TODAY)
    assert decision.practice is None
    assert dict(decision.left_out) == {
        uuid.UUID(int=1): Reason.CONTACT_OPT_OUT,
        uuid.UUID(int=2): Reason.PRACTICE_CONTACT_OPT_OUT,
    }
    plan = plan_round([objecting, colleague, other], SEARCHES, TODAY)
    assert [bundle.therapist_id.int for bundle in plan.bundles] == [3]
    # Even an inactive member's objection keeps the shared mailbox out.
    retired = therapist(1, practice_key=PRACTICE, status="inactive", contact_opt_out=True)
    assert dict(decide_practice([retired, colleague], TODAY).left_out)[uuid.UUID(int=2)] is (
        Reason.PRACTICE_CONTACT_OPT_OUT
    )


def test_staff_cannot_build_a_bundle_for_an_opted_out_therapist_or_their_practice() -> None:
    objecting = therapist(1, practice_key=PRACTICE, contact_opt_out=True)
    colleague = therapist(2, practice_key=PRACTICE)
    for chosen, reason in ((objecting, Reason.CONTACT_OPT_OUT), (colleague, Reason.PRACTICE_CONTACT_OPT_OUT)):
        plan = plan_staff_bundle(chosen.id, [objecting, colleague], SEARCHES, TODAY)
        assert (plan.bundle, plan.therapist_reason) == (None, reason)


@given(
    flags=st.lists(st.booleans(), min_size=1, max_size=5),
    statuses=st.lists(st.sampled_from(["active", "blocked", "inactive"]), min_size=5, max_size=5),
)
def test_no_round_ever_addresses_a_practice_with_an_objection(flags: list[bool], statuses: list[str]) -> None:
    members = [
        therapist(n, practice_key=PRACTICE, contact_opt_out=flag, status=statuses[n - 1])
        for n, flag in enumerate(flags, start=1)
    ]
    plan = plan_round(members, SEARCHES, TODAY)
    if any(flags):
        assert plan.bundles == ()
        assert {d.reason for d in plan.therapists_left_out} <= {
            Reason.CONTACT_OPT_OUT,
            Reason.PRACTICE_CONTACT_OPT_OUT,
            Reason.THERAPIST_NOT_ACTIVE,
        }


def test_the_flag_is_read_from_the_read_model_and_missing_means_no_objection() -> None:
    profile = {
        "id": str(uuid.UUID(int=9)),
        "created_at": T0.isoformat(),
        "status": "active",
        "location": {"latitude": 52.52, "longitude": 13.4, "precision": "address"},
    }
    assert therapist_candidate(profile).contact_opt_out is False
    assert therapist_candidate({**profile, "contact_opt_out": True}).contact_opt_out is True


def test_both_reasons_have_labels() -> None:
    labels = VOCABULARIES["Reason"].labels
    assert {"contact_opt_out", "practice_contact_opt_out"} <= set(labels)
    assert {Reason.CONTACT_OPT_OUT.value, Reason.PRACTICE_CONTACT_OPT_OUT.value} <= set(labels)
