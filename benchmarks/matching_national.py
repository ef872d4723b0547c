"""A whole bundle round against PostgreSQL at national scale: read, match, write, events.

For each size (10 %, 25 %, 50 %, 100 % of 35,000 therapists in about 20,000 practices and
100,000 active searches) the script seeds a separate database (`platform_bench`) with the
matching service's own tables exactly as production holds them (read-model payloads,
searches, historic and open bundles, cooling periods, exclusions), then runs the round use
case (`logic.bundles.run_round`, the code `BundleRoundFunction` runs) in a fresh subprocess
and reports wall time per phase and the subprocess's peak memory (max RSS). At full size it
also times a one-region round (postcode prefix 10, Berlin) before the national one, three ways
(REGION_VARIANTS): a new process on a copy nobody has read, a new process on a database that
has served the same reads before (another process's dry run), and a warm process.

    .venv/bin/python benchmarks/matching_national.py [--fractions 0.1 0.25 0.5 1.0] [--reuse]
        [--profile DIR] [--baseline COMMIT] [--region-only]

Each size is seeded once into `<BENCH_DATABASE>_<percent>` (kept; `--reuse` measures again
without seeding) and every round runs on a fresh copy of it (CREATE DATABASE ... TEMPLATE), so
the region and the national round see the same data. The machine's calibration (the pure
planning benchmark at 25 %, benchmarks/matching_round.py) is recorded with the figures.
`--baseline COMMIT` times the same rounds on the same data with that commit's layer as well
(before/after under the same machine load; the region rounds of both layers take turns).
`--region-only` times only the region rounds (at 100 %) and keeps the national figures of the
results file as they were; `--region-repeats N` runs each region variant N times and keeps the
median run. Every round reports its wall and CPU seconds (`cpu_s`, the round process's own:
less sensitive to other work on the machine than the wall time, which also waits for the
database).

Prints the figures and writes benchmarks/results/matching_national.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for extra in ("infra", "infra/migrations", "layers/shared", "benchmarks"):
    sys.path.insert(0, str(ROOT / extra))

from calibration import pure_planning  # noqa: E402
from datagen import DataGenerator  # noqa: E402
from sqlalchemy import Engine, create_engine, insert, text  # noqa: E402

from localcloud import postgres  # noqa: E402
from therapy_platform.contracts.practices import (  # noqa: E402
    hashed_practice_key,
    owner_name_rank,
    title_rank,
)
from therapy_platform.matching.adapters.tables import (  # noqa: E402
    bundle_members,
    bundles,
    patient_profiles,
    search_exclusions,
    searches,
    therapist_profiles,
)
from therapy_platform.platform.geography.postcodes import postcode_directory  # noqa: E402

DATABASE = os.environ.get("BENCH_DATABASE", "platform_bench_matching")
RESULTS = ROOT / "benchmarks" / "results" / "matching_national.json"
THERAPISTS, PRACTICES, SEARCHES = 35_000, 20_000, 100_000
NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # a Monday, the scheduled round's hour
TODAY = date(2026, 11, 23)


def _chunks(rows: list[dict[str, Any]], size: int = 2000) -> Any:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _server() -> Engine:
    return create_engine(postgres.admin_url("postgres"), isolation_level="AUTOCOMMIT")


def create_database(name: str) -> None:
    from runner import upgrade

    server = _server()
    with server.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        connection.execute(text(f"CREATE DATABASE {name}"))
    server.dispose()
    engine = create_engine(postgres.admin_url(name))
    upgrade(engine)
    engine.dispose()


def upgrade_database(name: str) -> None:
    from runner import upgrade

    engine = create_engine(postgres.admin_url(name))
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))
    engine.dispose()


def database_exists(name: str) -> bool:
    server = _server()
    with server.connect() as connection:
        found = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
    server.dispose()
    return found is not None


def copy_database(template: str, name: str) -> None:
    """A fresh copy of the seeded database for one measured round (file-level, a few seconds)."""
    server = _server()
    with server.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        connection.execute(text(f"CREATE DATABASE {name} TEMPLATE {template}"))
    server.dispose()
    engine = create_engine(postgres.admin_url(name))
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))
    engine.dispose()


def drop_database(name: str) -> None:
    server = _server()
    with server.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    server.dispose()


def seeded_counts(name: str) -> dict[str, int]:
    engine = create_engine(postgres.admin_url(name))
    with engine.connect() as connection:
        row = connection.execute(
            text(
                "SELECT (SELECT count(*) FROM matching_service.therapist_profiles), "
                "(SELECT count(DISTINCT coalesce(data->>'practice_key', id::text)) "
                "FROM matching_service.therapist_profiles), "
                "(SELECT count(*) FROM matching_service.searches), "
                "(SELECT count(*) FROM matching_service.bundles), "
                "(SELECT count(*) FROM matching_service.bundle_members)"
            )
        ).one()
    engine.dispose()
    keys = ("therapists", "practices", "searches", "existing_bundles", "existing_members")
    return dict(zip(keys, (int(v) for v in row), strict=True))


def seed(fraction: float, database: str) -> dict[str, int]:
    """Fill the matching tables for `fraction` of the national size; returns row counts."""
    generator = DataGenerator(seed=7)
    directory = postcode_directory()
    therapist_count = int(THERAPISTS * fraction)
    search_count = int(SEARCHES * fraction)
    engine = create_engine(postgres.admin_url(database))
    therapist_rows: list[dict[str, Any]] = []
    practice_of: list[str] = []
    open_bundle_practices: dict[str, uuid.UUID] = {}
    for n, draft in enumerate(generator.therapists(therapist_count, practices=int(PRACTICES * fraction))):
        state = generator.therapist_state(TODAY)
        therapist_id = uuid.UUID(int=n + 1)
        location = directory.centroid(draft["postcode"])
        # The read model holds the hashed practice key (contracts/practices.py), never the address.
        hashed = hashed_practice_key(draft["email"])
        practice = hashed or f"therapist:{therapist_id}"
        practice_of.append(practice)
        data = {
            **draft,
            "id": str(therapist_id),
            "city": None,
            "fax": None,
            "website": None,
            "directory_id": None,
            "status": state["status"],
            "block_reason": "Beschwerde" if state["status"] == "blocked" else None,
            "next_contact_allowed_on": state["next_contact_allowed_on"],
            "staff_edited_fields": [],
            "location": location.model_dump(mode="json"),
            "location_flagged": not location.is_known,
            "practice_key": hashed,
            "owner_name_rank": owner_name_rank(draft["last_name"], draft["email"]),
            "title_rank": title_rank(draft.get("title")),
            "created_at": (NOW - timedelta(days=3000 - n % 3000)).isoformat(),
            "updated_at": (NOW - timedelta(days=2)).isoformat(),
        }
        if state["has_open_bundle"] and practice not in open_bundle_practices:
            open_bundle_practices[practice] = therapist_id
        therapist_rows.append(_profile_row(therapist_id, data))
    patient_rows: list[dict[str, Any]] = []
    search_rows: list[dict[str, Any]] = []
    exclusion_rows: list[dict[str, Any]] = []
    wanted_open: list[tuple[uuid.UUID, uuid.UUID, int]] = []
    history: list[tuple[uuid.UUID, uuid.UUID, list[int]]] = []
    for n, draft in enumerate(generator.patients(search_count, TODAY)):
        state = generator.search_state(TODAY, therapist_count=therapist_count)
        patient_id, search_id = uuid.UUID(int=10**9 + n), uuid.UUID(int=2 * 10**9 + n)
        location = directory.centroid(draft["postcode"])
        data = {
            **draft,
            "id": str(patient_id),
            "city": None,
            "phone": None,
            "insurance_type": "statutory",
            "needs_shared_language": state["needs_shared_language"],
            "shared_language_required": state["needs_shared_language"]
            if state["needs_shared_language"] is not None
            else "de" not in draft["languages"],
            "excluded_therapist_ids": [],
            "notes": None,
            "status": "searching",
            "location": location.model_dump(mode="json"),
            "location_flagged": not location.is_known,
            "created_at": state["created_at"],
            "updated_at": state["created_at"],
        }
        patient_rows.append(_profile_row(patient_id, data))
        search_rows.append(
            {
                "id": search_id,
                "patient_id": patient_id,
                "status": {"paused": "paused", "placed": "placed"}.get(state["status"], "active"),
                "created_at": datetime.fromisoformat(state["created_at"]),
                "updated_at": NOW - timedelta(days=1),
                "total_requested_contacts": state["total_requested_contacts"],
            }
        )
        for index in state["excluded_therapist_indexes"]:
            exclusion_rows.append(
                {
                    "search_id": search_id,
                    "therapist_id": uuid.UUID(int=index + 1),
                    "reason": "bad experience",
                    "excluded_at": NOW,
                    "excluded_by": "bench",
                }
            )
        if state["open_bundle_count"]:
            wanted_open.append((search_id, patient_id, state["open_bundle_count"]))
        if state["contacted_therapist_indexes"]:
            history.append((search_id, patient_id, state["contacted_therapist_indexes"]))
    bundle_rows, member_rows = _bundles(open_bundle_practices, wanted_open, history, practice_of)
    with engine.begin() as connection:
        for table, rows in (
            (therapist_profiles, therapist_rows),
            (patient_profiles, patient_rows),
            (searches, search_rows),
            (search_exclusions, exclusion_rows),
            (bundles, bundle_rows),
            (bundle_members, member_rows),
        ):
            for chunk in _chunks(rows):
                connection.execute(insert(table).values(chunk))
        connection.execute(text("ANALYZE"))
    engine.dispose()
    return {
        "therapists": len(therapist_rows),
        "practices": len(set(practice_of)),
        "searches": len(search_rows),
        "existing_bundles": len(bundle_rows),
        "existing_members": len(member_rows),
    }


def _profile_row(entity_id: uuid.UUID, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": entity_id,
        "data": data,
        "source_event_id": uuid.uuid4(),
        "source_timestamp": NOW - timedelta(days=1),
        "updated_at": NOW - timedelta(days=1),
    }


def _bundles(
    open_practices: dict[str, uuid.UUID],
    wanted_open: list[tuple[uuid.UUID, uuid.UUID, int]],
    history: list[tuple[uuid.UUID, uuid.UUID, list[int]]],
    practice_of: list[str],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Open (sent) bundles of the practices that have one, filled with searches that have open
    bundles; answered bundles carrying the searches' earlier contacts."""
    bundle_rows: list[dict[str, Any]] = []
    member_rows: list[dict[str, Any]] = []

    def bundle(therapist_id: uuid.UUID, practice: str, status: str) -> dict[str, Any]:
        row = {
            "id": uuid.uuid4(),
            "therapist_id": therapist_id,
            "practice_key": practice,
            "kind": "round",
            "status": status,
            "created_at": NOW - timedelta(days=5),
            "created_by": "bench",
            "updated_at": NOW - timedelta(days=5),
            "sent_at": NOW - timedelta(days=5),
            "applied_filters": [],
            "skipped_filters": [],
        }
        bundle_rows.append(row)
        return row

    open_rows = [bundle(t, p, "sent") for p, t in open_practices.items()]
    fill = {row["id"]: 0 for row in open_rows}
    cursor = 0
    for search_id, patient_id, count in wanted_open:
        for _ in range(count):
            if not open_rows:
                break
            row = open_rows[cursor % len(open_rows)]
            cursor += 1
            if fill[row["id"]] >= 6:
                continue
            fill[row["id"]] += 1
            member_rows.append(_member(row["id"], search_id, patient_id, fill[row["id"]], "pending"))
    answered: dict[str, dict[str, Any]] = {}
    answered_fill: dict[uuid.UUID, set[uuid.UUID]] = {}
    for search_id, patient_id, indexes in history:
        for index in indexes:
            practice = practice_of[index]
            current = answered.get(practice)
            if current is None or len(answered_fill[current["id"]]) >= 6:
                current = answered[practice] = bundle(uuid.UUID(int=index + 1), practice, "answered")
                answered_fill[current["id"]] = set()
            row = current
            if search_id in answered_fill[row["id"]]:
                continue
            answered_fill[row["id"]].add(search_id)
            member_rows.append(
                _member(row["id"], search_id, patient_id, len(answered_fill[row["id"]]), "rejected")
            )
    return bundle_rows, member_rows


