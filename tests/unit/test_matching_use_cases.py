"""The matching use cases with in-memory adapters: searches, rounds (incl. dry runs), staff
bundles, sending, responses (placements, conflicts, withdrawals, cooling), expiry and the
reactions to erased patients and blocked therapists. The same scenarios run against PostgreSQL
in tests/integration/test_matching_service.py (which also proves SQL and concurrency)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from matching_fakes import MatchingWorld

from therapy_platform.matching.bootstrap import profile_event_consumer
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
from therapy_platform.matching.domain.models import SearchStatus
from therapy_platform.matching.domain.read_models import ProfileKind
from therapy_platform.matching.domain.responses import MemberOutcome, ResponseType
from therapy_platform.matching.domain.searches import (
    ContactRequest,
    ExclusionChange,
    SearchDraft,
    SearchPatch,
    SearchQuery,
)
from therapy_platform.matching.use_cases import bundles as bundle_cases
from therapy_platform.matching.use_cases import searches as search_cases
from therapy_platform.platform.consumer import Delivery
from therapy_platform.platform.errors import BadRequestError, ConflictError, InvalidInputError, NotFoundError
from therapy_platform.platform.events import BusMessage, EventEnvelope, new_envelope


@pytest.fixture
def world() -> MatchingWorld:
    return MatchingWorld()


def payloads(world: MatchingWorld, event_type: str) -> list[dict[str, Any]]:
    return [e.payload for e in world.database.events(event_type)]


def round_now(world: MatchingWorld, **request: object) -> RoundResult:
    return bundle_cases.run_round(
        world.uow(), RoundRequest.model_validate(request), actor="test", trigger="api", now=world.now
    ).value


def respond(
    world: MatchingWorld,
    bundle_id: uuid.UUID,
    outcomes: dict[uuid.UUID, MemberOutcome],
    *,
    now: datetime | None = None,
    **kw: Any,
) -> ResponseRecorded:
    """Staff record the response at `now` (default: the world's time)."""
    request = BundleResponseRequest(
        members=[MemberResponse(search_id=s, outcome=o) for s, o in outcomes.items()], **kw
    )
    return bundle_cases.record_response(
        world.uow(), bundle_id, request, actor="staff", now=now or world.now
    ).value


def sent_bundle(
    world: MatchingWorld, n: int = 3, **therapist: Any
) -> tuple[uuid.UUID, list[uuid.UUID], uuid.UUID]:
    t = world.therapist(**therapist)
    ids = [world.search(waited_days=100 - i).id for i in range(n)]
    [bundle] = round_now(world, therapist_ids=[t], send_immediately=True).bundles
    assert bundle.bundle_id is not None
    return bundle.bundle_id, ids, t


def deliver(world: MatchingWorld, envelope: EventEnvelope) -> dict[str, Any]:
    consumer = profile_event_consumer(world.service())
    body = json.dumps({"detail": BusMessage(key="k", envelope=envelope).model_dump(mode="json")})
    [handled] = consumer.handle_batch([Delivery(str(uuid.uuid4()), body, 1, "", "")]).handled
    return {"outcome": handled.outcome, **handled.detail}


# ------------------------------------------------------------------ searches


def test_a_search_needs_a_known_ready_patient_and_only_one_unfinished_search(world: MatchingWorld) -> None:
    now = world.now
    with pytest.raises(NotFoundError, match="not known to the matching service"):
        search_cases.create_search(world.uow(), SearchDraft(patient_id=uuid.uuid4()), actor="t", now=now)
    unlocated = world.patient(
        postcode="99999", location={"latitude": None, "longitude": None, "precision": "unknown"}
    )
    with pytest.raises(InvalidInputError, match="could not be located"):
        search_cases.create_search(world.uow(), SearchDraft(patient_id=unlocated), actor="t", now=now)
    patient = world.patient()
    search = world.search(patient)
    assert search.status == SearchStatus.ACTIVE and search.contacts_used == 0
    with pytest.raises(ConflictError, match="already has an unfinished search"):
        world.search(patient)
    assert [p["status"] for p in payloads(world, "search.status_changed")] == ["active"]
    # published right after the commit, and only what was committed
    assert [e.event_type for e in world.published] == ["search.created", "search.status_changed"]
    assert [a.action for a in world.database.audit] == ["search.created"]


def test_an_erased_patient_gets_no_search(world: MatchingWorld) -> None:
    patient = world.patient()
    world.database.profiles[next(iter(world.database.profiles))][patient].data = None
    with pytest.raises(ConflictError, match="was erased"):
        world.search(patient)


def test_search_status_machine_exclusions_and_contacts(world: MatchingWorld) -> None:
    search, now, uow = world.search(), world.now, world.uow
    paused = search_cases.change_search(
        uow(), search.id, SearchPatch(status="paused"), actor="s", now=now
    ).value
    assert paused.status == SearchStatus.PAUSED
    with pytest.raises(ConflictError, match="from paused to placed"):
        search_cases.change_search(
            uow(),
            search.id,
            SearchPatch(status="placed", placed_therapist_id=uuid.uuid4()),
            actor="s",
            now=now,
        )
    therapist = uuid.uuid4()
    patch = SearchPatch(
        status="active", add_exclusions=[ExclusionChange(therapist_id=therapist, reason="bad experience")]
    )
    changed = search_cases.change_search(uow(), search.id, patch, actor="s", now=now).value
    assert changed.status == SearchStatus.ACTIVE and [e.therapist_id for e in changed.exclusions] == [
        therapist
    ]
    with pytest.raises(ConflictError, match="is not excluded"):
        search_cases.change_search(
            uow(), search.id, SearchPatch(remove_exclusions=[uuid.uuid4()]), actor="s", now=now
        )
    readmitted = search_cases.change_search(
        uow(), search.id, SearchPatch(remove_exclusions=[therapist]), actor="s", now=now
    ).value
    assert readmitted.exclusions == []
    more = search_cases.add_contacts(uow(), search.id, ContactRequest(count=5), actor="s", now=now).value
    assert more.total_requested_contacts == 15
    cancelled = search_cases.change_search(
        uow(), search.id, SearchPatch(status="cancelled"), actor="s", now=now
    )
    assert cancelled.value.status == SearchStatus.CANCELLED
    with pytest.raises(ConflictError, match="cannot go from cancelled to active"):
        search_cases.change_search(uow(), search.id, SearchPatch(status="active"), actor="s", now=now)
    with pytest.raises(ConflictError, match="only to an active or paused"):
        search_cases.add_contacts(uow(), search.id, ContactRequest(count=1), actor="s", now=now)


def test_a_patch_that_changes_nothing_writes_nothing(world: MatchingWorld) -> None:
    search = world.search(notes=None)
    events = len(world.database.outbox)
    same = search_cases.change_search(
        world.uow(), search.id, SearchPatch(notes=None), actor="s", now=world.now
    )
    assert same.events == () and len(world.database.outbox) == events


def test_reactivating_while_another_search_is_unfinished_is_a_conflict(world: MatchingWorld) -> None:
    patient = world.patient()
    first = world.search(patient)
    search_cases.change_search(
        world.uow(), first.id, SearchPatch(status="cancelled"), actor="s", now=world.now
    )
    world.search(patient)  # a new one may start now
    # a cancelled search is final; a paused one going active again collides instead
    with pytest.raises(ConflictError):
        search_cases.change_search(
            world.uow(), first.id, SearchPatch(status="active"), actor="s", now=world.now
        )


def test_searches_list_filters_sorts_and_pages(world: MatchingWorld) -> None:
    old = world.search(waited_days=90, postcode="52062")
    world.search(waited_days=10)
    page = search_cases.list_searches(
        world.uow(), SearchQuery(waiting_longer_than_days=30), now=world.now
    ).value
    assert [s.id for s in page.items] == [old.id] and page.total == 1


# ------------------------------------------------------------------ rounds


def test_round_builds_one_bundle_per_practice_longest_waiting_first(world: MatchingWorld) -> None:
    therapist = world.therapist()
    waits = [10, 50, 30, 70, 20, 60, 40, 80]
    searches = {w: world.search(waited_days=w) for w in waits}
    dry = round_now(world, dry_run=True)
    assert dry.round_id is None and len(dry.bundles) == 1
    assert not dry.pairs_explained and dry.pairs == []
    limited = round_now(world, dry_run=True, therapist_ids=[therapist])
    assert limited.pairs_explained and not limited.pairs_truncated
    taken = {m.search_id for m in limited.bundles[0].members}
    assert {p.search_id for p in limited.pairs} == {s.id for s in searches.values()} - taken
    assert bundle_cases.list_bundles(world.uow(), BundleQuery(), now=world.now).value.total == 0
    published = len(world.published)
    result = round_now(world)
    [bundle] = result.bundles
    assert bundle.therapist_id == therapist and bundle.status == BundleStatus.DRAFT
    expected = [searches[w].id for w in sorted(waits, reverse=True)[:6]]
    assert [m.search_id for m in bundle.members] == expected
    assert round_now(world).bundles == []  # the practice has an open bundle now
    assert len(payloads(world, "bundle.created")) == 1
    assert [e.event_type for e in world.published[published:]] == ["bundle.created"]
    search = search_cases.get_search(world.uow(), expected[0], now=world.now).value
    assert (
        search.contacts_used == 1 and search.open_bundles == 1 and search.bundles[0].reference.startswith("B")
    )
    assert result.round_id is not None
    record = world.database.rounds[result.round_id]
    assert record.summary == {
        "bundles": 1,
        "members": 6,
        "therapists_considered": 1,
        "searches_considered": 8,
        "sent": False,
        "regions_paused": [],
    }


def test_practice_gets_one_bundle_addressed_to_its_owner(world: MatchingWorld) -> None:
    world.therapist(email="praxis@mueller-therapie.de", last_name="Schmidt")
    owner = world.therapist(email="praxis@mueller-therapie.de", last_name="Müller")
    for _ in range(3):
        world.search()
    [bundle] = round_now(world).bundles
    assert bundle.therapist_id == owner


def test_staff_bundle_for_a_chosen_therapist_may_be_small(world: MatchingWorld) -> None:
    therapist = world.therapist()
    search = world.search()
    assert round_now(world, therapist_ids=[therapist]).bundles == []
    dry = bundle_cases.staff_bundle(
        world.uow(), therapist, StaffBundleRequest(size=1, dry_run=True), actor="s", now=world.now
    ).value
    assert dry.dry_run and dry.bundle is not None and dry.bundle.bundle_id is None
    with pytest.raises(ConflictError, match="not active or not within reach"):
        bundle_cases.staff_bundle(
            world.uow(), therapist, StaffBundleRequest(search_ids=[uuid.uuid4()]), actor="s", now=world.now
        )
    with pytest.raises(NotFoundError):
        bundle_cases.staff_bundle(world.uow(), uuid.uuid4(), StaffBundleRequest(), actor="s", now=world.now)
    request = StaffBundleRequest(size=1, send_immediately=True, notes="bitte bald")
    result = bundle_cases.staff_bundle(world.uow(), therapist, request, actor="s", now=world.now).value
    assert result.bundle is not None and [m.search_id for m in result.bundle.members] == [search.id]
    assert result.bundle.status == BundleStatus.SENT
    [sent] = payloads(world, "bundle.sent")
    assert sent["therapist"]["id"] == str(therapist) and "notes" not in sent  # staff's notes stay here
    [stored] = world.database.bundles.values()
    assert stored.notes == "bitte bald"
    assert sent["members"][0]["patient"]["reference"].endswith("-1")
    assert "Petra" not in json.dumps(sent)  # no patient names leave the matching service


def test_eligible_therapists_one_row_per_practice(world: MatchingWorld) -> None:
    world.therapist(email="praxis@x.de", last_name="Schmidt")
    owner = world.therapist(email="praxis@x.de", last_name="X")
    solo = world.therapist(email=None, last_name="Solo")
    world.therapist(postcode="52062")
    page = bundle_cases.eligible_therapists(world.uow(), "10", now=world.now).value
    assert [r.therapist_id for r in page.items] == [owner, solo]  # with email first
    assert page.items[0].practice_size == 2 and not page.items[1].has_email


# ------------------------------------------------------------------ sending


def test_sending_checks_the_state_and_the_therapist(world: MatchingWorld) -> None:
    therapist = world.therapist(email=None)
    for _ in range(3):
        world.search()
    [draft] = round_now(world).bundles
    assert draft.bundle_id is not None
    sent = bundle_cases.send_bundle(world.uow(), draft.bundle_id, actor="s", now=world.now).value
    assert sent.status == BundleStatus.SENT and sent.channel == "phone"
    assert all(m.patient is not None and m.patient.distance_band != "unknown" for m in sent.members)
    with pytest.raises(ConflictError, match="from sent to sent"):
        bundle_cases.send_bundle(world.uow(), draft.bundle_id, actor="s", now=world.now)
    with pytest.raises(NotFoundError):
        bundle_cases.send_bundle(world.uow(), uuid.uuid4(), actor="s", now=world.now)
    del therapist


def test_a_blocked_therapists_bundle_is_not_sent(world: MatchingWorld) -> None:
    therapist = world.therapist()
    for _ in range(3):
        world.search()
    [draft] = round_now(world).bundles
    assert draft.bundle_id is not None
    world.database.profiles[next(reversed(world.database.profiles))][therapist].data["status"] = "blocked"  # type: ignore[index]
    with pytest.raises(ConflictError, match="its therapist is blocked"):
        bundle_cases.send_bundle(world.uow(), draft.bundle_id, actor="s", now=world.now)


# ------------------------------------------------------------------ responses


def test_response_must_list_exactly_the_members_and_needs_a_sent_bundle(world: MatchingWorld) -> None:
    world.therapist()
    ids = [world.search().id for _ in range(3)]
    [draft] = round_now(world).bundles
    assert draft.bundle_id is not None
    with pytest.raises(ConflictError, match="only a sent bundle"):
        respond(world, draft.bundle_id, dict.fromkeys(ids, MemberOutcome.REJECTED_CAPACITY))
    bundle_cases.send_bundle(world.uow(), draft.bundle_id, actor="s", now=world.now)
    stranger = uuid.uuid4()
    with pytest.raises(BadRequestError) as error:
        respond(world, draft.bundle_id, {ids[0]: MemberOutcome.ACCEPTED, stranger: MemberOutcome.ACCEPTED})
    assert error.value.details == {"missing": sorted(map(str, ids[1:])), "extra": [str(stranger)]}


def test_mixed_response_counts_cooling_exclusion_repeat_and_conflicting_repeat(world: MatchingWorld) -> None:
    bundle_id, ids, therapist_id = sent_bundle(world, 3)
    outcomes = {
        ids[0]: MemberOutcome.ACCEPTED,
        ids[1]: MemberOutcome.REJECTED_UNSUITABLE,
        ids[2]: MemberOutcome.NO_RESPONSE,
    }
    recorded = respond(world, bundle_id, outcomes)
    bundle = recorded.bundle
    assert (bundle.accepted_count, bundle.rejected_count, bundle.no_response_count) == (1, 1, 1)
    assert bundle.response_type == ResponseType.PARTIAL_ACCEPTANCE and bundle.status == BundleStatus.ANSWERED
    assert recorded.next_contact_allowed_on == world.now.date() + timedelta(days=28)
    assert recorded.exclusions_added == [ids[1]]
    assert [p.search_id for p in recorded.placements] == [ids[0]]
    excluded = search_cases.get_search(world.uow(), ids[1], now=world.now).value
    assert [e.therapist_id for e in excluded.exclusions] == [therapist_id]
    placed = search_cases.get_search(world.uow(), ids[0], now=world.now).value
    assert placed.status == SearchStatus.PLACED and placed.placed_therapist_id == therapist_id
    [cooling] = payloads(world, "cooling.period_started")
    assert cooling["next_contact_allowed_on"] == str(world.now.date() + timedelta(days=28))
    assert world.database.cooling[therapist_id].until == world.now.date() + timedelta(days=28)
    again = respond(world, bundle_id, outcomes)
    assert again.repeated and again.bundle.response_type == ResponseType.PARTIAL_ACCEPTANCE
    assert len(payloads(world, "bundle.response_received")) == 1
    with pytest.raises(ConflictError, match="different response"):
        respond(world, bundle_id, dict.fromkeys(ids, MemberOutcome.REJECTED_OTHER))


def test_first_acceptance_wins_later_one_is_a_conflict_with_alert_and_follow_up(world: MatchingWorld) -> None:
    first, second, third = (world.therapist(postcode=p) for p in ("10115", "10117", "10119"))
    shared = [world.search(waited_days=200 - i).id for i in range(3)]
    result = round_now(world, send_immediately=True)
    waiting = world.search(waited_days=5).id  # registered after the round: the follow-up's candidate
    by_therapist = {b.therapist_id: b.bundle_id for b in result.bundles}
    b1, b2, b3 = by_therapist[first], by_therapist[second], by_therapist[third]
    assert b1 and b2 and b3

    def outcomes_for(bundle: uuid.UUID, accept: uuid.UUID) -> dict[uuid.UUID, MemberOutcome]:
        stored = bundle_cases.get_bundle(world.uow(), bundle, now=world.now).value
        return {
            m.search_id: MemberOutcome.ACCEPTED if m.search_id == accept else MemberOutcome.REJECTED_CAPACITY
            for m in stored.members
        }

    target = shared[0]
    won = respond(world, b1, outcomes_for(b1, target), responded_at=world.now)
    assert [p.search_id for p in won.placements] == [target]
    assert {w.bundle_id for w in won.withdrawals} == {b2, b3}
    [changed] = [p for p in payloads(world, "search.status_changed") if p["status"] == "placed"]
    assert {w["bundle_id"] for w in changed["withdrawals"]} == {str(b2), str(b3)}
    withdrawn = bundle_cases.get_bundle(world.uow(), b2, now=world.now).value
    assert {m.search_id: m.status for m in withdrawn.members}[target] == MemberStatus.WITHDRAWN
    # b2's therapist answered an hour later; staff record it an hour after that
    lost = respond(
        world,
        b2,
        outcomes_for(b2, target),
        responded_at=world.now + timedelta(hours=1),
        now=world.now + timedelta(hours=2),
    )
    assert [c.search_id for c in lost.conflicts] == [target]
    assert lost.conflicts[0].placed_with_therapist_id == first
    assert {m.search_id: m for m in lost.bundle.members}[target].status == MemberStatus.CONFLICT
    assert lost.bundle.needs_follow_up
    alerts = bundle_cases.open_alerts(world.uow()).value
    assert [a.kind for a in alerts] == ["conflict"] and alerts[0].therapist_id == second
    follow_up = lost.conflicts[0].follow_up_bundle_id
    assert follow_up is not None
    offered = bundle_cases.get_bundle(world.uow(), follow_up, now=world.now).value
    assert (
        offered.kind == "follow_up" and offered.status == BundleStatus.SENT and offered.therapist_id == second
    )
    assert [m.search_id for m in offered.members] == [waiting]
    back = search_cases.change_search(
        world.uow(),
        target,
        SearchPatch(status="active", status_reason="patient moved away"),
        actor="s",
        now=world.now,
    ).value
    assert back.status == SearchStatus.ACTIVE and back.placed_therapist_id is None
    search_cases.change_search(
        world.uow(), target, SearchPatch(status="placed", placed_therapist_id=first), actor="s", now=world.now
    )
    with pytest.raises(ConflictError, match="only with a reason"):
        search_cases.change_search(
            world.uow(), target, SearchPatch(status="active"), actor="s", now=world.now
        )


def test_earlier_acceptance_recorded_later_still_wins(world: MatchingWorld) -> None:
    a = world.therapist(postcode="10115")
    b = world.therapist(postcode="10117")
    ids = [world.search(waited_days=90 - i).id for i in range(3)]
    bundles = {x.therapist_id: x.bundle_id for x in round_now(world, send_immediately=True).bundles}
    accept_first = dict.fromkeys(ids, MemberOutcome.REJECTED_OTHER) | {ids[0]: MemberOutcome.ACCEPTED}
    bundle_a, bundle_b = bundles[a], bundles[b]
    assert bundle_a and bundle_b
    # a answered two hours after the sending; b an hour earlier by phone, but staff record it later
    respond(
        world,
        bundle_a,
        accept_first,
        responded_at=world.now + timedelta(hours=2),
        now=world.now + timedelta(hours=2),
    )
    late = respond(
        world,
        bundle_b,
        accept_first,
        responded_at=world.now + timedelta(hours=1),
        now=world.now + timedelta(hours=3),
    )
    assert [p.therapist_id for p in late.placements] == [b]
    assert [c.therapist_id for c in late.conflicts] == [a]
    assert search_cases.get_search(world.uow(), ids[0], now=world.now).value.placed_therapist_id == b
    earlier = bundle_cases.get_bundle(world.uow(), bundle_a, now=world.now).value
    assert {m.search_id: m.status for m in earlier.members}[ids[0]] == MemberStatus.CONFLICT


# ------------------------------------------------------------------ expiry and reactions


def test_unanswered_bundles_expire_in_batches_and_start_cooling(world: MatchingWorld) -> None:
    bundle_id, _, therapist_id = sent_bundle(world, 3)
    assert bundle_cases.expire_all_due(world.uow(), now=world.now + timedelta(days=13)).value == []
    later = world.now + timedelta(days=14, minutes=1)
    assert bundle_cases.expire_all_due(world.uow(), now=later).value == [bundle_id]
    bundle = bundle_cases.get_bundle(world.uow(), bundle_id, now=later).value
    assert bundle.status == BundleStatus.EXPIRED
    assert {m.status for m in bundle.members} == {MemberStatus.NO_RESPONSE}
    assert bundle_cases.expire_all_due(world.uow(), now=later).value == []
    with world.uow() as uow:
        therapists, _ = uow.queries.round_inputs(therapist_ids=[therapist_id])
    assert therapists[0].next_contact_allowed_on == later.date() + timedelta(days=28)
    [expired] = payloads(world, "bundle.expired")
    assert expired["status"] == "expired" and expired["response_type"] == "no_response"


def test_blocked_therapist_drafts_are_discarded_and_contacts_given_back(world: MatchingWorld) -> None:
    therapist = world.therapist()
    ids = [world.search().id for _ in range(3)]
    [draft] = round_now(world).bundles
    assert search_cases.get_search(world.uow(), ids[0], now=world.now).value.contacts_used == 1
    blocked = new_envelope(
        "therapist.blocked",
        "therapist-service",
        {"id": str(therapist), "status": "blocked", "block_reason": "x"},
    )
    assert deliver(world, blocked) == {
        "outcome": "applied",
        "changed": True,
        "acted_on": [str(draft.bundle_id)],
    }
    assert deliver(world, blocked)["outcome"] == "duplicate"
    assert search_cases.get_search(world.uow(), ids[0], now=world.now).value.contacts_used == 0
    assert draft.bundle_id is not None
    discarded = bundle_cases.get_bundle(world.uow(), draft.bundle_id, now=world.now).value
    assert discarded.status == BundleStatus.DISCARDED and discarded.discard_reason == "therapist blocked: x"


def test_an_objection_discards_the_practices_drafts_and_later_rounds_skip_it(world: MatchingWorld) -> None:
    """GDPR Art. 21: a `therapist.*` event with `contact_opt_out` discards every draft to the
    therapist's practice (one mailbox) made before it arrived, even one addressed to a colleague,
    and no later round addresses the practice."""
    shared = "gemeinschaftspraxis@example.org"
    first, second = world.therapist(email=shared), world.therapist(email=shared)
    ids = [world.search().id for _ in range(3)]
    [draft] = round_now(world).bundles
    objecting = first if draft.therapist_id == second else second  # the colleague of the addressee
    profile = dict(world.database.live_profile(ProfileKind.THERAPIST, objecting) or {})
    objected = new_envelope("therapist.updated", "therapist-service", {**profile, "contact_opt_out": True})
    assert deliver(world, objected)["acted_on"] == [str(draft.bundle_id)]
    assert draft.bundle_id is not None
    discarded = bundle_cases.get_bundle(world.uow(), draft.bundle_id, now=world.now).value
    assert discarded.status == BundleStatus.DISCARDED
    assert discarded.discard_reason == "therapist objected to further inquiries"
    assert search_cases.get_search(world.uow(), ids[0], now=world.now).value.contacts_used == 0
    again = round_now(world)
    assert again.bundles == []
    assert {(t.therapist_id, t.reason) for t in again.therapists_left_out} == {
        (objecting, "contact_opt_out"),
        (draft.therapist_id, "practice_contact_opt_out"),
    }


def test_erased_patient_search_is_cancelled_and_withdrawn(world: MatchingWorld) -> None:
    bundle_id, ids, _ = sent_bundle(world, 4)
    patient_id = search_cases.get_search(world.uow(), ids[0], now=world.now).value.patient_id
    erased = new_envelope("patient.deleted", "patient-service", {"id": str(patient_id)})
    assert deliver(world, erased)["acted_on"] == [str(ids[0])]
    assert (
        deliver(world, new_envelope("patient.deleted", "patient-service", {"id": str(patient_id)}))[
            "acted_on"
        ]
        == []
    )
    bundle = bundle_cases.get_bundle(world.uow(), bundle_id, now=world.now).value
    assert {m.search_id: m.status for m in bundle.members}[ids[0]] == MemberStatus.WITHDRAWN
    [changed] = [p for p in payloads(world, "search.status_changed") if p["status"] == "cancelled"]
    assert changed["withdrawals"][0]["bundle_id"] == str(bundle_id)
    late = new_envelope(
        "patient.updated", "patient-service", {"id": str(patient_id)}, now=world.now + timedelta(days=1)
    )
    assert deliver(world, late)["changed"] is False  # the tombstone wins


def test_older_profile_events_never_overwrite_newer_ones(world: MatchingWorld) -> None:
    entity = str(uuid.uuid4())
    newer = new_envelope("patient.updated", "p", {"id": entity, "max_travel_km": 2}, now=world.now)
    older = new_envelope(
        "patient.created", "p", {"id": entity, "max_travel_km": 1}, now=world.now - timedelta(minutes=1)
    )
    assert deliver(world, newer)["changed"] and not deliver(world, older)["changed"]
    assert world.database.live_profile(next(iter(world.database.profiles)), uuid.UUID(entity)) == {
        "id": entity,
        "max_travel_km": 2,
    }


def test_the_read_model_keeps_only_the_fields_the_contract_declares(world: MatchingWorld) -> None:
    entity = str(uuid.uuid4())
    sneaky = {"id": entity, "postcode": "10115", "last_name": "Weiß", "email": "w@example.org", "notes": "x"}
    assert deliver(world, new_envelope("patient.created", "p", sneaky, now=world.now))["changed"]
    kept = world.database.live_profile(next(iter(world.database.profiles)), uuid.UUID(entity))
    assert kept == {"id": entity, "postcode": "10115"}


def test_a_profile_event_without_an_id_fails_without_a_trace(world: MatchingWorld) -> None:
    assert deliver(world, new_envelope("patient.updated", "p", {"name": "x"}))["outcome"] == "failed"
    assert world.database.processed_events == {}
