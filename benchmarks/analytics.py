"""The analytics queries at national scale: each endpoint's use case against PostgreSQL.

Seeds a separate database (`platform_bench_analytics`, migrated to head) with the matching
service's own tables as a year of national operation leaves them:
- 35,000 therapists (read-model payloads from the shared generator), 160,000 patients
  (the minimal payload matching keeps: birth month, postcode, insurance type, symptoms,
  procedures, languages, location, registration time) and one search each, started over the
  last 15 months (35 % placed, 5 % cancelled, the rest active or paused);
- 200,000 bundles sent over the last 12 months to random therapists, 3-6 members each
  (~900,000 members): 70 % answered (accepted 12 %, rejected for capacity 40 %, unsuitable
  8 %, other 10 %, no response 30 %), 22 % expired, the rest still open.
Profiles come from `datagen.py`; bundles and members are generated in SQL (`setseed`, so the
same data every run). Then each endpoint's use case runs `REPEAT` times per scenario with
`SqlAnalytics` (the adapter the function uses) and the median and worst wall time are kept.
`EXPLAIN (ANALYZE)` of the slowest query is written next to the figures when one misses its
target.

    .venv/bin/python benchmarks/analytics.py [--skip-seed]

Prints the figures and writes benchmarks/results/analytics.json. Target: <= 1 s each.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for extra in ("infra", "infra/migrations", "layers/shared", "benchmarks"):
    sys.path.insert(0, str(ROOT / extra))

from datagen import DataGenerator  # noqa: E402
from sqlalchemy import Engine, create_engine, insert, text  # noqa: E402

from localcloud import postgres  # noqa: E402
from therapy_platform.matching.adapters.analytics import SqlAnalytics  # noqa: E402
from therapy_platform.matching.adapters.tables import patient_profiles, searches, therapist_profiles  # noqa: E402
from therapy_platform.matching.domain.analytics import (  # noqa: E402
    BundleEfficiencyQuery,
    PlacementQuery,
    PreferenceGrouping,
    PreferenceQuery,
    period,
)
from therapy_platform.matching.use_cases import analytics as cases  # noqa: E402
from therapy_platform.platform.geography.postcodes import postcode_directory  # noqa: E402

DATABASE = "platform_bench_analytics"
RESULTS = ROOT / "benchmarks" / "results" / "analytics.json"
THERAPISTS, PRACTICES, PATIENTS, BUNDLES = 35_000, 20_000, 160_000, 200_000
NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
TODAY = NOW.date()
TARGET_S = 1.0
REPEAT = 5


def _uuid(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def _sql_uuid(expression: str) -> str:
    """The uuid `UUID(int=n)` in SQL, for an integer expression n < 2**48."""
    return f"('00000000-0000-0000-0000-' || lpad(to_hex({expression}), 12, '0'))::uuid"


PATIENT_BASE, SEARCH_BASE = 10**9, 2 * 10**9
STATUS_ROLLS = ((0.35, "placed"), (0.40, "cancelled"), (0.43, "paused"), (1.01, "active"))


def _engine() -> Engine:
    return create_engine(postgres.admin_url(DATABASE))


def create_database() -> None:
    from runner import upgrade

    server = create_engine(postgres.admin_url("postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        connection.execute(text(f"CREATE DATABASE {DATABASE}"))
    server.dispose()
    engine = _engine()
    upgrade(engine)
    engine.dispose()


def _profile(entity_id: uuid.UUID, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": entity_id,
        "data": data,
        "source_event_id": uuid.uuid4(),
        "source_timestamp": NOW - timedelta(days=1),
        "updated_at": NOW - timedelta(days=1),
    }


def seed() -> dict[str, int]:
    generator = DataGenerator(seed=11)
    directory = postcode_directory()
    therapist_rows = []
    for n, draft in enumerate(generator.therapists(THERAPISTS, practices=PRACTICES)):
        location = directory.centroid(draft["postcode"])
        data = {
            "id": str(_uuid(n + 1)),
            "gender": draft["gender"],
            "postcode": draft["postcode"],
            "procedures": draft["procedures"],
            "languages": draft["languages"],
            "status": "active",
            "location": location.model_dump(mode="json"),
            "created_at": (NOW - timedelta(days=3000)).isoformat(),
        }
        therapist_rows.append(_profile(_uuid(n + 1), data))
    patient_rows, search_rows = [], []
    rng = generator.random
    for n, draft in enumerate(generator.patients(PATIENTS, TODAY)):
        location = directory.centroid(draft["postcode"])
        started = NOW - timedelta(days=rng.uniform(0, 450))
        registered = started - timedelta(days=rng.expovariate(1 / 5))
        data = {
            "id": str(_uuid(PATIENT_BASE + n)),
            "gender": draft["gender"],
            "birth_month": draft["birth_date"][:7],
            "postcode": draft["postcode"],
            "insurance_type": rng.choices(["statutory", "private", "self_pay"], weights=[88, 10, 2])[0],
            "symptoms": draft["symptoms"],
            "therapy_procedures": draft["therapy_procedures"],
            "languages": draft["languages"],
            "location": location.model_dump(mode="json"),
            "status": "searching",
            "created_at": registered.isoformat(),
        }
        patient_rows.append(_profile(_uuid(PATIENT_BASE + n), data))
        roll = rng.random()
        status = next(name for limit, name in STATUS_ROLLS if roll < limit)
        search_rows.append(
            {
                "id": _uuid(SEARCH_BASE + n),
                "patient_id": _uuid(PATIENT_BASE + n),
                "status": status,
                "created_at": started,
                "updated_at": NOW - timedelta(days=1),
                "total_requested_contacts": 25,
                "placed_at": started + timedelta(days=rng.uniform(10, 200)) if status == "placed" else None,
                "placed_therapist_id": _uuid(rng.randint(1, THERAPISTS)) if status == "placed" else None,
            }
        )
    engine = _engine()
    with engine.begin() as connection:
        for table, rows in (
            (therapist_profiles, therapist_rows),
            (patient_profiles, patient_rows),
            (searches, search_rows),
        ):
            for start in range(0, len(rows), 2000):
                connection.execute(insert(table).values(rows[start : start + 2000]))
    engine.dispose()
    return seed_bundles()


def seed_bundles() -> dict[str, int]:
    engine = _engine()
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE matching_service.bundle_members, matching_service.bundles CASCADE"))
        _seed_bundles(connection)
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))
        counts = {
            name: connection.execute(text(f"SELECT count(*) FROM matching_service.{name}")).scalar_one()
            for name in ("therapist_profiles", "patient_profiles", "searches", "bundles", "bundle_members")
        }
    engine.dispose()
    return counts


def _seed_bundles(connection: Any) -> None:
    """Bundles and members in SQL (deterministic: setseed)."""
    connection.execute(text("SELECT setseed(0.42)"))
    connection.execute(
        text(f"""
