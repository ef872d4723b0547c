"""`therapist.deleted` in the matching service, with in-memory fakes: the read model keeps a
tombstone, open bundles close without a cooling period or a message to the therapist (drafts
discarded with contacts given back, sent bundles expired with pending members withdrawn), the
bundle rows lose the practice key (the email), and a redelivery changes nothing."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from matching_fakes import MatchingWorld

from therapy_platform.matching.bootstrap import profile_event_consumer
from therapy_platform.matching.domain.bundles import BundleStatus, MemberStatus, RoundRequest, RoundResult
from therapy_platform.matching.domain.read_models import ProfileKind
from therapy_platform.matching.domain.therapist_erasure import identifying_values
from therapy_platform.matching.use_cases import bundles as bundle_cases
from therapy_platform.matching.use_cases import searches as search_cases
from therapy_platform.platform.consumer import Delivery
from therapy_platform.platform.events import BusMessage, EventEnvelope, new_envelope


@pytest.fixture
def world() -> MatchingWorld:
    return MatchingWorld()


def deliver(world: MatchingWorld, envelope: EventEnvelope) -> dict[str, Any]:
    consumer = profile_event_consumer(world.service())
    body = json.dumps({"detail": BusMessage(key="k", envelope=envelope).model_dump(mode="json")})
    [handled] = consumer.handle_batch([Delivery(str(uuid.uuid4()), body, 1, "", "")]).handled
    return {"outcome": handled.outcome, **handled.detail}


def round_now(world: MatchingWorld, **request: object) -> RoundResult:
    return bundle_cases.run_round(
        world.uow(), RoundRequest.model_validate(request), actor="test", trigger="api", now=world.now
    ).value


def erased(therapist_id: uuid.UUID, world: MatchingWorld) -> EventEnvelope:
    payload = {"id": str(therapist_id), "erased_at": world.now.isoformat()}
    return new_envelope("therapist.deleted", "therapist-service", payload, now=world.now)


def test_identifying_values_hold_emails_full_names_and_phones_longest_first() -> None:
    values = identifying_values(
        [{"first_name": "Änne", "last_name": "Müller", "email": "P@M.example", "phone": "0241 1234"}, None],
        ["p@m.example", "not-an-email"],
    )
    assert values == ["P@M.example", "p@m.example", "Änne Müller", "0241 1234", "02411234"]


def test_a_sent_bundle_expires_with_members_withdrawn_and_no_cooling(world: MatchingWorld) -> None:
    therapist = world.therapist()
    ids = [world.search(waited_days=100 - i).id for i in range(3)]
    [planned] = round_now(world, therapist_ids=[therapist], send_immediately=True).bundles
    assert planned.bundle_id is not None

    result = deliver(world, erased(therapist, world))

    assert result["outcome"] == "applied" and result["acted_on"] == [str(planned.bundle_id)]
    bundle = bundle_cases.get_bundle(world.uow(), planned.bundle_id, now=world.now).value
    assert bundle.status == BundleStatus.EXPIRED
    assert {m.status for m in bundle.members} == {MemberStatus.WITHDRAWN}
    assert bundle.practice_key == f"therapist:{therapist}"
    assert therapist not in world.database.cooling
    cooling = world.database.events("cooling.period_started")
    assert not [e for e in cooling if e.payload["therapist_id"] == str(therapist)]
    assert not world.database.events("bundle.sent")  # the addressee's contact data is gone
    assert [e.payload["id"] for e in world.database.events("bundle.expired")] == [str(planned.bundle_id)]
    assert world.database.live_profile(ProfileKind.THERAPIST, therapist) is None
    for search_id in ids:  # back to waiting: no open bundle, still active
        view = search_cases.get_search(world.uow(), search_id, now=world.now).value
        assert view.status.value == "active" and view.open_bundles == 0
    # A redelivery is a duplicate; a second erasure event finds nothing open.
    assert deliver(world, erased(therapist, world))["acted_on"] == []
    late = new_envelope(
        "therapist.updated", "therapist-service", {"id": str(therapist)}, now=world.now - timedelta(days=1)
    )
    assert deliver(world, late)["changed"] is False


def test_a_draft_is_discarded_and_contacts_given_back(world: MatchingWorld) -> None:
    therapist = world.therapist()
    ids = [world.search().id for _ in range(3)]
    [draft] = round_now(world).bundles
    assert search_cases.get_search(world.uow(), ids[0], now=world.now).value.contacts_used == 1

    deliver(world, erased(therapist, world))

    assert draft.bundle_id is not None
    bundle = bundle_cases.get_bundle(world.uow(), draft.bundle_id, now=world.now).value
    assert bundle.status == BundleStatus.DISCARDED and bundle.discard_reason == "therapist erased on request"
    assert search_cases.get_search(world.uow(), ids[0], now=world.now).value.contacts_used == 0
