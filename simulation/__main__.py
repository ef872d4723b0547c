"""Compare matching policies in simulation (`make simulate`, docs/simulation.md).

    python -m simulation                                  # the default comparison
    python -m simulation --region 12 --weeks 39 --seed 7 --policies platform,upstream,cooling-14
    python -m simulation --replications 3 --workers 2 --out build/simulation

Prints the comparison table and writes `simulation.json` and `simulation.html` to `--out`.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from simulation.engine import Simulation
from simulation.metrics import measure
from simulation.policies import DEFAULT_COMPARISON, POLICIES, policy
from simulation.report import combine, table, write_html, write_json
from simulation.world import WorldSpec, build_world

DEFAULT_OUT = Path("build/simulation")


def run_one(spec: WorldSpec, name: str, full_checks: bool = False) -> dict[str, Any]:
    world = build_world(spec)
    started = time.perf_counter()
    simulation = Simulation(world, policy(name), full_checks=full_checks).run()
    figures = measure(simulation)
    figures["seconds"] = round(time.perf_counter() - started, 2)
    figures["seed"] = spec.seed
    figures["series"] = {
        "waiting": [d["waiting"] for d in simulation.log.daily],
        "placed": [d["placed"] for d in simulation.log.daily],
    }
    return figures


def _run_job(job: tuple[WorldSpec, str, bool]) -> dict[str, Any]:
    return run_one(*job)


def compare(
    spec: WorldSpec, names: list[str], *, replications: int = 1, workers: int = 2, full_checks: bool = False
) -> dict[str, Any]:
    jobs = [
        (replace(spec, seed=spec.seed + r), name, full_checks) for r in range(replications) for name in names
    ]
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_run_job, jobs))
    else:
        results = [_run_job(job) for job in jobs]
    by_policy: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for result in results:
        by_policy[result["policy"]].append(result)
    world = build_world(spec)
    return {
        "world": {
            **asdict(spec),
            "therapists": len(world.therapists),
            "practices": world.practices,
            "places_per_week": round(world.places_per_week, 2),
            "arrivals_per_week": round(world.arrivals_per_week, 2),
            "initial_waiting": sum(1 for a in world.arrivals if a.backlog),
        },
        "replications": replications,
        "policies": [
            {
                **combine([{k: v for k, v in run.items() if k != "series"} for run in runs]),
                "description": POLICIES[name].description,
            }
            for name, runs in by_policy.items()
        ],
        "runs": [{k: v for k, v in run.items() if k != "series"} for run in results],
        "series": {
            "waiting": {name: runs[0]["series"]["waiting"] for name, runs in by_policy.items()},
            "placed": {name: runs[0]["series"]["placed"] for name, runs in by_policy.items()},
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulation", description=__doc__.split("\n")[0])
    parser.add_argument("--region", default=WorldSpec.region, help="postcode prefix (default %(default)s)")
    parser.add_argument("--weeks", type=int, default=WorldSpec.weeks)
    parser.add_argument("--warmup-weeks", type=int, default=WorldSpec.warmup_weeks)
    parser.add_argument("--seed", type=int, default=WorldSpec.seed)
    parser.add_argument(
        "--replications", type=int, default=3, help="seeds seed, seed+1, ... (default %(default)s)"
    )
    parser.add_argument(
        "--policies", default=",".join(DEFAULT_COMPARISON), help=f"comma-separated, of: {', '.join(POLICIES)}"
    )
    parser.add_argument("--load", type=float, default=WorldSpec.load, help="new searches per place opening")
    parser.add_argument("--places", type=float, default=WorldSpec.places_per_therapist_month)
    parser.add_argument("--therapists", type=int, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--full-checks", action="store_true", help="walk every search every day (slower)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.policies.split(",") if n.strip()]
    for name in names:
        policy(name)
    spec = WorldSpec(
        region=args.region,
        weeks=args.weeks,
        warmup_weeks=args.warmup_weeks,
        seed=args.seed,
        load=args.load,
        places_per_therapist_month=args.places,
        therapists=args.therapists,
    )
    started = time.perf_counter()
    report = compare(
        spec, names, replications=args.replications, workers=args.workers, full_checks=args.full_checks
    )
    report["seconds"] = round(time.perf_counter() - started, 1)
    world = report["world"]
    print(
        f"region {world['region'] or 'all'}: {world['therapists']} therapists in "
        f"{world['practices']} practices, {world['places_per_week']} places open per week, "
        f"{world['arrivals_per_week']} new searches per week, "
        f"{world['initial_waiting']} waiting at the start; {args.weeks} weeks, seed {args.seed}, "
        f"{args.replications} replication(s), {report['seconds']} s"
    )
    print(table(report["policies"]))
    write_json(args.out / "simulation.json", report)
    write_html(args.out / "simulation.html", report)
    print(f"report: {args.out / 'simulation.html'}, {args.out / 'simulation.json'}")
    violations = sum(row["invariant_violations"] for row in report["policies"])
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
