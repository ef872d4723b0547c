"""A round's inputs as the set-based reads deliver them (one JSON document per input set; a
limited round's searches and bookkeeping in one statement): the bookkeeping each candidate
carries comes out right, whether the round is limited, or national with few searches (looked up
by id) or many (one pass over everything). Runs in a transaction that is rolled back."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, cast, create_engine, insert, update
from sqlalchemy.dialects.postgresql import JSONB

from therapy_platform.matching.adapters import round_inputs
from therapy_platform.matching.adapters.round_inputs import SqlRoundInputs
from therapy_platform.matching.adapters.tables import (
    bundle_members,
    bundles,
    patient_profiles,
    search_exclusions,
    searches,
    therapist_cooling,
    therapist_profiles,
)

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
BERLIN = {"latitude": 52.52, "longitude": 13.40, "precision": "postcode"}


@pytest.fixture
def connection(service_url: Callable[[str], str]) -> Iterator[Connection]:
    engine = create_engine(service_url("matching_service"))
    with engine.connect() as connection, connection.begin() as transaction:
        yield connection
        transaction.rollback()
    engine.dispose()


def _profile(table: Any, connection: Connection, entity_id: uuid.UUID, data: dict[str, Any]) -> None:
    connection.execute(
        insert(table).values(
            id=entity_id,
            data={"id": str(entity_id), **data},
            source_event_id=uuid.uuid4(),
            source_timestamp=NOW - timedelta(days=1),
            updated_at=NOW - timedelta(days=1),
        )
    )


def _bundle(connection: Connection, therapist_id: uuid.UUID, practice: str, status: str) -> uuid.UUID:
    bundle_id = uuid.uuid4()
    connection.execute(
        insert(bundles).values(
            id=bundle_id,
            therapist_id=therapist_id,
            practice_key=practice,
            kind="round",
            status=status,
            created_at=NOW - timedelta(days=5),
            created_by="test",
            updated_at=NOW - timedelta(days=5),
            applied_filters=[],
            skipped_filters=[],
        )
    )
    return bundle_id


@pytest.mark.parametrize("variant", ["limited", "national-by-id", "national-one-pass"])
def test_candidates_carry_cooling_open_bundles_contacts_practices_and_exclusions(
    connection: Connection, monkeypatch: pytest.MonkeyPatch, variant: str
) -> None:
    """A limited round reads its searches and their bookkeeping in one statement; a national
    one by id lists or, from 5,000 searches, in one pass over everything."""
    if variant == "national-one-pass":  # without seeding 5,000 searches
        monkeypatch.setattr(round_inputs, "_EVERYTHING_FROM", 1)
    practice = f"p:{uuid.uuid4().hex}"
    fresh, stale, busy = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for therapist_id, key in ((fresh, None), (stale, None), (busy, practice)):
        _profile(
            therapist_profiles,
            connection,
            therapist_id,
            {
                "status": "active",
                "postcode": "10115",
                "practice_key": key,
                "created_at": NOW.isoformat(),
                "location": BERLIN,
                "next_contact_allowed_on": "2026-12-01",
            },
        )
    # A cooling period matching started after the read model's update wins; an older one does not.
    connection.execute(
        insert(therapist_cooling).values(
            [
                {"therapist_id": fresh, "next_contact_allowed_on": date(2027, 1, 4), "set_at": NOW},
                {
                    "therapist_id": stale,
                    "next_contact_allowed_on": date(2027, 2, 1),
                    "set_at": NOW - timedelta(days=9),
                },
            ]
        )
    )
    patient, search = uuid.uuid4(), uuid.uuid4()
    _profile(
        patient_profiles,
        connection,
        patient,
        {"location": BERLIN, "max_travel_km": 10, "status": "searching"},
    )
    connection.execute(
        insert(searches).values(
            id=search,
            patient_id=patient,
            status="active",
            created_at=NOW - timedelta(days=30),
            updated_at=NOW - timedelta(days=1),
            total_requested_contacts=12,
        )
    )
    connection.execute(
        insert(search_exclusions).values(
            search_id=search, therapist_id=stale, reason="bad experience", excluded_at=NOW, excluded_by="test"
        )
    )
    earlier = f"p:{uuid.uuid4().hex}"
    answered = _bundle(connection, busy, earlier, "answered")
    sent = _bundle(connection, busy, practice, "sent")
    for position, (bundle_id, status) in enumerate(((answered, "rejected"), (sent, "pending")), start=1):
        connection.execute(
            insert(bundle_members).values(
                id=uuid.uuid4(),
                bundle_id=bundle_id,
                search_id=search,
                patient_id=patient,
                position=position,
                status=status,
            )
        )

    chosen = [fresh, stale, busy]
    if variant != "limited":  # a national round reads every active row: other tests' are set aside
        connection.execute(update(searches).where(searches.c.id != search).values(status="paused"))
        connection.execute(
            update(therapist_profiles)
            .where(therapist_profiles.c.id.not_in(chosen))
            .values(data=therapist_profiles.c.data.op("||")(cast({"status": "inactive"}, JSONB)))
        )
    therapists, found = SqlRoundInputs(connection).read(
        therapist_ids=chosen if variant == "limited" else None
    )

    by_id = {t.id: t for t in therapists}
    assert set(by_id) == set(chosen)
    assert by_id[fresh].next_contact_allowed_on == date(2027, 1, 4)
    assert by_id[stale].next_contact_allowed_on == date(2026, 12, 1)
    assert by_id[busy].has_open_bundle and not by_id[fresh].has_open_bundle
    [candidate] = [s for s in found if s.id == search]
    assert candidate.patient_id == patient
    assert candidate.created_at == NOW - timedelta(days=30)
    assert (candidate.contacts_used, candidate.open_bundle_count, candidate.contact_budget) == (2, 1, 12)
    assert candidate.contacted_practices == frozenset({practice, earlier})
    assert candidate.search_excluded_therapist_ids == frozenset({stale})
    assert candidate.max_travel_km == 10


def _seed_committed(engine: Any) -> tuple[list[uuid.UUID], list[uuid.UUID], list[uuid.UUID]]:
    """Three therapists and three searches (one with a contact and an exclusion), committed."""
    therapist_ids, search_ids, patient_ids = [], [], []
    with engine.begin() as connection:
        for number in range(3):
            therapist_id, patient_id, search_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
            _profile(
                therapist_profiles,
                connection,
                therapist_id,
                {
                    "status": "active",
                    "postcode": f"1011{number}",
                    "created_at": NOW.isoformat(),
                    "location": BERLIN,
                },
            )
            _profile(patient_profiles, connection, patient_id, {"location": BERLIN, "max_travel_km": 10})
            connection.execute(
                insert(searches).values(
                    id=search_id,
                    patient_id=patient_id,
                    status="active",
                    created_at=NOW - timedelta(days=number),
                    updated_at=NOW,
                    total_requested_contacts=12,
                )
            )
            therapist_ids.append(therapist_id)
            search_ids.append(search_id)
            patient_ids.append(patient_id)
        bundle_id = _bundle(connection, therapist_ids[0], f"p:{uuid.uuid4().hex}", "sent")
        connection.execute(
            insert(bundle_members).values(
                id=uuid.uuid4(),
                bundle_id=bundle_id,
                search_id=search_ids[0],
                patient_id=patient_ids[0],
                position=1,
                status="pending",
            )
        )
        connection.execute(
            insert(search_exclusions).values(
                search_id=search_ids[1],
                therapist_id=therapist_ids[2],
                reason="test",
                excluded_at=NOW,
                excluded_by="test",
            )
        )
    return therapist_ids, search_ids, patient_ids


def test_a_national_read_beside_a_second_connection_equals_the_read_on_one(
    service_url: Callable[[str], str], admin_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a pool of two, a national round reads its searches on a second connection while the
    first reads the therapists: the same candidates as on one connection. Not while the round's
    transaction has written anything, which the second connection could not see."""
    one = create_engine(service_url("matching_service"), pool_size=1, max_overflow=0)
    two = create_engine(service_url("matching_service"), pool_size=2, max_overflow=0)
    beside = []
    original = SqlRoundInputs._national_side_by_side

    def counted(self: SqlRoundInputs) -> Any:
        beside.append(True)
        return original(self)

    monkeypatch.setattr(SqlRoundInputs, "_national_side_by_side", counted)
    therapist_ids, search_ids, patient_ids = _seed_committed(two)
    try:
        with one.connect() as connection, connection.begin():
            alone = SqlRoundInputs(connection).read()
        assert not beside
        with two.connect() as connection, connection.begin():
            side_by_side = SqlRoundInputs(connection).read()
        assert beside == [True]
        assert sorted(side_by_side[0], key=lambda t: t.id) == sorted(alone[0], key=lambda t: t.id)
        assert sorted(side_by_side[1], key=lambda s: s.id) == sorted(alone[1], key=lambda s: s.id)
        mine = {s.id: s for s in side_by_side[1] if s.id in search_ids}
        assert set(mine) == set(search_ids)
        assert mine[search_ids[0]].open_bundle_count == 1
        assert mine[search_ids[1]].search_excluded_therapist_ids == frozenset({therapist_ids[2]})

        # A transaction that has written reads on its own connection, and sees its own writes.
        with two.connect() as connection, connection.begin() as transaction:
            connection.execute(update(searches).where(searches.c.id == search_ids[2]).values(status="paused"))
            _, found = SqlRoundInputs(connection).read()
            transaction.rollback()
        assert beside == [True]
        assert search_ids[2] not in {s.id for s in found}
    finally:
        with admin_engine.begin() as connection:
            connection.execute(bundle_members.delete().where(bundle_members.c.search_id.in_(search_ids)))
            connection.execute(
                search_exclusions.delete().where(search_exclusions.c.search_id.in_(search_ids))
            )
            connection.execute(bundles.delete().where(bundles.c.therapist_id.in_(therapist_ids)))
            connection.execute(searches.delete().where(searches.c.id.in_(search_ids)))
            connection.execute(therapist_profiles.delete().where(therapist_profiles.c.id.in_(therapist_ids)))
            connection.execute(patient_profiles.delete().where(patient_profiles.c.id.in_(patient_ids)))
        one.dispose()
        two.dispose()
