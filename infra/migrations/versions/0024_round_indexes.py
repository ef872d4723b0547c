"""Indexes for rounds limited to a region or to chosen therapists (issue 15).

- therapist_profiles: the postcode (text_pattern_ops, for `LIKE '10%'`) and the practice key of
  the read model's JSON, so a region round finds its therapists and their colleagues without
  reading every profile.
- patient_profiles: a GiST index on each patient's reach box (location +/- the patient's own
  travel limit in degrees, `matching/adapters/round_inputs.py` REACH_BOX), so "patients whose
  reach overlaps the region's bounding box" is one index scan instead of a pass over all.
- bundle_members.patient_id: the practices a patient was contacted by, for a region's searches.

The reach-box expression here must stay exactly the query's (PostgreSQL matches expression
indexes by their text): a test (tests/integration/test_round_indexes.py) asks EXPLAIN.

Revision ID: 0024_round_indexes
Revises: 0023_travel_minutes
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0024_round_indexes"
down_revision = "0023_travel_minutes"
branch_labels = None
depends_on = None

SCHEMA = "matching_service"
# Degrees per km as in round_inputs.py: 110.5 km per degree of latitude, 60 per degree of longitude.
# A patient's reach in km: their km limit, or a minutes limit's search radius when larger
# (1.154 km per minute, round_inputs.KM_PER_MINUTE_BOUND), 25 km when neither is set.
_REACH = (
    "greatest(coalesce((data ->> 'max_travel_km')::double precision, 25.0), "
    "coalesce((data ->> 'max_travel_minutes')::double precision, 0.0) * 1.154)"
)
_LAT = "((data -> 'location' ->> 'latitude')::double precision)"
_LON = "((data -> 'location' ->> 'longitude')::double precision)"
REACH_BOX = (
    f"box(point({_LON} - {_REACH} / 60.0, {_LAT} - {_REACH} / 110.5), "
    f"point({_LON} + {_REACH} / 60.0, {_LAT} + {_REACH} / 110.5))"
)


def upgrade() -> None:
    op.execute(
        f"CREATE INDEX therapist_profiles_postcode ON {SCHEMA}.therapist_profiles "
        "((data ->> 'postcode') text_pattern_ops)"
    )
    op.execute(
        f"CREATE INDEX therapist_profiles_practice ON {SCHEMA}.therapist_profiles ((data ->> 'practice_key'))"
    )
    op.execute(f"CREATE INDEX patient_profiles_reach ON {SCHEMA}.patient_profiles USING gist (({REACH_BOX}))")
    op.execute(f"CREATE INDEX bundle_members_patient ON {SCHEMA}.bundle_members (patient_id)")


def downgrade() -> None:
    for name in (
        "bundle_members_patient",
        "patient_profiles_reach",
        "therapist_profiles_practice",
        "therapist_profiles_postcode",
    ):
        op.execute(f"DROP INDEX IF EXISTS {SCHEMA}.{name}")
