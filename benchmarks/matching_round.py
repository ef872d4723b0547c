"""Time the pure matching round (no database) on a realistic national data set.

    python benchmarks/matching_round.py                    # 10/25/50/100 %, regions 10 and 17
    python benchmarks/matching_round.py --sizes 0.1 --regions 10 --repeats 5
    python benchmarks/matching_round.py --case national:0.25   # one case, JSON on stdout

National scale: 35,000 therapists in about 20,000 practices and 100,000 searches from
DataGenerator on the real postcode geography (about 1 % unlocatable postcodes), with the
operational state a round reads: blocked/inactive therapists, cooling periods, open bundles,
waiting times, partly used contact budgets, open bundles per search, exclusions and practices
contacted before. A size is a fraction of both counts; a region keeps only the therapists and
searches of one 2-digit postcode prefix of the national set (10 = Berlin, 17 = Vorpommern).

Every case runs in its own subprocess so that memory figures do not mix: the wall time of
`plan_round` is the best of `--repeats` runs (the machine's other core is shared with other
work, so the best run is the least disturbed one), `peak_rss_mb` is the process high-water
mark (data set plus planning), `planning_peak_mb` the memory planning itself allocated at its
peak (tracemalloc, one extra run). `plan_sha256` fingerprints the plan, so that two versions of
the engine can be checked to plan exactly the same.
Figures are printed and written to benchmarks/results/matching_round.json.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from datagen import DataGenerator

from therapy_platform.contracts.practices import hashed_practice_key, owner_name_rank, title_rank
from therapy_platform.contracts.schedule import windows_in_minutes
from therapy_platform.contracts.therapy import Gender, TherapyProcedure
from therapy_platform.matching.domain import (
    RoundPlan,
    SearchCandidate,
    TherapistCandidate,
    plan_round,
    solo_practice_key,
)
from therapy_platform.matching.domain import round as round_module
from therapy_platform.platform.geography.locations import TravelMode
from therapy_platform.platform.geography.postcodes import postcode_directory

RESULTS = Path(__file__).parent / "results" / "matching_round.json"
NATIONAL_THERAPISTS = 35_000
NATIONAL_PRACTICES = 20_000
NATIONAL_SEARCHES = 100_000
TODAY = date(2026, 3, 2)
SEED = 20261122
REGION_NAMES = {"10": "Berlin (10)", "17": "Vorpommern (17, rural)"}

World = tuple[list[TherapistCandidate], list[SearchCandidate]]


def build_world(
    fraction: float, *, seed: int = SEED, today: date = TODAY
) -> tuple[World, list[str], list[str]]:
    """Therapist and search candidates for `fraction` of the national counts, with the postcode
    of each (same order), for region cuts."""
    generator = DataGenerator(seed=seed, include_unknown_locations=True)
    directory = postcode_directory()
    therapist_count = round(NATIONAL_THERAPISTS * fraction)
    drafts = list(generator.therapists(therapist_count, practices=round(NATIONAL_PRACTICES * fraction)))
    ids = [uuid.UUID(int=n) for n in range(1, len(drafts) + 1)]
    practice_keys = [
        draft["email"].casefold() if draft["email"] else solo_practice_key(tid)
        for draft, tid in zip(drafts, ids, strict=True)
    ]
    created = datetime(2024, 1, 1, 12)
    therapists: list[TherapistCandidate] = []
    for n, (data, tid) in enumerate(zip(drafts, ids, strict=True)):
        state = generator.therapist_state(today)
        therapists.append(
            TherapistCandidate(
                id=tid,
                created_at=created + timedelta(hours=n),
                status=state["status"],
                location=directory.centroid(data["postcode"]),
                practice_key=hashed_practice_key(data["email"]),
                owner_name_rank=owner_name_rank(data["last_name"], data["email"]),
                title_rank=title_rank(data["title"]),
                gender=Gender(data["gender"]),
                next_contact_allowed_on=date.fromisoformat(state["next_contact_allowed_on"])
                if state["next_contact_allowed_on"]
                else None,
                has_open_bundle=state["has_open_bundle"],
                procedures=frozenset(TherapyProcedure(p) for p in data["procedures"]),
                languages=frozenset(data["languages"]),
                preferred_patient_gender=Gender(data["preferred_patient_gender"])
                if data["preferred_patient_gender"]
                else None,
                preferred_age_min=data["preferred_age_min"],
                preferred_age_max=data["preferred_age_max"],
                offers_group_therapy=data["offers_group_therapy"],
                group_only=data["group_only"],
                working_hours={d: tuple(w) for d, w in windows_in_minutes(data["working_hours"]).items()},
                symptom_preferences=frozenset(data["symptom_preferences"]),
                preferred_age_band=generator.random.choice([None, None, None, (25, 45), (30, 60), (18, 35)]),
                potentially_available=data["potentially_available"],
            )
        )
    searches: list[SearchCandidate] = []
    search_postcodes: list[str] = []
    for n, data in enumerate(generator.patients(round(NATIONAL_SEARCHES * fraction), today), start=1):
        state = generator.search_state(today, therapist_count=therapist_count)
        needs_shared = state["needs_shared_language"]
        searches.append(
            SearchCandidate(
                id=uuid.UUID(int=10**9 + n),
                patient_id=uuid.UUID(int=2 * 10**9 + n),
                created_at=datetime.fromisoformat(state["created_at"]),
                location=directory.centroid(data["postcode"]),
                status=state["status"],
                birth_date=date.fromisoformat(data["birth_date"]),
                gender=Gender(data["gender"]),
                preferred_therapist_gender=data["preferred_therapist_gender"],
                therapy_procedures=frozenset(TherapyProcedure(p) for p in data["therapy_procedures"]),
                languages=frozenset(data["languages"]),
                needs_shared_language=needs_shared
                if needs_shared is not None
                else "de" not in data["languages"],
                open_to_group_therapy=data["open_to_group_therapy"],
                group_only=data["group_only"],
                max_travel_km=float(data["max_travel_km"]),
                travel_mode=TravelMode(data["travel_mode"]),
                availability={d: tuple(w) for d, w in windows_in_minutes(data["availability"]).items()},
                symptoms=frozenset(data["symptoms"]),
                patient_excluded_therapist_ids=frozenset(ids[i] for i in state["excluded_therapist_indexes"]),
                contacts_used=state["contacts_used"],
                contact_budget=state["total_requested_contacts"],
                open_bundle_count=state["open_bundle_count"],
                contacted_practices=frozenset(practice_keys[i] for i in state["contacted_therapist_indexes"]),
            )
        )
        search_postcodes.append(data["postcode"])
    return (therapists, searches), [d["postcode"] for d in drafts], search_postcodes


def region_world(prefix: str) -> World:
    (therapists, searches), therapist_postcodes, search_postcodes = build_world(1.0)
    return (
        [t for t, code in zip(therapists, therapist_postcodes, strict=True) if code.startswith(prefix)],
        [s for s, code in zip(searches, search_postcodes, strict=True) if code.startswith(prefix)],
    )


def fingerprint(plan: RoundPlan) -> str:
    return hashlib.sha256(repr(plan).encode()).hexdigest()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def run_case(case: str, repeats: int, trace: bool, pure: bool) -> dict[str, Any]:
    round_module.USE_NUMPY = not pure
    kind, _, value = case.partition(":")
    world = region_world(value) if kind == "region" else build_world(float(value))[0]
    therapists, searches = world
    gc.collect()
    data_rss = _rss_mb()
    walls: list[float] = []
    cpus: list[float] = []
    plan: RoundPlan | None = None
    for _ in range(repeats):
        plan = None
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        plan = plan_round(therapists, searches, TODAY)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    assert plan is not None
    peak_rss = _rss_mb()
    planning_peak: float | None = None
    if trace:
        plan = None
        gc.collect()
        tracemalloc.start()
        plan = plan_round(therapists, searches, TODAY)
        planning_peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return {
        "case": case,
        "pair_search": "pure Python" if pure or round_module.numpy_pair_search() is None else "NumPy",
        "name": REGION_NAMES.get(value, f"region {value}") if kind == "region" else f"{float(value):.0%}",
        "therapists": len(therapists),
        "practices": len({t.practice for t in therapists}),
        "searches": len(searches),
        "wall_s_best": round(min(walls), 3),
        "wall_s_all": [round(w, 3) for w in walls],
        "cpu_s_best": round(min(cpus), 3),
        "data_rss_mb": round(data_rss, 1),
        "peak_rss_mb": round(peak_rss, 1),
        "planning_peak_mb": None if planning_peak is None else round(planning_peak, 1),
        "bundles": len(plan.bundles),
        "members": sum(len(b.members) for b in plan.bundles),
        "searches_in_a_bundle": len({m.search_id for b in plan.bundles for m in b.members}),
        "plan_sha256": fingerprint(plan),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="0.1,0.25,0.5,1.0", help="fractions of the national counts")
    parser.add_argument("--regions", default="10,17", help="2-digit postcode prefixes ('' for none)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-trace", action="store_true", help="skip the tracemalloc run")
    parser.add_argument("--pure", action="store_true", help="the pure-Python pair search (no NumPy)")
    parser.add_argument("--case", help="run one case in this process and print its JSON (internal)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.repeats, not args.no_trace, args.pure)))
        return 0

    cases = [f"national:{size}" for size in args.sizes.split(",") if size] + [
        f"region:{prefix}" for prefix in args.regions.split(",") if prefix
    ]
    figures = []
    for case in cases:
        command = [sys.executable, __file__, "--case", case, "--repeats", str(args.repeats)]
        if args.no_trace:
            command.append("--no-trace")
        if args.pure:
            command.append("--pure")
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        figures.append(result)
        r = result
        print(
            f"{r['name']:>24}: {r['therapists']:>6} therapists ({r['practices']} practices) x "
            f"{r['searches']:>6} searches: best {r['wall_s_best']:.3f} s of {r['wall_s_all']}, "
            f"peak RSS {r['peak_rss_mb']:.0f} MB (data {r['data_rss_mb']:.0f} MB), "
            f"planning peak {r['planning_peak_mb']} MB, {r['bundles']} bundles / {r['members']} members",
            flush=True,
        )
    results = {
        "measured_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "note": "pure plan_round only (no database); wall = best of repeats, other core shared",
        "pair_search": "pure Python" if args.pure else "NumPy",
        "repeats": args.repeats,
        "cases": figures,
    }
    if args.output.exists():  # keep the figures of the engine before the fast path, for comparison
        earlier = json.loads(args.output.read_text())
        for kept in ("before_optimisation", "pure_python_pair_search"):
            if kept in earlier and not (kept == "pure_python_pair_search" and args.pure):
                results[kept] = earlier[kept]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
