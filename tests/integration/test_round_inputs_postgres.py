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