CREATE TEMP TABLE bench_bundles AS
SELECT n, random() < 0.5 AS late, {_sql_uuid("n + 500000000")} AS id,
       {_sql_uuid("1 + floor(random() * :therapists)::bigint")} AS therapist_id,
       CAST(:now AS timestamptz) - random() * interval '365 days' AS sent_at,
       3 + floor(random() * 4)::int AS size, random() AS roll, random() * 20 AS answer_days
  FROM generate_series(1, :bundles) AS n
"""),
        {"therapists": THERAPISTS, "bundles": BUNDLES, "now": NOW},
    )
    connection.execute(
        text("""
INSERT INTO matching_service.bundles (id, therapist_id, practice_key, kind, status, created_at,
       created_by, updated_at, sent_at, channel, answered_at, expired_at, applied_filters, skipped_filters)
SELECT id, therapist_id, id::text, 'round',
       CASE WHEN still_open THEN 'sent' WHEN roll < 0.76 THEN 'answered' ELSE 'expired' END,
       sent_at - interval '1 hour', 'bench', sent_at, sent_at, 'email',
       CASE WHEN NOT still_open AND roll < 0.76
            THEN least(sent_at + answer_days * interval '1 day', CAST(:now AS timestamptz)) END,
       CASE WHEN NOT still_open AND roll >= 0.76 THEN sent_at + interval '14 days' END,
       '{}', '{}'
  FROM (SELECT *, sent_at > CAST(:now AS timestamptz) - interval '14 days' AND late AS still_open
          FROM bench_bundles) bb
"""),
        {"now": NOW},
    )
    connection.execute(
        text(f"""
INSERT INTO matching_service.bundle_members (id, bundle_id, search_id, patient_id, position, status,
       outcome, responded_at)
