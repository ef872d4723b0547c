"""Reach by travel time against real PostgreSQL (docs/matching.md "Reach by travel time"):
patients limited to 30 minutes by public transport, written into the matching read model as
their `patient.*` events carry them, read by the round's SQL reader (the regional read widens
its box by the minutes' search radius), matched only with the practice the estimate puts within
30 minutes, and the dry run says so. The patient service's table keeps the new fields."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from matching_world import World, reset_matching
from therapy_platform.matching.domain.bundles import RoundRequest, RoundResult
from therapy_platform.matching.domain.models import Reason
from therapy_platform.matching.use_cases import bundles as bundle_cases
from therapy_platform.platform.feature_flags import FixedFlags, Flag
from therapy_platform.platform.geography.locations import (
    AreaDensity,
    TravelMode,
    distance_km,
    estimate_minutes,
)
from therapy_platform.platform.geography.postcodes import postcode_directory

pytestmark = pytest.mark.integration

HOME = "10117"  # Berlin Mitte (urban)
NEAR, FAR = "10999", "12529"  # Kreuzberg (3.6 km, 24 min), Schönefeld (18 km, 59 min)


@pytest.fixture
def world(admin_engine: Engine, service_url: Callable[[str], str]) -> Iterator[World]:
    reset_matching(admin_engine)
    engine = create_engine(service_url("matching_service"), pool_size=2)
    yield World(engine)
    engine.dispose()


def _minutes(postcode: str) -> int:
    postcodes = postcode_directory()
    km = distance_km(postcodes.centroid(HOME), postcodes.centroid(postcode))
    # Worked out independently of matching: Mitte is urban (120 postcode centroids within 10 km).
    return estimate_minutes(km, TravelMode.TRANSIT, AreaDensity.URBAN)


def _round(world: World, flags: FixedFlags, **request: Any) -> RoundResult:
    return bundle_cases.run_round(
        world.uow(),
        RoundRequest.model_validate(request),
        actor="test",
        trigger="api",
        now=world.now,
        flags=flags,
    ).value


def _three_limited_patients(world: World) -> set[uuid.UUID]:
    return {
        world.search(postcode=HOME, max_travel_km=1, max_travel_minutes=30, travel_mode="transit").id
        for _ in range(3)
    }


def test_a_patient_limited_to_30_minutes_is_matched_only_within_30_minutes(world: World) -> None:
    near, far = world.therapist(NEAR), world.therapist(FAR)
    searches = _three_limited_patients(world)
    near_minutes, far_minutes = _minutes(NEAR), _minutes(FAR)
    assert near_minutes <= 30 < far_minutes

    # Regional dry runs: the SQL reader must read patients 3 km and 18 km away although their km
    # limit is 1 (the minutes' search radius), and the planner decides by minutes.
    kreuzberg = _round(world, FixedFlags(), dry_run=True, postcode_prefix="10")
    (bundle,) = kreuzberg.bundles
    assert bundle.therapist_id == near.id
    assert {m.search_id for m in bundle.members} == searches
    assert {m.reach for m in bundle.members} == {f"≈ {near_minutes} min by public transport (limit 30)"}

    schoenefeld = _round(world, FixedFlags(), dry_run=True, postcode_prefix="12")
    assert schoenefeld.bundles == []
    assert {(p.search_id, p.reason) for p in schoenefeld.pairs} == {
        (s, Reason.OUT_OF_REACH) for s in searches
    }
    assert {p.reach for p in schoenefeld.pairs} == {f"≈ {far_minutes} min by public transport (limit 30)"}

    # A written national round: the near practice only.
    written = _round(world, FixedFlags())
    assert [b.therapist_id for b in written.bundles] == [near.id]
    with world.engine.connect() as connection:
        addressed = (
            connection.execute(text("SELECT therapist_id FROM matching_service.bundles")).scalars().all()
        )
    assert addressed == [near.id]
    assert far.id not in addressed


def test_with_the_flag_off_the_km_limit_applies(world: World) -> None:
    world.therapist(NEAR)
    for _ in range(3):
        world.search(postcode=HOME, max_travel_km=25, max_travel_minutes=30, travel_mode="transit")
    far = world.therapist(FAR)
    off = FixedFlags(off={(Flag.TRAVEL_TIME_REACH, None)})
    result = _round(world, off, dry_run=True, postcode_prefix="12")
    (bundle,) = result.bundles  # 18 km is within 25 km
    assert bundle.therapist_id == far.id
    assert {m.reach for m in bundle.members} == {None}
    assert _round(world, FixedFlags(), dry_run=True, postcode_prefix="12").bundles == []


# ------------------------------------------------------------------ the patient service keeps them


@pytest.fixture
def patients_api(monkeypatch: pytest.MonkeyPatch, service_url: Callable[[str], str]) -> Iterator[Any]:
    from dataclasses import replace

    from fakes import FakeBus
    from support import load_function
    from therapy_platform.patients.bootstrap import build
    from therapy_platform.platform.database import make_engine

    module = load_function("patients_api")
    engine = make_engine(service_url("patient_service"))
    bus = FakeBus()
    service = replace(build(engine=lambda: engine, publisher=lambda: bus), geocoder=postcode_directory())
    monkeypatch.setattr(module, "service", service)
    yield module, bus
    engine.dispose()


def test_the_patient_service_stores_a_minutes_limit_and_a_diverse_wish(
    patients_api: Any, admin_engine: Engine
) -> None:
    from support import api_event, call, least_roles

    module, bus = patients_api
    body = {
        "first_name": "Petra",
        "last_name": "Reisezeit",
        "postcode": HOME,
        "symptoms": ["depression"],
        "max_travel_minutes": 30,
        "travel_mode": "transit",
        "preferred_therapist_gender": "diverse",
    }
    path = "/api/v2/patients"
    roles = least_roles("POST", path)
    status, created = call(
        module.lambda_handler, api_event("POST", path, body, user="staff@example.org", roles=roles)
    )
    assert status == 201, created
    assert created["max_travel_minutes"] == 30 and created["preferred_therapist_gender"] == "diverse"
    with admin_engine.connect() as connection:
        row = connection.execute(
            text(
                "SELECT max_travel_minutes, preferred_therapist_gender"
                " FROM patient_service.patients WHERE id = :id"
            ),
            {"id": created["id"]},
        ).one()
    assert tuple(row) == (30, "diverse")
    payload = next(m.envelope.payload for m in bus.messages if m.envelope.event_type == "patient.created")
    assert payload["max_travel_minutes"] == 30 and payload["preferred_therapist_gender"] == "diverse"
    status, problem = call(
        module.lambda_handler,
        api_event("POST", path, {**body, "max_travel_minutes": 241}, user="staff@example.org", roles=roles),
    )
    assert status == 422 and "max_travel_minutes" in str(problem)
