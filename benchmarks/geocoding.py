"""Geocoding throughput from the shipped postcode table, all in-process and offline: table load
time, postcode lookups/s, nearest-postcode (reverse) lookups/s, geodesic distance computations/s,
distance + travel-time estimates/s, within_reach checks/s, and POST /api/v2/geocoding/distance
requests/s through the real handler (postcode sides: no database, no network). Prints them and
writes benchmarks/results/geocoding.json.

    .venv/bin/python benchmarks/geocoding.py [--seconds 1.0] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for extra in ("layers/shared", "tests"):
    sys.path.insert(0, str(ROOT / extra))

from therapy_platform.platform.geography.locations import (  # noqa: E402
    Location,
    TravelMode,
    distance_km,
    estimate_travel,
    within_reach,
)
from therapy_platform.platform.geography.postcodes import PostcodeDirectory  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "geocoding.json"
BATCH = 1000


def rate(operation: Callable[[int], object], seconds: float) -> dict[str, float]:
    """Run `operation(i)` in batches for about `seconds`; operations per second and mean µs."""
    done, started = 0, time.perf_counter()
    while True:
        for index in range(done, done + BATCH):
            operation(index)
        done += BATCH
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return {
                "per_s": round(done / elapsed, 1),
                "mean_us": round(elapsed / done * 1e6, 3),
                "count": done,
            }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    started = time.perf_counter()
    directory = PostcodeDirectory.load()
    load_ms = (time.perf_counter() - started) * 1000
    postcodes = directory.postcodes()
    locatable = directory.postcodes(locatable_only=True)

    lookups = [rng.choice(postcodes) for _ in range(BATCH)]
    points = [(rng.uniform(47.3, 55.0), rng.uniform(5.9, 15.0)) for _ in range(BATCH)]
    pairs: list[tuple[Location, Location]] = [
        (directory.centroid(rng.choice(locatable)), directory.centroid(rng.choice(locatable)))
        for _ in range(BATCH)
    ]
    # Matching-sized pairs: therapists within ~50 km of the patient.
    near_pairs = [
        (a, directory.centroid(found[0]))
        for a in (pair[0] for pair in pairs)
        if a.latitude is not None
        and a.longitude is not None
        and (found := directory.nearest(a.latitude + rng.uniform(-0.3, 0.3), a.longitude, within_km=40))
    ]
    modes = list(TravelMode)

    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "table": {"postcodes": len(directory), "locatable": len(locatable), "load_ms": round(load_ms, 1)},
        "postcode_lookups": rate(lambda i: directory.centroid(lookups[i % BATCH]), args.seconds),
        "nearest_postcode_lookups": rate(
            lambda i: directory.nearest(*points[i % BATCH], within_km=25), args.seconds
        ),
        "geodesic_distances": rate(lambda i: distance_km(*pairs[i % BATCH]), args.seconds),
        "distance_with_travel_estimate": rate(
            lambda i: estimate_travel(*pairs[i % BATCH], modes[i % 2]), args.seconds
        ),
        "within_reach_checks_near": rate(
            lambda i: within_reach(*near_pairs[i % len(near_pairs)], 25, modes[i % 2]), args.seconds
        ),
    }
    results["api_distance_requests"] = api_rate(directory, locatable, rng, args.seconds)

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


def api_rate(
    directory: PostcodeDirectory, locatable: list[str], rng: random.Random, seconds: float
) -> dict[str, Any]:
    """POST /api/v2/geocoding/distance through the real handler: validation, use case, response."""
    import logging

    from support import api_event, call, load_function
    from therapy_platform.geocoding.use_cases import GeocodingService

    logging.getLogger("function_geocoding_api_app").setLevel(logging.WARNING)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    module = load_function("geocoding_api")
    service = GeocodingService(postcodes=directory)
    module.service = service
    events = [
        api_event(
            "POST",
            "/api/v2/geocoding/distance",
            {
                "from": {"postcode": rng.choice(locatable)},
                "to": {"postcode": rng.choice(locatable)},
                "mode": "car",
            },
        )
        for _ in range(100)
    ]

    def request(i: int) -> None:
        status, _ = call(module.lambda_handler, events[i % len(events)])
        assert status == 200

    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(50):
            request(done)
            done += 1
    elapsed = time.perf_counter() - started
    return {"per_s": round(done / elapsed, 1), "mean_ms": round(elapsed / done * 1000, 3), "count": done}


if __name__ == "__main__":
    raise SystemExit(main())
