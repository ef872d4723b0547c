"""The matching service's use cases against real PostgreSQL: searches, rounds, sending,
responses (every scenario of domain.md), expiry, reactions, concurrency."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from matching_world import NOW, World, reset_matching
from therapy_platform.contracts.practices import hashed_practice_key
from therapy_platform.matching.domain.bundles import (
    BundleQuery,
    BundleResponseRequest,
    BundleStatus,
    MemberResponse,
    MemberStatus,
    ResponseRecorded,
    RoundRequest,
    RoundResult,
    StaffBundleRequest,
)
from therapy_platform.matching.domain.models import Reason, SearchStatus
from therapy_platform.matching.domain.read_models import ProfileKind
from therapy_platform.matching.domain.responses import MemberOutcome, ResponseType
from therapy_platform.matching.domain.searches import (
    ContactRequest,
    ExclusionChange,
    SearchDraft,
    SearchPatch,
)
from therapy_platform.matching.use_cases import bundles as bundle_cases
from therapy_platform.matching.use_cases import searches as search_cases
from therapy_platform.platform.errors import BadRequestError, ConflictError, InvalidInputError, NotFoundError
from therapy_platform.therapists.domain.therapist import ContactOptOutReason

pytestmark = pytest.mark.integration


@pytest.fixture
def world(admin_engine: Engine, service_url: Callable[[str], str]) -> Iterator[World]:
    reset_matching(admin_engine)
    engine = create_engine(service_url("matching_service"), pool_size=5)
    yield World(engine)
    engine.dispose()


def events_of(world: World, event_type: str) -> list[dict[str, Any]]:
    with world.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT envelope FROM matching_service.outbox WHERE event_type = :t ORDER BY id"),
            {"t": event_type},
        )
        return [row[0] for row in rows]


def round_now(world: World, **request: object) -> RoundResult:
    return bundle_cases.run_round(
        world.uow(), RoundRequest.model_validate(request), actor="test", trigger="api", now=world.now
    ).value


def send(world: World, bundle_id: uuid.UUID) -> None:
    bundle_cases.send_bundle(world.uow(), bundle_id, actor="test", now=world.now)


def respond(
    world: World,
    bundle_id: uuid.UUID,
    outcomes: dict[uuid.UUID, MemberOutcome],
    *,
    now: datetime | None = None,
    **kw: object,
) -> ResponseRecorded:
    """Staff record the response at `now` (default: the world's time)."""
    request = BundleResponseRequest(
        members=[MemberResponse(search_id=s, outcome=o) for s, o in outcomes.items()],
        **kw,
    )
    return bundle_cases.record_response(
        world.uow(), bundle_id, request, actor="staff", now=now or world.now
    ).value


# ------------------------------------------------------------------ searches


def test_a_search_needs_a_known_located_patient_and_only_one_unfinished_search(world: World) -> None:
    with pytest.raises(NotFoundError, match="not known to the matching service"):
        search_cases.create_search(world.uow(), SearchDraft(patient_id=uuid.uuid4()), actor="t", now=NOW)
    unlocated = world.patient(postcode="99999")
    with pytest.raises(InvalidInputError, match="could not be located"):
        search_cases.create_search(world.uow(), SearchDraft(patient_id=unlocated.id), actor="t", now=NOW)
    patient = world.patient()
    search = world.search(patient)
    assert search.status == SearchStatus.ACTIVE and search.contacts_used == 0
    with pytest.raises(ConflictError, match="already has an unfinished search"):
        world.search(patient)
    assert [e["payload"]["status"] for e in events_of(world, "search.status_changed")] == ["active"]


def test_search_status_machine_exclusions_and_contacts(world: World) -> None:
    search = world.search()
    uow = world.uow
    paused = search_cases.change_search(
        uow(), search.id, SearchPatch(status="paused"), actor="s", now=NOW
    ).value
    assert paused.status == SearchStatus.PAUSED
    with pytest.raises(ConflictError, match="from paused to placed"):
        search_cases.change_search(
            uow(),
            search.id,
            SearchPatch(status="placed", placed_therapist_id=uuid.uuid4()),
            actor="s",
            now=NOW,
        )
    therapist = uuid.uuid4()
    changed = search_cases.change_search(
        uow(),
        search.id,
        SearchPatch(
            status="active", add_exclusions=[ExclusionChange(therapist_id=therapist, reason="bad experience")]
        ),
        actor="s",
        now=NOW,
    ).value
    assert changed.status == SearchStatus.ACTIVE and [e.therapist_id for e in changed.exclusions] == [
        therapist
    ]
    more = search_cases.add_contacts(uow(), search.id, ContactRequest(count=5), actor="s", now=NOW).value
    assert more.total_requested_contacts == 15
    cancelled = search_cases.change_search(
        uow(), search.id, SearchPatch(status="cancelled"), actor="s", now=NOW
    )
    assert cancelled.value.status == SearchStatus.CANCELLED
    with pytest.raises(ConflictError, match="cannot go from cancelled to active"):
        search_cases.change_search(uow(), search.id, SearchPatch(status="active"), actor="s", now=NOW)
    with pytest.raises(ConflictError, match="only to an active or paused"):
        search_cases.add_contacts(uow(), search.id, ContactRequest(count=1), actor="s", now=NOW)


# ------------------------------------------------------------------ rounds


def test_round_builds_one_bundle_per_practice_longest_waiting_first(world: World) -> None:
    therapist = world.therapist()
    waits = [10, 50, 30, 70, 20, 60, 40, 80]
    searches = {w: world.search(waited_days=w) for w in waits}
    dry = round_now(world, dry_run=True)
    assert dry.round_id is None and len(dry.bundles) == 1
    assert not dry.pairs_explained and dry.pairs == []  # an unlimited round does not explain its pairs
    limited = round_now(world, dry_run=True, therapist_ids=[therapist.id])
    assert limited.pairs_explained and not limited.pairs_truncated
    taken = {m.search_id for m in limited.bundles[0].members}
    assert {p.search_id for p in limited.pairs} == {s.id for s in searches.values()} - taken
    assert bundle_cases.list_bundles(world.uow(), BundleQuery(), now=NOW).value.total == 0
    result = round_now(world)
    [bundle] = result.bundles
    assert bundle.therapist_id == therapist.id and bundle.status == BundleStatus.DRAFT
    expected = [searches[w].id for w in sorted(waits, reverse=True)[:6]]
    assert [m.search_id for m in bundle.members] == expected
    assert round_now(world).bundles == []  # the practice has an open bundle now
    assert len(events_of(world, "bundle.created")) == 1
    search = search_cases.get_search(world.uow(), expected[0], now=NOW).value
    assert (
        search.contacts_used == 1 and search.open_bundles == 1 and search.bundles[0].reference.startswith("B")
    )


def test_practice_gets_one_bundle_addressed_to_its_owner(world: World) -> None:
    world.therapist(email="praxis@mueller-therapie.de", last_name="Schmidt")
    owner = world.therapist(email="praxis@mueller-therapie.de", last_name="Müller")
    for _ in range(3):
        world.search()
    [bundle] = round_now(world).bundles
    assert bundle.therapist_id == owner.id


def test_staff_bundle_for_a_chosen_therapist_may_be_small(world: World) -> None:
    therapist = world.therapist()
    search = world.search()
    # an automatic round never builds a bundle below the minimum size
    assert round_now(world, therapist_ids=[therapist.id]).bundles == []
    result = bundle_cases.staff_bundle(
        world.uow(), therapist.id, StaffBundleRequest(size=1, send_immediately=True), actor="s", now=NOW
    ).value
    assert result.bundle is not None and [m.search_id for m in result.bundle.members] == [search.id]
    assert result.bundle.status == BundleStatus.SENT
    addressee = events_of(world, "bundle.sent")[0]["payload"]["therapist"]
    assert addressee == {
        "id": str(therapist.id),
        "reachable_by_email": True,
        "reachable_by_phone": False,
        "phone_windows": {},
        "listed_in_directory": False,  # registered by hand: the inquiry names the source
    }  # no name or address: the communication service looks them up


# ------------------------------------------------------------------ responses


def _sent_bundle(
    world: World, n: int = 3, **therapist: object
) -> tuple[uuid.UUID, list[uuid.UUID], uuid.UUID]:
    t = world.therapist(**therapist)  # type: ignore[arg-type]
    ids = [world.search(waited_days=100 - i).id for i in range(n)]
    [bundle] = round_now(world, therapist_ids=[t.id], send_immediately=True).bundles
    assert bundle.bundle_id is not None
    return bundle.bundle_id, ids, t.id


def test_response_must_list_exactly_the_members_and_needs_a_sent_bundle(world: World) -> None:
    t = world.therapist()
    ids = [world.search().id for _ in range(3)]
    [draft] = round_now(world).bundles
    assert draft.bundle_id is not None
    with pytest.raises(ConflictError, match="only a sent bundle"):
        respond(world, draft.bundle_id, dict.fromkeys(ids, MemberOutcome.REJECTED_CAPACITY))
    send(world, draft.bundle_id)
    stranger = uuid.uuid4()
    with pytest.raises(BadRequestError) as error:
        respond(world, draft.bundle_id, {ids[0]: MemberOutcome.ACCEPTED, stranger: MemberOutcome.ACCEPTED})
    assert error.value.details == {"missing": sorted(map(str, ids[1:])), "extra": [str(stranger)]}
    del t


def test_mixed_response_counts_cooling_exclusion_repeat_and_conflicting_repeat(world: World) -> None:
    bundle_id, ids, therapist_id = _sent_bundle(world, 3)
    outcomes = {
        ids[0]: MemberOutcome.ACCEPTED,
        ids[1]: MemberOutcome.REJECTED_UNSUITABLE,
        ids[2]: MemberOutcome.NO_RESPONSE,
    }
    recorded = respond(world, bundle_id, outcomes)
    bundle = recorded.bundle
    assert (bundle.accepted_count, bundle.rejected_count, bundle.no_response_count) == (1, 1, 1)
    assert bundle.response_type == ResponseType.PARTIAL_ACCEPTANCE and bundle.status == BundleStatus.ANSWERED
    assert recorded.next_contact_allowed_on == NOW.date() + timedelta(days=28)
    assert recorded.exclusions_added == [ids[1]]
    assert [p.search_id for p in recorded.placements] == [ids[0]]
    excluded = search_cases.get_search(world.uow(), ids[1], now=NOW).value
    assert [e.therapist_id for e in excluded.exclusions] == [therapist_id]
    placed = search_cases.get_search(world.uow(), ids[0], now=NOW).value
    assert placed.status == SearchStatus.PLACED and placed.placed_therapist_id == therapist_id
    cooling = events_of(world, "cooling.period_started")
    assert cooling[0]["payload"]["next_contact_allowed_on"] == str(NOW.date() + timedelta(days=28))
    again = respond(world, bundle_id, outcomes)
    assert again.repeated and again.bundle.response_type == ResponseType.PARTIAL_ACCEPTANCE
    assert len(events_of(world, "bundle.response_received")) == 1
    with pytest.raises(ConflictError, match="different response"):
        respond(world, bundle_id, dict.fromkeys(ids, MemberOutcome.REJECTED_OTHER))


def test_first_acceptance_wins_later_one_is_a_conflict_with_alert_and_withdrawals(world: World) -> None:
    first = world.therapist(postcode="10115")
    second = world.therapist(postcode="10117")
    third = world.therapist(postcode="10119")
    shared = [world.search(waited_days=200 - i).id for i in range(3)]
    result = round_now(world, send_immediately=True)
    waiting = world.search(waited_days=5).id  # registered after the round: the follow-up's candidate
    by_therapist = {b.therapist_id: b for b in result.bundles}
    assert set(by_therapist) == {first.id, second.id, third.id}
    # the three searches sit in all three bundles (open-bundle limit 3)
    b1, b2, b3 = (by_therapist[t.id].bundle_id for t in (first, second, third))
    assert b1 and b2 and b3
    assert {m.search_id for m in by_therapist[first.id].members} == set(shared)

    def outcomes_for(bundle: uuid.UUID, accept: uuid.UUID) -> dict[uuid.UUID, MemberOutcome]:
        stored = bundle_cases.get_bundle(world.uow(), bundle, now=NOW).value
        return {
            m.search_id: MemberOutcome.ACCEPTED if m.search_id == accept else MemberOutcome.REJECTED_CAPACITY
            for m in stored.members
        }

    target = shared[0]
    won = respond(world, b1, outcomes_for(b1, target), responded_at=NOW)
    assert [p.search_id for p in won.placements] == [target]
    assert {w.bundle_id for w in won.withdrawals} == {b2, b3}
    withdrawn = bundle_cases.get_bundle(world.uow(), b2, now=NOW).value
    assert {m.search_id: m.status for m in withdrawn.members}[target] == MemberStatus.WITHDRAWN
    # b2's therapist answered an hour later; staff record it an hour after that
    lost = respond(
        world,
        b2,
        outcomes_for(b2, target),
        responded_at=NOW + timedelta(hours=1),
        now=NOW + timedelta(hours=2),
    )
    assert [c.search_id for c in lost.conflicts] == [target]
    assert lost.conflicts[0].placed_with_therapist_id == first.id
    member = {m.search_id: m for m in lost.bundle.members}[target]
    assert member.status == MemberStatus.CONFLICT
    alerts = bundle_cases.open_alerts(world.uow()).value
    assert [a.kind for a in alerts] == ["conflict"] and alerts[0].therapist_id == second.id
    follow_up = lost.conflicts[0].follow_up_bundle_id
    assert follow_up is not None
    offered = bundle_cases.get_bundle(world.uow(), follow_up, now=NOW).value
    assert (
        offered.kind == "follow_up"
        and offered.status == BundleStatus.SENT
        and offered.therapist_id == second.id
    )
    assert [m.search_id for m in offered.members] == [waiting]
    # the place fell through: back to active with a reason
    back = search_cases.change_search(
        world.uow(),
        target,
        SearchPatch(status="active", status_reason="patient moved away"),
        actor="s",
        now=NOW,
    ).value
    assert back.status == SearchStatus.ACTIVE and back.placed_therapist_id is None
    search_cases.change_search(
        world.uow(), target, SearchPatch(status="placed", placed_therapist_id=first.id), actor="s", now=NOW
    )
    with pytest.raises(ConflictError, match="only with a reason"):
        search_cases.change_search(world.uow(), target, SearchPatch(status="active"), actor="s", now=NOW)


def test_earlier_acceptance_recorded_later_still_wins(world: World) -> None:
    a = world.therapist(postcode="10115")
    b = world.therapist(postcode="10117")
    ids = [world.search(waited_days=90 - i).id for i in range(3)]
    result = round_now(world, send_immediately=True)
    bundles = {x.therapist_id: x.bundle_id for x in result.bundles}
    accept_first = dict.fromkeys(ids, MemberOutcome.REJECTED_OTHER) | {ids[0]: MemberOutcome.ACCEPTED}
    bundle_a, bundle_b = bundles[a.id], bundles[b.id]
    assert bundle_a and bundle_b
    # a answered two hours after the sending
    respond(
        world, bundle_a, accept_first, responded_at=NOW + timedelta(hours=2), now=NOW + timedelta(hours=2)
    )
    # b answered an hour earlier by phone but staff record it only now
    late = respond(
        world, bundle_b, accept_first, responded_at=NOW + timedelta(hours=1), now=NOW + timedelta(hours=3)
    )
    assert [p.therapist_id for p in late.placements] == [b.id]
    assert [c.therapist_id for c in late.conflicts] == [a.id]
    assert search_cases.get_search(world.uow(), ids[0], now=NOW).value.placed_therapist_id == b.id


# ------------------------------------------------------------------ expiry and reactions


def test_unanswered_bundles_expire_and_start_cooling(world: World) -> None:
    bundle_id, ids, therapist_id = _sent_bundle(world, 3)
    assert bundle_cases.expire_bundles(world.uow(), now=NOW + timedelta(days=13)).value == []
    later = NOW + timedelta(days=14, minutes=1)
    assert bundle_cases.expire_bundles(world.uow(), now=later).value == [bundle_id]
    bundle = bundle_cases.get_bundle(world.uow(), bundle_id, now=later).value
    assert bundle.status == BundleStatus.EXPIRED and {m.status for m in bundle.members} == {
        MemberStatus.NO_RESPONSE
    }
    assert bundle_cases.expire_bundles(world.uow(), now=later).value == []
    with world.uow() as uow:
        therapists, _ = uow.queries.round_inputs(therapist_ids=[therapist_id])
    assert therapists[0].next_contact_allowed_on == later.date() + timedelta(days=28)
    del ids


def test_blocked_therapist_drafts_are_discarded_and_contacts_given_back(world: World) -> None:
    therapist = world.therapist()
    ids = [world.search().id for _ in range(3)]
    [draft] = round_now(world).bundles
    assert search_cases.get_search(world.uow(), ids[0], now=NOW).value.contacts_used == 1
    with world.uow() as uow:  # a reaction runs in the consumer's transaction
        discarded = bundle_cases.discard_drafts_of_blocked_therapist(
            uow, therapist.id, now=NOW, reason="therapist blocked"
        ).value
        uow.commit()
    assert discarded == [draft.bundle_id]
    assert search_cases.get_search(world.uow(), ids[0], now=NOW).value.contacts_used == 0
    assert draft.bundle_id is not None
    assert (
        bundle_cases.get_bundle(world.uow(), draft.bundle_id, now=NOW).value.status == BundleStatus.DISCARDED
    )


def test_an_objection_in_the_read_model_keeps_the_therapist_and_practice_out_of_rounds(world: World) -> None:
    """`contact_opt_out` as therapist events carry it (GDPR Art. 21), read from the JSONB read
    model by the round's SQL: the therapist and the colleague sharing the mailbox get nothing."""
    mailbox = "gemeinschaftspraxis@example.org"
    objecting = world.therapist(email=mailbox)
    colleague = world.therapist(email=mailbox)
    for _ in range(3):
        world.search()
    [draft] = round_now(world, therapist_ids=[objecting.id, colleague.id]).bundles
    addressee = draft.therapist_id
    with world.uow() as uow:  # the reaction to the objection, in the consumer's transaction
        discarded = bundle_cases.discard_drafts_after_objection(
            uow,
            objecting.id if addressee == colleague.id else colleague.id,
            hashed_practice_key(mailbox),  # as therapist events carry the practice
            now=NOW,
        ).value
        uow.commit()
    assert discarded == [draft.bundle_id]  # whoever of the practice it was addressed to
    payload = objecting.opted_out(ContactOptOutReason.PHONE, now=NOW)
    world._write(ProfileKind.THERAPIST, payload.event_payload(), NOW)  # the later therapist.updated
    with world.uow() as uow:
        therapists, _ = uow.queries.round_inputs(therapist_ids=[objecting.id, colleague.id])
    assert {t.id: t.contact_opt_out for t in therapists} == {objecting.id: True, colleague.id: False}
    result = round_now(world, therapist_ids=[objecting.id, colleague.id])
    assert result.bundles == []
    assert {(t.therapist_id, t.reason) for t in result.therapists_left_out} == {
        (objecting.id, Reason.CONTACT_OPT_OUT),
        (colleague.id, Reason.PRACTICE_CONTACT_OPT_OUT),
    }


def test_erased_patient_search_is_cancelled_and_withdrawn(world: World) -> None:
    bundle_id, ids, _ = _sent_bundle(world, 4)
    patient_id = search_cases.get_search(world.uow(), ids[0], now=NOW).value.patient_id
    for expected in ([ids[0]], []):  # a redelivery finds nothing unfinished
        with world.uow() as uow:  # a reaction runs in the consumer's transaction
            assert search_cases.cancel_searches_of_erased_patient(uow, patient_id, now=NOW).value == expected
            uow.commit()
    bundle = bundle_cases.get_bundle(world.uow(), bundle_id, now=NOW).value
    assert {m.search_id: m.status for m in bundle.members}[ids[0]] == MemberStatus.WITHDRAWN
    [changed] = [
        e for e in events_of(world, "search.status_changed") if e["payload"]["status"] == "cancelled"
    ]
    assert changed["payload"]["withdrawals"][0]["bundle_id"] == str(bundle_id)


# ------------------------------------------------------------------ concurrency


def test_concurrent_rounds_never_double_book_a_practice_or_exceed_limits(world: World) -> None:
    for n in range(12):
        world.therapist(postcode=["10115", "10117", "10119", "10178"][n % 4], email=f"p{n % 8}@praxis.de")
    for i in range(40):
        world.search(waited_days=i + 1, budget=2)
    results: list[RoundResult] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        results.append(round_now(world))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2
    with world.engine.connect() as connection:
        open_per_practice = connection.execute(
            text(
                "SELECT practice_key, count(*) FROM matching_service.bundles "
                "WHERE status IN ('draft','sent') GROUP BY practice_key"
            )
        ).all()
        per_search = Counter(
            row[0]
            for row in connection.execute(text("SELECT search_id FROM matching_service.bundle_members")).all()
        )
    assert open_per_practice and all(count == 1 for _, count in open_per_practice)
    assert len(open_per_practice) == 8
    assert max(per_search.values()) <= 2  # contact budget 2
