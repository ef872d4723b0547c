"""Single rules of the matching engine, one example each."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from therapy_platform.contracts.practices import hashed_practice_key, owner_name_rank, title_rank
from therapy_platform.contracts.therapy import Gender, TherapyProcedure
from therapy_platform.matching.domain import (
    MatchingConfig,
    MemberMismatchError,
    MemberOutcome,
    Reason,
    ResponseType,
    SearchCandidate,
    SoftFilter,
    TherapistCandidate,
    check_member_outcomes,
    choose_practice_owner,
    cooling_until,
    count_outcomes,
    decide_practice,
    hard_constraint_failure,
    plan_round,
    plan_staff_bundle,
    progressive_filter,
    response_type,
    search_ineligibility,
)
from therapy_platform.matching.domain.responses import RESPONSE_CLOCK_SKEW, check_responded_at
from therapy_platform.platform.clock import platform_today
from therapy_platform.platform.geography.locations import Location, LocationPrecision
from therapy_platform.platform.validation import FieldValidationError

TODAY = date(2026, 3, 2)
T0 = datetime(2025, 1, 1, tzinfo=UTC)
MITTE = Location.at(52.52, 13.40, LocationPrecision.ADDRESS)
POTSDAM = Location.at(52.39, 13.06, LocationPrecision.POSTCODE)  # about 27 km from Mitte


def therapist(
    n: int = 1, *, last_name: str = "Weiß", title: str | None = None, email: str | None = None, **fields: Any
) -> TherapistCandidate:
    """A candidate; name, title and email become what the therapist service sends instead
    (contracts/practices.py: the owner ranks and the hashed practice key)."""
    fields.setdefault("owner_name_rank", owner_name_rank(last_name, email))
    fields.setdefault("title_rank", title_rank(title))
    if email is not None:
        fields.setdefault("practice_key", hashed_practice_key(email))
    base = TherapistCandidate(
        id=uuid.UUID(int=n),
        created_at=T0,
        status="active",
        location=MITTE,
        procedures=frozenset(TherapyProcedure),
    )
    return replace(base, **fields)


def search(n: int = 1, **fields: Any) -> SearchCandidate:
    base = SearchCandidate(
        id=uuid.UUID(int=1000 + n),
        patient_id=uuid.UUID(int=2000 + n),
        created_at=T0 + timedelta(days=n),
        location=MITTE,
        birth_date=date(1990, 1, 1),
        contact_budget=5,
    )
    return replace(base, **fields)


def practice_of(*members: TherapistCandidate):  # type: ignore[no-untyped-def]
    decision = decide_practice(list(members), TODAY)
    assert decision.practice is not None
    return decision.practice


# ---------------------------------------------------------------- practice owner


def test_owner_is_the_therapist_named_in_the_email_with_umlauts_folded() -> None:
    email = "praxis.weiss-mueller@example.de"
    koch = therapist(1, last_name="Koch", title="Prof. Dr.", email=email, created_at=T0 - timedelta(days=9))
    mueller = therapist(2, last_name="Müller", email=email)
    assert choose_practice_owner([koch, mueller]) == mueller
    assert choose_practice_owner([mueller, koch]) == mueller


def test_owner_by_domain_longest_name_then_title_then_oldest() -> None:
    email = "info@kochmann-praxis.de"
    koch = therapist(1, last_name="Koch", email=email)
    kochmann = therapist(2, last_name="Kochmann", email=email)
    assert choose_practice_owner([koch, kochmann]) == kochmann
    email = "team@praxis.de"
    dr = therapist(3, last_name="Braun", title="Dr.", email=email)
    prof = therapist(4, last_name="Lang", title="Prof. Dr. med.", email=email)
    plain_old = therapist(
        5, last_name="Vogel", title="Dipl.-Psych.", email=email, created_at=T0 - timedelta(days=99)
    )
    assert choose_practice_owner([dr, prof, plain_old]) == prof
    assert choose_practice_owner([dr, plain_old]) == dr
    young = therapist(6, last_name="Ott", email=email, created_at=T0 + timedelta(days=1))
    same_age = therapist(7, last_name="Uhl", email=email)
    assert choose_practice_owner(
        [young, same_age, therapist(8, last_name="Roth", email=email)]
    ).id == uuid.UUID(int=7)


def test_practice_eligibility_reasons() -> None:
    assert decide_practice([therapist(status="blocked")], TODAY).left_out == (
        (uuid.UUID(int=1), Reason.THERAPIST_NOT_ACTIVE),
    )
    cooling = therapist(next_contact_allowed_on=TODAY + timedelta(days=1))
    assert decide_practice([cooling], TODAY).left_out[0][1] is Reason.IN_COOLING_PERIOD
    assert decide_practice([therapist(next_contact_allowed_on=TODAY)], TODAY).practice is not None
    assert decide_practice([therapist(has_open_bundle=True)], TODAY).left_out[0][1] is Reason.OPEN_BUNDLE
    unknown = therapist(location=Location.unknown())
    assert decide_practice([unknown], TODAY).left_out[0][1] is Reason.THERAPIST_LOCATION_UNKNOWN
    key = "team@praxis.de"
    colleague_busy = [therapist(1, practice_key=key), therapist(2, practice_key=key, has_open_bundle=True)]
    decision = decide_practice(colleague_busy, TODAY)
    assert decision.practice is None
    assert dict(decision.left_out) == {
        uuid.UUID(int=1): Reason.PRACTICE_OPEN_BUNDLE,
        uuid.UUID(int=2): Reason.OPEN_BUNDLE,
    }
    two = decide_practice([therapist(1, practice_key=key), therapist(2, practice_key=key)], TODAY)
    assert two.practice is not None and dict(two.left_out) == {uuid.UUID(int=2): Reason.NOT_PRACTICE_OWNER}


def test_search_eligibility_reasons() -> None:
    config = MatchingConfig()
    assert search_ineligibility(search(), config) is None
    assert search_ineligibility(search(status="paused"), config) is Reason.SEARCH_NOT_ACTIVE
    assert search_ineligibility(search(contacts_used=5), config) is Reason.CONTACT_BUDGET_USED
    assert search_ineligibility(search(open_bundle_count=3), config) is Reason.OPEN_BUNDLE_LIMIT
    assert (
        search_ineligibility(search(location=Location.unknown()), config) is Reason.PATIENT_LOCATION_UNKNOWN
    )


# ---------------------------------------------------------------- hard constraints


@pytest.mark.parametrize(
    ("therapist_fields", "search_fields", "reason"),
    [
        ({}, {"location": POTSDAM}, Reason.OUT_OF_REACH),
        ({}, {"location": POTSDAM, "max_travel_km": 40.0}, None),
        ({}, {"location": POTSDAM, "max_travel_km": 40.0, "max_travel_minutes": 30}, Reason.OUT_OF_REACH),
        ({}, {"patient_excluded_therapist_ids": frozenset({uuid.UUID(int=1)})}, Reason.EXCLUDED_BY_PATIENT),
        ({}, {"search_excluded_therapist_ids": frozenset({uuid.UUID(int=1)})}, Reason.EXCLUDED_BY_SEARCH),
        (
            {"gender": Gender.MALE},
            {"preferred_therapist_gender": "female"},
            Reason.THERAPIST_GENDER_NOT_WANTED,
        ),
        ({"gender": Gender.FEMALE}, {"preferred_therapist_gender": "female"}, None),
        (
            {"preferred_patient_gender": Gender.FEMALE},
            {"gender": Gender.MALE},
            Reason.PATIENT_GENDER_NOT_WANTED,
        ),
        ({"preferred_age_min": 18}, {"birth_date": None}, Reason.BIRTH_DATE_UNKNOWN),
        ({"preferred_age_max": 30}, {"birth_date": date(1990, 1, 1)}, Reason.AGE_OUT_OF_RANGE),
        ({"preferred_age_min": 36}, {"birth_date": date(1990, 3, 2)}, None),  # 36 today
        ({"preferred_age_min": 36}, {"birth_date": date(1990, 3, 3)}, Reason.AGE_OUT_OF_RANGE),
        ({}, {"birth_date": None}, None),  # no range: a missing birth date is fine
        (
            {"procedures": frozenset({TherapyProcedure.ANALYTIC})},
            {"therapy_procedures": frozenset({TherapyProcedure.BEHAVIOURAL})},
            Reason.NO_SHARED_PROCEDURE,
        ),
        ({}, {"group_only": True, "open_to_group_therapy": True}, Reason.GROUP_ONLY_PATIENT),
        ({"group_only": True, "offers_group_therapy": True}, {}, Reason.GROUP_ONLY_THERAPIST),
        (
            {"languages": frozenset({"de"})},
            {"languages": frozenset({"tr"}), "needs_shared_language": True},
            Reason.NO_SHARED_LANGUAGE,
        ),
        ({"languages": frozenset({"de"})}, {"languages": frozenset({"tr"})}, None),
        (
            {},
            {"contacted_practices": frozenset({f"therapist:{uuid.UUID(int=1)}"})},
            Reason.ALREADY_SENT_TO_PRACTICE,
        ),
        ({}, {"location": Location.unknown()}, Reason.OUT_OF_REACH),
    ],
)
def test_hard_constraints(
    therapist_fields: dict[str, Any], search_fields: dict[str, Any], reason: Reason | None
) -> None:
    practice = practice_of(therapist(**therapist_fields))
    assert hard_constraint_failure(practice, search(**search_fields), TODAY) is reason


def test_exclusion_of_a_colleague_keeps_the_patient_from_the_whole_practice() -> None:
    key = "team@praxis.de"
    practice = practice_of(therapist(1, practice_key=key), therapist(2, practice_key=key, status="blocked"))
    excluded = search(patient_excluded_therapist_ids=frozenset({uuid.UUID(int=2)}))
    assert hard_constraint_failure(practice, excluded, TODAY) is Reason.EXCLUDED_BY_PATIENT
    assert hard_constraint_failure(practice, search(contacted_practices=frozenset({key})), TODAY) is (
        Reason.ALREADY_SENT_TO_PRACTICE
    )


# ---------------------------------------------------------------- progressive filtering


def test_progressive_filter_keeps_a_filter_only_when_enough_remain() -> None:
    candidates = [search(n, symptoms=frozenset({"grief"} if n <= 4 else set())) for n in range(1, 8)]
    filters = [
        (SoftFilter.AVAILABILITY, lambda s: s.created_at.day <= 3),  # 2 left: skipped
        (SoftFilter.SYMPTOM_PREFERENCES, lambda s: "grief" in s.symptoms),  # 4 left: kept
        (SoftFilter.GROUP_PREFERENCE, lambda s: s.created_at.day % 2 == 0),  # 2 of 4: skipped
    ]
    outcome = progressive_filter(candidates, filters, 3)
    assert outcome.applied == (SoftFilter.SYMPTOM_PREFERENCES,)
    assert outcome.skipped == (SoftFilter.AVAILABILITY, SoftFilter.GROUP_PREFERENCE)
    assert [s.id.int - 1000 for s in outcome.kept] == [1, 2, 3, 4]
    assert {sid.int - 1000 for sid, _ in outcome.dropped} == {5, 6, 7}


def test_round_applies_the_therapists_soft_preferences() -> None:
    owner = therapist(symptom_preferences=frozenset({"grief"}))
    searches = [search(n, symptoms=frozenset({"grief"} if n % 2 else {"anxiety"})) for n in range(1, 9)]
    plan = plan_round([owner], searches, TODAY, explain=True)
    (bundle,) = plan.bundles
    assert bundle.applied_filters == (SoftFilter.SYMPTOM_PREFERENCES,)
    assert [m.search_id.int - 1000 for m in bundle.members] == [1, 3, 5, 7]


def test_round_takes_the_six_longest_waiting_and_needs_three() -> None:
    searches = [search(n) for n in range(8, 0, -1)]
    plan = plan_round([therapist()], searches, TODAY, explain=True)
    (bundle,) = plan.bundles
    assert [m.search_id.int - 1000 for m in bundle.members] == [1, 2, 3, 4, 5, 6]
    assert {p.search_id.int - 1000 for p in plan.pairs if p.reason is Reason.BUNDLE_FULL} == {7, 8}
    small = plan_round([therapist()], searches[:2], TODAY)
    assert small.bundles == ()
    assert [d.reason for d in small.therapists_left_out] == [Reason.TOO_FEW_CANDIDATES]
    assert {d.reason for d in small.searches_left_out} == {Reason.NOT_CHOSEN}


def test_a_search_enters_several_bundles_up_to_its_limits() -> None:
    therapists = [therapist(n) for n in range(1, 6)]
    searches = [search(n, contact_budget=2 if n == 1 else 9) for n in range(1, 4)]
    plan = plan_round(therapists, searches, TODAY)
    counts = {
        n: sum(1 for b in plan.bundles for m in b.members if m.search_id.int - 1000 == n) for n in (1, 2, 3)
    }
    assert counts == {
        1: 2,
        2: 2,
        3: 2,
    }  # budget 2 for search 1; limit 3 open bundles minus 0 ... capped by search 1
    assert len(plan.bundles) == 2


def test_staff_bundle_may_hold_a_single_patient() -> None:
    chosen = therapist()
    plan = plan_staff_bundle(chosen.id, [chosen], [search(1), search(2, location=POTSDAM)], TODAY)
    assert plan.bundle is not None and [m.search_id.int - 1000 for m in plan.bundle.members] == [1]
    assert [(p.search_id.int - 1000, p.reason) for p in plan.pairs] == [(2, Reason.OUT_OF_REACH)]
    blocked = plan_staff_bundle(chosen.id, [replace(chosen, has_open_bundle=True)], [search(1)], TODAY)
    assert blocked.bundle is None and blocked.therapist_reason is Reason.OPEN_BUNDLE
    with pytest.raises(ValueError):
        plan_staff_bundle(chosen.id, [chosen], [], TODAY, size=7)
    picked = plan_staff_bundle(
        chosen.id, [chosen], [search(1), search(2)], TODAY, search_ids=[uuid.UUID(int=1002)]
    )
    assert picked.bundle is not None and [m.position for m in picked.bundle.members] == [1]


# ---------------------------------------------------------------- responses


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([MemberOutcome.ACCEPTED] * 3, ResponseType.FULL_ACCEPTANCE),
        (
            [MemberOutcome.ACCEPTED, MemberOutcome.REJECTED_OTHER, MemberOutcome.NO_RESPONSE],
            ResponseType.PARTIAL_ACCEPTANCE,
        ),
        ([MemberOutcome.REJECTED_CAPACITY, MemberOutcome.NO_RESPONSE], ResponseType.FULL_REJECTION),
        ([MemberOutcome.NO_RESPONSE] * 3, ResponseType.NO_RESPONSE),
        ([], ResponseType.NO_RESPONSE),
    ],
)
def test_response_type_from_the_new_counts(outcomes: list[MemberOutcome], expected: ResponseType) -> None:
    counts = count_outcomes(outcomes)
    assert counts.total == len(outcomes)
    assert response_type(counts) is expected


def test_cooling_date_and_member_validation() -> None:
    assert cooling_until(date(2026, 2, 10)) == date(2026, 3, 10)
    assert cooling_until(date(2026, 2, 10), MatchingConfig(cooling_days=7)) == date(2026, 2, 17)
    a, b, c = uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3)
    check_member_outcomes([a, b], {b: MemberOutcome.ACCEPTED, a: MemberOutcome.NO_RESPONSE})
    with pytest.raises(MemberMismatchError) as raised:
        check_member_outcomes([a, b], {a: MemberOutcome.ACCEPTED, c: MemberOutcome.ACCEPTED})
    assert raised.value.missing == [b] and raised.value.extra == [c]
    assert str(b) in str(raised.value) and str(c) in str(raised.value)


# ------------------------------------------------------------------ when a response may be dated

SENT = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


def test_responded_at_must_lie_between_the_sending_and_now_plus_a_small_skew() -> None:
    now = SENT + timedelta(days=3)
    for fine in (SENT, now, now + RESPONSE_CLOCK_SKEW, SENT + timedelta(hours=5)):
        check_responded_at(fine, sent_at=SENT, now=now)
    refused = {
        SENT - timedelta(seconds=1): "too_early",
        datetime(2031, 1, 1, tzinfo=UTC): "in_future",
        now + RESPONSE_CLOCK_SKEW + timedelta(seconds=1): "in_future",
    }
    for at, why in refused.items():
        with pytest.raises(FieldValidationError) as raised:
            check_responded_at(at, sent_at=SENT, now=now)
        [field] = raised.value.errors
        assert (field.field, field.code) == ("responded_at", why) and field.message
    # A bundle that was never sent takes no response anyway (409 later): only the future counts.
    check_responded_at(SENT - timedelta(days=400), sent_at=None, now=now)


@settings(max_examples=300)
@given(
    sent_offset=st.integers(min_value=-3 * 365 * 86400, max_value=0),
    answered_offset=st.integers(min_value=-4 * 365 * 86400, max_value=6 * 365 * 86400),
    cooling_days=st.integers(min_value=0, max_value=365),
)
def test_an_accepted_response_time_never_moves_cooling_past_today_or_before_the_sending(
    sent_offset: int, answered_offset: int, cooling_days: int
) -> None:
    """Whatever time staff give: refused, or cooling ends between the sending's cooling date
    and the cooling date of the server's now (plus the one day the skew can cross at midnight)."""
    now = datetime(2026, 11, 23, 23, 58, tzinfo=UTC)
    sent_at = now + timedelta(seconds=sent_offset)
    responded_at = sent_at + timedelta(seconds=answered_offset)
    config = MatchingConfig(cooling_days=cooling_days)
    try:
        check_responded_at(responded_at, sent_at=sent_at, now=now)
    except FieldValidationError:
        assert responded_at < sent_at or responded_at > now + RESPONSE_CLOCK_SKEW
        return
    assert sent_at <= responded_at <= now + RESPONSE_CLOCK_SKEW
    until = cooling_until(platform_today(responded_at), config)
    assert cooling_until(platform_today(sent_at), config) <= until
    assert until <= cooling_until(platform_today(now), config) + timedelta(days=1)
