"""API under load through the local gateway (issue 15: 20 concurrent clients, mixed reads and
writes, 2 minutes: p95 <= 150 ms, 0 errors). Prints the figures and writes
benchmarks/results/api_load.json.

Bounded by construction: a fixed number of client threads (`--clients`), each sending one request
at a time (closed loop: the next only after the answer) for a fixed time (`--warmup` seconds not
counted, then `--duration` seconds measured), only to the local stack's API on 127.0.0.1
(`localcloud up`; the URL from its stack record; anything else is refused). Each client carries a
bearer token of the local identity provider for the staff role (as the e2e tests and the demo
obtain them: localcloud.identity.BearerSession), so every request passes the authorizer (whose
verdict the gateway caches per token for its TTL).

The mix per client (weights, `random.Random(seed + client)`):
- 25 % create: POST /api/v2/patients (a write: patient, audit and outbox rows, publish after commit)
- 40 % read:   GET /api/v2/patients/{id} of a patient created in this run (the read is audited)
- 20 % list:   GET /api/v2/patients?postcode_prefix=...&page=1 (one page and the total)
- 15 % update: GET the patient, then PATCH it with If-Match (both requests are counted)
An error is any answer other than the route's success status, or no answer (timeout 30 s).

    PYTHONPATH=layers/shared:infra:. .venv/bin/python benchmarks/api_load.py \
        [--clients 20] [--duration 120] [--warmup 15] [--label text]

Calibration (2 shared cores): cores, the load average before and after, the busiest other
processes sampled during the run, and `--label`, written with the figures.

What dominates (2026-12-06, results file `analysis`): the LocalStack process. With one client it
runs at ~74 % of a core for ~14 requests/s (~50 ms of its CPU per request: gateway, API Gateway
emulation, Lambda invocation, the after-commit PutEvents and the rule -> SQS -> consumer work a
write sets off, log and metric shipping; idle it uses 2 %); with 20 clients it saturates at
~26 requests/s (one GIL-bound core, 82 %), so a closed loop of 20 waits ~0.7 s per request. The
functions themselves (REPORT durations: p50 69 ms under that load, authorizer p50 8 ms, its
verdict cached per token) are a minority of it. A py-spy profile of LocalStack under load
(GIL samples) puts ~40 % in its HTTP gateway and handler chain and ~16 % in botocore clients it
uses to call itself (per-invocation CloudWatch metrics, Lambda, SQS).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
for extra in ("infra", "layers/shared", "benchmarks"):
    sys.path.insert(0, str(ROOT / extra))

import psutil  # noqa: E402
from calibration import pure_planning  # noqa: E402

from localcloud import identity, stack  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "api_load.json"
TARGET_P95_MS = 150.0
MIX = (("create", 25), ("read", 40), ("list", 20), ("update", 15))
POSTCODES = ("10115", "20095", "50667", "80331", "60311")


@dataclass(frozen=True)
class Sample:
    operation: str
    status: int  # 0: no answer
    latency_ms: float
    at: float  # seconds since the measured window began (negative: warm-up)
    ok: bool


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summary(samples: list[Sample]) -> dict[str, Any]:
    latencies = [s.latency_ms for s in samples]
    return {
        "requests": len(samples),
        "errors": sum(1 for s in samples if not s.ok),
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies, default=0.0), 1),
    }


class Client(threading.Thread):
    def __init__(self, number: int, base_url: str, start: float, end: float, seed: int) -> None:
        super().__init__(daemon=True, name=f"client-{number}")
        self.base_url = base_url
        self.start_at = start  # the measured window
        self.end_at = end
        self.random = random.Random(seed + number)
        self.session = identity.BearerSession("staff", user=f"load-{number}@praxisvermittlung.example.de")
        self.samples: list[Sample] = []
        self.error_examples: list[str] = []
        self.ids: list[str] = []

    def call(self, operation: str, method: str, path: str, expected: int, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            response = self.session.request(method, f"{self.base_url}{path}", timeout=30, **kwargs)
            status = response.status_code
        except Exception as error:  # no answer: an error like any other
            response, status = None, 0
            detail = type(error).__name__
        finished = time.monotonic()
        ok = status == expected
        if not ok and len(self.error_examples) < 5:
            detail = response.text[:200] if response is not None else detail
            self.error_examples.append(f"{operation} {status}: {detail}")
        self.samples.append(
            Sample(operation, status, (finished - started) * 1000, started - self.start_at, ok)
        )
        return response if ok else None

    def create(self) -> None:
        body = {
            "first_name": "Last",
            "last_name": f"Probe{self.random.randrange(10**6)}",
            "postcode": self.random.choice(POSTCODES),
            "symptoms": ["depression"],
        }
        response = self.call("create", "POST", "/api/v2/patients", 201, json=body)
        if response is not None:
            self.ids.append(response.json()["id"])

    def step(self) -> None:
        operation = self.random.choices([m[0] for m in MIX], weights=[m[1] for m in MIX])[0]
        if operation == "create" or not self.ids:
            self.create()
        elif operation == "read":
            self.call("read", "GET", f"/api/v2/patients/{self.random.choice(self.ids)}", 200)
        elif operation == "list":
            prefix = self.random.choice(POSTCODES)[:2]
            self.call("list", "GET", f"/api/v2/patients?postcode_prefix={prefix}&page=1", 200)
        else:
            patient_id = self.random.choice(self.ids)
            response = self.call("read", "GET", f"/api/v2/patients/{patient_id}", 200)
            if response is None:
                return
            changes = {"max_travel_km": self.random.randrange(5, 50)}
            headers = {"If-Match": response.headers.get("ETag", "")}
            self.call("update", "PATCH", f"/api/v2/patients/{patient_id}", 200, json=changes, headers=headers)

    def run(self) -> None:
        while time.monotonic() < self.end_at:
            self.step()


def other_processes() -> list[dict[str, Any]]:
    """The busiest processes over one second (names only): what else ran."""
    processes = list(psutil.process_iter(["pid", "name"]))
    for process in processes:
        try:
            process.cpu_percent(None)
        except psutil.Error:
            continue
    time.sleep(1.0)
    busy = []
    for process in processes:
        try:
            busy.append((process.cpu_percent(None), process.info["name"], process.cwd()))
        except psutil.Error:
            continue
    busy.sort(reverse=True)
    return [{"cpu_percent": round(cpu, 1), "name": name, "cwd": cwd} for cpu, name, cwd in busy[:8]]


def run(clients: int, duration_s: float, warmup_s: float, seed: int) -> dict[str, Any]:
    base_url = stack.StackInfo.load().api_base_url
    if urlsplit(base_url).hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"refusing to load anything but the local stack: {base_url}")
    start = time.monotonic() + warmup_s
    end = start + duration_s
    threads = [Client(number, base_url, start, end, seed) for number in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(warmup_s + duration_s / 2)
    busiest = other_processes()
    for thread in threads:
        thread.join()
    samples = [sample for thread in threads for sample in thread.samples]
    measured = [sample for sample in samples if 0 <= sample.at < duration_s]
    warmup = [sample for sample in samples if sample.at < 0]
    by_operation = {
        operation: summary([s for s in measured if s.operation == operation]) for operation, _ in MIX
    }
    return {
        "clients": clients,
        "duration_s": duration_s,
        "warmup_s": warmup_s,
        "all": summary(measured),
        "requests_per_s": round(len(measured) / duration_s, 1),
        "by_operation": by_operation,
        "statuses": dict(Counter(str(s.status) for s in measured)),
        "warmup": summary(warmup),
        "p95_per_10s": [
            round(percentile([s.latency_ms for s in measured if lo <= s.at < lo + 10], 0.95), 1)
            for lo in range(0, int(duration_s), 10)
        ],
        "error_examples": [example for thread in threads for example in thread.error_examples][:10],
        "busiest_processes_mid_run": busiest,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=120.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds before, not counted")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--label", default="", help="what this run is (before/after, what else ran)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    if not 1 <= args.clients <= 100 or not 0 < args.duration <= 600:
        parser.error("1-100 clients, at most 600 s")

    machine_speed = pure_planning()  # before the run, on the same machine state
    load_before = os.getloadavg()
    figures = run(args.clients, args.duration, args.warmup, args.seed)
    load_after = os.getloadavg()
    met = figures["all"]["p95_ms"] <= TARGET_P95_MS and figures["all"]["errors"] == 0
    result: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "label": args.label,
        "target": {"p95_ms": TARGET_P95_MS, "errors": 0, "clients": 20, "duration_s": 120},
        "met": met,
        "figures": figures,
        "calibration": {
            **machine_speed,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": [round(value, 2) for value in load_before],
            "load_average_after": [round(value, 2) for value in load_after],
        },
        "run_id": str(uuid.uuid4()),
    }
    print(json.dumps(result, indent=2))
    if not args.no_write:
        existing: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        runs = [*existing.get("runs", []), result]
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({**existing, "latest": result, "runs": runs}, indent=2) + "\n")
        print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