def _member(
    bundle_id: uuid.UUID, search_id: uuid.UUID, patient_id: uuid.UUID, position: int, status: str
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "bundle_id": bundle_id,
        "search_id": search_id,
        "patient_id": patient_id,
        "position": position,
        "status": status,
    }


CHILD = """
import json, resource, sys, time
sys.path[:0] = {paths!r}

from therapy_platform.matching.adapters.unit_of_work import SqlMatchingUnitOfWork
from therapy_platform.matching.domain.bundles import RoundRequest
from therapy_platform.matching.use_cases.bundles import run_round
from datetime import datetime
from therapy_platform.platform.database import make_engine
from therapy_platform.matching.domain.round import numpy_pair_search
numpy_pair_search()  # as functions/bundle_round does at init (the import is not the round's)
engine = make_engine({url!r}, pool_size=2)  # as functions/bundle_round builds it
if {warm!r}:  # a warm function: modules imported, caches filled by a dry run of the same round
    run_round(SqlMatchingUnitOfWork(engine), RoundRequest.model_validate({{**{request!r}, "dry_run": True}}),
              actor="system:bench", trigger="operator", now=datetime.fromisoformat({now!r}))
if {dry_run_only!r}:  # another client reading the same data first: the database is in use
    run_round(SqlMatchingUnitOfWork(engine), RoundRequest.model_validate({{**{request!r}, "dry_run": True}}),
              actor="system:bench", trigger="operator", now=datetime.fromisoformat({now!r}))
    sys.exit(0)
phases = {{}}
started, cpu_started = time.perf_counter(), time.process_time()
request = RoundRequest.model_validate({request!r})
result = run_round(SqlMatchingUnitOfWork(engine), request, actor="system:bench", trigger="operator",
                   now=datetime.fromisoformat({now!r}), phases=phases)
wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
print(json.dumps({{"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "phases": phases,
    "bundles": len(result.value.bundles),
    "members": sum(len(b.members) for b in result.value.bundles), "events": len(result.events),
    "therapists_read": result.value.therapists_considered, "searches_read": result.value.searches_considered,
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}}))
"""


