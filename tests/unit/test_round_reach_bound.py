"""The round's SQL search radius for a minutes limit (matching/adapters/round_inputs.py) is a
literal in the query and in the GiST index of migration 0024: it must never be smaller than the
travel-time estimate's own bound, or a reachable patient could be cut off before planning."""

from __future__ import annotations

from therapy_platform.matching.adapters.round_inputs import KM_PER_MINUTE_BOUND, REACH_BOX
from therapy_platform.platform.geography.locations import MAX_GEODESIC_KM_PER_MINUTE


def test_the_sql_bound_is_at_least_the_estimates_fastest_km_per_minute() -> None:
    assert float(KM_PER_MINUTE_BOUND) >= MAX_GEODESIC_KM_PER_MINUTE


def test_the_query_and_the_index_use_the_same_reach() -> None:
    from importlib import util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "infra/migrations/versions/0024_round_indexes.py"
    spec = util.spec_from_file_location("round_indexes", path)
    assert spec and spec.loader
    migration = util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert REACH_BOX.replace("patient_profiles.data", "data") == migration.REACH_BOX
