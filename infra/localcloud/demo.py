"""The main job: bring the local cloud up, seed a small realistic data set, drive a request
through the walking skeleton (API Gateway -> Lambda -> PostgreSQL + outbox -> EventBridge ->
SQS -> Kafka bridge -> Kafka) and print a readable summary."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import requests

from localcloud import kafka, smtp, stack
from localcloud.paths import LOG_DIR, STATE_DIR

SEED_FILE = STATE_DIR / "seed.json"

SEED_PATIENTS: list[dict[str, Any]] = [
    {
        "first_name": "Jürgen",
        "last_name": "Weiß",
        "birth_date": "1978-03-14",
        "postcode": "10115",
        "city": "Berlin",
        "email": "juergen.weiss@example.org",
        "phone": "+49 30 1234567",
    },
    {
        "first_name": "Änne",
        "last_name": "Müller",
        "birth_date": "1991-11-02",
        "postcode": "52062",
        "city": "Aachen",
        "email": "aenne.mueller@example.org",
    },
    {
        "first_name": "Özlem",
        "last_name": "Yılmaz",  # noqa: RUF001 - a real Turkish name
        "birth_date": "1985-06-21",
        "postcode": "50667",
        "city": "Köln",
        "phone": "0221 987654",
    },
    {
        "first_name": "Lukas",
        "last_name": "Schröder",
        "birth_date": "2001-01-30",
        "postcode": "80331",
        "city": "München",
        "email": "lukas.schroeder@example.org",
    },
    {"first_name": "Maria", "last_name": "Groß", "postcode": "01067", "city": "Dresden"},
]

DRIVE_PATIENT = {
    "first_name": "Søren",
    "last_name": "Bäcker",
    "birth_date": "1969-08-08",
    "postcode": "20095",
    "city": "Hamburg",
    "email": "soeren.baecker@example.org",
}


def _post_patient(base_url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(f"{base_url}/api/v2/patients", json=body, timeout=60)
    if response.status_code != 201:
        raise RuntimeError(f"POST /api/v2/patients answered {response.status_code}: {response.text}")
    created: dict[str, Any] = response.json()
    return created


def _seed(base_url: str) -> tuple[list[str], bool]:
    """Seed once; a second run finds the seeded patients and creates none."""
    if SEED_FILE.exists():
        ids: list[str] = json.loads(SEED_FILE.read_text())
        if ids and requests.get(f"{base_url}/api/v2/patients/{ids[0]}", timeout=30).status_code == 200:
            return ids, False
    ids = [_post_patient(base_url, patient)["id"] for patient in SEED_PATIENTS]
    SEED_FILE.write_text(json.dumps(ids))
    return ids, True


def _await_events(keys: set[str], timeout_s: float) -> dict[str, dict[str, Any]]:
    """Read patient-events from the start until every key has a patient.created event."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers(), enable_auto_commit=False, consumer_timeout_ms=1000
    )
    seen: dict[str, dict[str, Any]] = {}
    try:
        partitions = consumer.partitions_for_topic("patient-events") or {0}
        assigned = [TopicPartition("patient-events", partition) for partition in partitions]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not keys <= set(seen):
            for batch in consumer.poll(timeout_ms=1000).values():
                for record in batch:
                    key = record.key.decode() if record.key else ""
                    envelope = json.loads(record.value)
                    if key in keys and envelope.get("eventType") == "patient.created":
                        seen[key] = envelope
    finally:
        consumer.close()
    return seen


def run(up: Callable[..., dict[str, float]]) -> int:
    print(
        "1/4  Bringing the local cloud up (PostgreSQL, Tansu Kafka, SMTP, LocalStack; sam deploy)", flush=True
    )
    timings = up()
    info = stack.StackInfo.load()
    base_url = info.api_base_url

    print("2/4  Checking health and seeding patients", flush=True)
    health = requests.get(f"{base_url}/health", timeout=60)
    seed_ids, seeded_now = _seed(base_url)

    print("3/4  Driving a request: POST a patient, GET it back", flush=True)
    created = _post_patient(base_url, DRIVE_PATIENT)
    read_back = requests.get(f"{base_url}/api/v2/patients/{created['id']}", timeout=30)

    print("4/4  Waiting for the events on Kafka topic patient-events", flush=True)
    expected = {created["id"], *(seed_ids if seeded_now else [])}
    events = _await_events(expected, timeout_s=90)

    line = "-" * 78
    print(f"\n{line}\nTherapy matching platform - local stack summary\n{line}")
    print(f"Stack up in {timings['total']:.1f} s (deploy {timings.get('deploy', 0):.1f} s)")
    print(f"API base URL     {base_url}")
    components = health.json().get("components", {})
    states = ", ".join(f"{name} {state.get('status')}" for name, state in components.items())
    print(f"Health           {health.status_code} ({states})")
    seed_note = "created now" if seeded_now else "already there from an earlier run"
    print(f"Seed patients    {len(seed_ids)} ({seed_note})")
    where = f"{created['postcode']} {created['city']}"
    print(f"Created patient  {created['first_name']} {created['last_name']} ({where}) id={created['id']}")
    print(f"Read back        GET -> {read_back.status_code}")
    print(f"Kafka events     {len(events)}/{len(expected)} patient.created events seen on patient-events")
    for key, envelope in sorted(events.items(), key=lambda item: item[1]["timestamp"]):
        payload = envelope["payload"]
        print(
            f"   {envelope['eventType']:<16} key={key} eventId={envelope['eventId']} "
            f"{payload.get('first_name')} {payload.get('last_name')}"
        )
    print(f"Mail (Maildir)   {smtp.maildir_path()}  ({len(smtp.read_messages())} messages)")
    print(f"Server logs      {LOG_DIR}")
    print("Function logs    .venv/bin/localcloud logs PatientsApiFunction")
    print("Invoke any fn    .venv/bin/localcloud invoke HealthFunction --event health_api/get_health.json")
    print("Stop everything  .venv/bin/localcloud down")
    print(line)
    ok = health.status_code == 200 and read_back.status_code == 200 and expected <= set(events)
    if not ok:
        print("DEMO FAILED: see the lines above and the logs.")
    return 0 if ok else 1