SELECT gen_random_uuid(), b.id, {_sql_uuid(":search_base + k")}, {_sql_uuid(":patient_base + k")}, p,
       CASE WHEN b.status = 'sent' THEN 'pending'
            WHEN b.status = 'expired' THEN 'no_response'
            WHEN o < 0.12 THEN 'accepted' WHEN o < 0.70 THEN 'rejected' ELSE 'no_response' END,
       CASE WHEN b.status = 'sent' THEN NULL
            WHEN b.status = 'expired' THEN 'no_response'
            WHEN o < 0.12 THEN 'accepted' WHEN o < 0.52 THEN 'rejected_capacity'
            WHEN o < 0.60 THEN 'rejected_unsuitable' WHEN o < 0.70 THEN 'rejected_other'
            ELSE 'no_response' END,
       CASE WHEN b.status = 'answered' THEN b.answered_at END
  FROM (SELECT x.*, bb.n, bb.size FROM matching_service.bundles x JOIN bench_bundles bb ON bb.id = x.id) b
 CROSS JOIN LATERAL generate_series(1, b.size) AS p
 CROSS JOIN LATERAL (SELECT mod(b.n * 7919 + p * 104729, :patients) AS k, random() + 0 * p AS o) r
"""),
        {"search_base": SEARCH_BASE, "patient_base": PATIENT_BASE, "patients": PATIENTS},
    )


def _time(run: Callable[[], Any]) -> dict[str, Any]:
    walls = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        run()
        walls.append(time.perf_counter() - started)
    return {"median_s": round(statistics.median(walls), 3), "max_s": round(max(walls), 3)}


def scenarios(reader: SqlAnalytics) -> dict[str, Callable[[], Any]]:
    year = period(TODAY - timedelta(days=364), TODAY)
    month = period(date(2026, 10, 1), date(2026, 10, 31))
    return {
        "bundle_efficiency_national_year": lambda: cases.bundle_efficiency_report(
            reader, BundleEfficiencyQuery(year)
        ),
        "bundle_efficiency_national_month": lambda: cases.bundle_efficiency_report(
            reader, BundleEfficiencyQuery(month)
        ),
        "bundle_efficiency_berlin_year_size_4": lambda: cases.bundle_efficiency_report(
            reader, BundleEfficiencyQuery(year, region="10", bundle_size=4)
        ),
        "therapist_preferences_by_therapist_year_page_1": lambda: cases.therapist_preferences(
            reader, PreferenceQuery(year, limit=50)
        ),
        "therapist_preferences_by_therapist_year_last_page": lambda: cases.therapist_preferences(
            reader, PreferenceQuery(year, limit=100, page=350)
        ),
        "therapist_preferences_one_therapist_year": lambda: cases.therapist_preferences(
            reader, PreferenceQuery(year, therapist_id=_uuid(4711))
        ),
        "therapist_preferences_by_region_month": lambda: cases.therapist_preferences(
            reader, PreferenceQuery(month, grouping=PreferenceGrouping.REGION, limit=100)
        ),
        "therapist_preferences_by_region_year": lambda: cases.therapist_preferences(
            reader, PreferenceQuery(year, grouping=PreferenceGrouping.REGION, limit=100)
        ),
        "placements_national_year": lambda: cases.placement_report(reader, PlacementQuery(year), now=NOW),
        "placements_national_month": lambda: cases.placement_report(reader, PlacementQuery(month), now=NOW),
        "placements_berlin_year": lambda: cases.placement_report(
            reader, PlacementQuery(year, region="10"), now=NOW
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-seed", action="store_true", help="reuse the seeded database")
    parser.add_argument("--bundles-only", action="store_true", help="reseed bundles and members only")
    args = parser.parse_args()
    seeded: dict[str, Any] = {}
    if args.bundles_only:
        started = time.perf_counter()
        seeded = {"rows": seed_bundles(), "seed_s": round(time.perf_counter() - started, 1)}
        print(f"seeded {seeded}")
    elif not args.skip_seed:
        started = time.perf_counter()
        create_database()
        seeded = {"rows": seed(), "seed_s": round(time.perf_counter() - started, 1)}
        print(f"seeded {seeded}")
    engine = _engine()
    reader = SqlAnalytics(lambda: engine)
    load_before = os.getloadavg()[0]
    figures: dict[str, Any] = {}
    for name, run in scenarios(reader).items():
        run()  # warm the cache once, as a deployed function's database would be
        figures[name] = {**_time(run), "within_target": None}
        figures[name]["within_target"] = figures[name]["max_s"] <= TARGET_S
        print(f"{name:55s} median {figures[name]['median_s']:6.3f} s  max {figures[name]['max_s']:6.3f} s")
    engine.dispose()
    result = {
        "benchmark": "analytics",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            # a shared machine: the 1-minute load before and after the timings, to judge the noise
            "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        },
        "target_s": TARGET_S,
        "repeat": REPEAT,
        "data": seeded or "reused",
        "scenarios": figures,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