def measure(
    request: dict[str, Any],
    template: str,
    profile: Path | None = None,
    *,
    warm: bool = False,
    database_in_use: bool = False,
    code_root: Path = ROOT,
) -> dict[str, Any]:
    """One round in a fresh subprocess on a fresh copy of the seeded database; `warm`: after an
    untimed dry run of the same round in that process (a warm Lambda container);
    `database_in_use`: after that dry run in another process (a new container, a database that
    has served reads before: PostgreSQL's buffers hold the region's pages, as in production,
    where a copy nobody has read yet does not exist); `code_root`: whose layer runs the round (a
    baseline commit's, see --baseline)."""
    database = f"{template}_run"
    copy_database(template, database)
    paths = [str(code_root / p) for p in ("layers/shared",)]
    settings = {
        "paths": paths,
        "url": postgres.admin_url(database),
        "request": request,
        "now": NOW.isoformat(),
    }
    code = CHILD.format(**settings, warm=warm, dry_run_only=False)
    if database_in_use:
        subprocess.run(
            [sys.executable, "-c", CHILD.format(**settings, warm=False, dry_run_only=True)],
            check=True,
            capture_output=True,
        )
    command = [sys.executable, "-c", code]
    if profile is not None:
        script = profile.with_suffix(".py")
        script.write_text(code)
        command = [sys.executable, "-m", "cProfile", "-o", str(profile), str(script)]
    try:
        done = subprocess.run(command, check=False, capture_output=True, text=True)
    finally:
        drop_database(database)
    if done.returncode != 0:
        raise SystemExit(f"the round failed:\n{done.stderr}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


# (results key, warm process, database in use): a never-read copy in a new process (the first
# figure recorded), a new process on a database that has served reads (a new Lambda container in
# production), a warm process (a warm container).
REGION_VARIANTS = (
    ("region_10", False, False),
    ("region_10_cold_process", False, True),
    ("region_10_warm", True, False),
)


def regions(
    template: str,
    repeats: int,
    roots: dict[str, Path],
    *,
    profile: Path | None = None,
    warm: bool = False,
    database_in_use: bool = False,
) -> dict[str, dict[str, Any]]:
    """The Berlin round (postcode prefix 10) `repeats` times with each layer of `roots` (this
    tree's, a baseline's), the layers taking turns so that both meet the same machine load; per
    layer the median run's figures, with every run's wall time."""
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in roots}
    for n in range(repeats):
        for name, root in roots.items():
            dump = profile if n == 0 and root == ROOT else None
            results[name].append(
                measure(
                    {"postcode_prefix": "10"},
                    template,
                    dump,
                    warm=warm,
                    database_in_use=database_in_use,
                    code_root=root,
                )
            )
    medians = {}
    for name, runs in results.items():
        ordered = sorted(runs, key=lambda figures: float(figures["wall_s"]))
        median = dict(ordered[len(ordered) // 2])
        if repeats > 1:
            median["wall_s_runs"] = [figures["wall_s"] for figures in runs]
        medians[name] = median
    return medians


def _merged_region(earlier: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    """`--region-only`: the earlier results with the 100 % run's region figures replaced (and
    their own measuring time and calibration), the national figures kept as they were."""
    fresh = report["runs"][0]
    region_keys = tuple(key for key, _, _ in REGION_VARIANTS)
    for run in earlier.get("runs", []):
        if run.get("fraction") == 1.0:
            run.update({key: fresh[key] for key in region_keys})
            run["region_measured_at"] = report["measured_at"]
            run["region_machine"] = report["machine"]
            run["region_note"] = report["note"]
            if "baseline" in fresh:  # the region's baseline commit may differ from the national's
                baseline = run.setdefault("baseline", {})
                baseline.update({key: fresh["baseline"][key] for key in region_keys})
                baseline["region_commit"] = fresh["baseline"]["commit"]
            return earlier
    earlier.setdefault("runs", []).append(fresh)
    return earlier


def _checkout(commit: str) -> Path:
    """The layer of `commit` in a temporary folder (git archive)."""
    folder = Path(tempfile.mkdtemp(prefix="matching_baseline_"))
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "layers/shared"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.25, 0.5, 1.0])
    parser.add_argument("--reuse", action="store_true", help="keep a seeded database of an earlier run")
    parser.add_argument("--profile", type=Path, help="folder for cProfile dumps of each round")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--baseline", metavar="COMMIT", help="also time the rounds with this commit's layer, same data"
    )
    parser.add_argument(
        "--region-only", action="store_true", help="only the region rounds (100 %%); national figures kept"
    )
    parser.add_argument(
        "--region-repeats", type=int, default=1, help="region rounds per variant (the median run is kept)"
    )
    args = parser.parse_args()
    if args.region_only:
        args.fractions = [1.0]
    baseline_root = _checkout(args.baseline) if args.baseline else None
    if not postgres.is_healthy():
        postgres.start()
    runs: list[dict[str, Any]] = []
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), **pure_planning()}
    print(f"calibration: {machine}", flush=True)
    for fraction in args.fractions:
        template = f"{DATABASE}_{int(fraction * 100)}"
        started = time.perf_counter()
        if args.reuse and database_exists(template):
            upgrade_database(template)  # migrations added since it was seeded (indexes)
            counts = seeded_counts(template)
        else:
            create_database(template)
            counts = seed(fraction, template)
        seeded_s = round(time.perf_counter() - started, 1)
        run: dict[str, Any] = {"fraction": fraction, "data": counts, "seed_s": seeded_s}
        dumps = args.profile
        if dumps is not None:
            dumps.mkdir(parents=True, exist_ok=True)
        baseline: dict[str, Any] = {"commit": args.baseline}
        if fraction == 1.0:
            roots = {"current": ROOT, **({"baseline": baseline_root} if baseline_root else {})}
            profile = dumps / "region_10.prof" if dumps else None
            for key, warm, in_use in REGION_VARIANTS:
                measured = regions(
                    template,
                    args.region_repeats,
                    roots,
                    profile=None if warm or in_use else profile,
                    warm=warm,
                    database_in_use=in_use,
                )
                run[key] = measured["current"]
                print(
                    f"{key} (Berlin; warm process {warm}, database in use {in_use}): {run[key]}", flush=True
                )
                if "baseline" in measured:
                    baseline[key] = measured["baseline"]
                    print(f"  baseline: {baseline[key]}", flush=True)
        if not args.region_only:
            profile = dumps / f"national_{int(fraction * 100)}.prof" if dumps else None
            run["national"] = measure({}, template, profile)
            print(f"{int(fraction * 100):>3} %  {counts}  national: {run['national']}", flush=True)
            if baseline_root is not None:
                baseline["national"] = measure({}, template, code_root=baseline_root)
                print(f"  baseline national: {baseline['national']}", flush=True)
        if baseline_root is not None:
            run["baseline"] = baseline
        runs.append(run)
    report = {
        "benchmark": "matching_national",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "note": "2 cores shared with other work: figures are noisy; "
        + (
            f"region rounds: the median of {args.region_repeats} runs, this tree and a baseline taking turns"
            if args.region_repeats > 1
            else "one run each"
        ),
        "targets": {"national_wall_s": 15, "national_peak_rss_mb": 1024, "region_wall_s": 0.3},
        "runs": runs,
    }
    if args.region_only and args.output.exists():
        report = _merged_region(json.loads(args.output.read_text()), report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
