"""The main job: bring the local cloud up, fill the therapist pool from the (local) 116117
directory the way the weekly schedule does (scraper -> S3 -> import), seed patients through the
patient API, drive a request through the architecture (API Gateway -> Lambda -> PostgreSQL +
outbox -> EventBridge -> SQS -> Kafka bridge -> Kafka), start searches, run a bundle round sent
at once, wait for the inquiry emails in the local SMTP server's Maildir and the phone-call tasks,
and print a readable summary."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import requests

from localcloud import identity, kafka, smtp, stack
from localcloud.paths import LOG_DIR, STATE_DIR
from therapy_platform.platform.problems import describe_problem

SEED_FILE = STATE_DIR / "seed.json"
DIRECTORY_REGION = "10"  # Berlin: the local directory server's practices (localcloud.directory)
# The demo calls the API as a staff member, with a token of the local identity provider.
STAFF = identity.BearerSession("staff", user="demo@praxisvermittlung.example.de")

SEED_PATIENTS: list[dict[str, Any]] = [
    {
        "salutation": "Herr",
        "gender": "male",
        "first_name": "Jürgen",
        "last_name": "Weiß",
        "birth_date": "1978-03-14",
        "street": "Invalidenstraße 12",
        "postcode": "10115",
        "city": "Berlin",
        "email": "juergen.weiss@example.org",
        "phone": "+49 30 1234567",
        "health_insurer": "AOK Nordost",
        "symptoms": ["depression", "sleep", "burnout"],
        "previous_therapy": True,
        "last_therapy_session": "2019-05-20",
        "therapy_procedures": ["VT", "TP"],
        "availability": {"mon": ["08:00-12:00"], "thu": ["14:00-18:00"]},
    },
    {
        "salutation": "Frau",
        "gender": "female",
        "first_name": "Änne",
        "last_name": "Müller",
        "birth_date": "1991-11-02",
        "postcode": "52062",
        "city": "Aachen",
        "email": "aenne.mueller@example.org",
        "health_insurer": "Techniker Krankenkasse",
        "symptoms": ["anxiety", "panic"],
        "preferred_therapist_gender": "female",
        "open_to_group_therapy": True,
        "travel_mode": "car",
        "max_travel_km": 40,
    },
    {
        "salutation": "Frau",
        "gender": "female",
        "first_name": "Özlem",
        "last_name": "Yılmaz",  # noqa: RUF001 - a real Turkish name
        "birth_date": "1985-06-21",
        "postcode": "50667",
        "city": "Köln",
        "phone": "0221 987654",
        "health_insurer": "BARMER",
        "symptoms": ["trauma", "anxiety"],
        "languages": ["tr", "de"],
        "needs_shared_language": True,
        "therapy_procedures": ["VT"],
    },
    {
        "salutation": "Herr",
        "gender": "male",
        "first_name": "Lukas",
        "last_name": "Schröder",
        "birth_date": "2001-01-30",
        "postcode": "80331",
        "city": "München",
        "email": "lukas.schroeder@example.org",
        "health_insurer": "DAK-Gesundheit",
        "symptoms": ["adhd", "self_esteem"],
        "availability": {"tue": ["16:00-20:00"], "fri": ["08:00-12:00"]},
    },
    {
        "first_name": "Maria",
        "last_name": "Groß",
        "gender": "female",
        "postcode": "01067",
        "city": "Dresden",
        "health_insurer": "IKK classic",
        "symptoms": ["eating_disorder"],
        "group_only": True,
    },
]


def _waiting(first: str, last: str, gender: str, birth: str, postcode: str, **extra: Any) -> dict[str, Any]:
    """A Berlin patient waiting for a place (the round below builds bundles for them)."""
    return {
        "salutation": {"female": "Frau", "male": "Herr"}.get(gender),
        "gender": gender,
        "first_name": first,
        "last_name": last,
        "birth_date": birth,
        "postcode": postcode,
        "city": "Berlin",
        "health_insurer": extra.pop("health_insurer", "AOK Nordost"),
        "symptoms": extra.pop("symptoms", ["depression", "anxiety"]),
        "max_travel_km": 15,
        **extra,
    }


# Berlin patients waiting near the practices the directory import brings (postcodes 10xxx).
SEED_WAITING: list[dict[str, Any]] = [
    _waiting("Björn", "Großmann", "male", "1969-08-09", "10437", symptoms=["burnout", "sleep"]),
    _waiting("Zoë", "Lindemann", "female", "1996-02-17", "10405", health_insurer="Techniker Krankenkasse"),
    _waiting("Jürgen", "Nußbaum", "male", "1958-12-01", "10115", previous_therapy=True),
    _waiting("Chiara", "D'Angelo", "female", "2003-05-05", "10178", symptoms=["social_anxiety"]),
    _waiting("Aylin", "Kaya", "diverse", "1990-09-30", "10119", languages=["de", "tr"]),
]


DRIVE_PATIENT = {
    "salutation": "Herr",
    "gender": "male",
    "first_name": "Søren",
    "last_name": "Bäcker",
    "birth_date": "1969-08-08",
    "street": "Mönckebergstraße 7",
    "postcode": "20095",
    "city": "Hamburg",
    "email": "soeren.baecker@example.org",
    "health_insurer": "HEK - Hanseatische Krankenkasse",
    "symptoms": ["grief", "depression"],
    "languages": ["de", "en"],
}


def _problem(response: requests.Response) -> str:
    """An error answer as the API names it (code, title, each field's German message)."""
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code}: {response.text[:500]}"
    if isinstance(body, dict):
        return describe_problem(body, status=response.status_code)
    return f"{response.status_code}: {response.text[:500]}"


def _post(base_url: str, resource: str, body: dict[str, Any]) -> dict[str, Any]:
    response = STAFF.post(f"{base_url}/api/v2/{resource}", json=body, timeout=60)
    if response.status_code != 201:
        raise RuntimeError(f"POST /api/v2/{resource} answered {_problem(response)}")
    created: dict[str, Any] = response.json()
    return created


def _seed(base_url: str) -> tuple[dict[str, list[str]], bool]:
    """Seed once through the services' APIs; a second run finds the seed and creates nothing."""
    if SEED_FILE.exists():
        seeded: dict[str, list[str]] = json.loads(SEED_FILE.read_text())
        first = seeded.get("patients", [None])[0] if isinstance(seeded, dict) else None
        if first and STAFF.get(f"{base_url}/api/v2/patients/{first}", timeout=30).status_code == 200:
            if not seeded.get("waiting"):  # a seed from before the Berlin waiting patients existed
                seeded["waiting"] = [_post(base_url, "patients", patient)["id"] for patient in SEED_WAITING]
                seeded["patients"] += seeded["waiting"]
                SEED_FILE.write_text(json.dumps(seeded))
            return seeded, False
    seeded = {
        "patients": [_post(base_url, "patients", patient)["id"] for patient in SEED_PATIENTS],
        "waiting": [_post(base_url, "patients", patient)["id"] for patient in SEED_WAITING],
    }
    seeded["patients"] += seeded["waiting"]
    SEED_FILE.write_text(json.dumps(seeded))
    return seeded, True


def _start_searches(base_url: str, patient_ids: list[str], timeout_s: float = 90) -> dict[str, int]:
    """A search per seeded patient. The matching service learns of a new patient through events
    (404 until then, so retry); 409 means the search exists from an earlier run."""
    outcome = {"started": 0, "existing": 0, "not_ready": 0}
    deadline = time.monotonic() + timeout_s
    for patient_id in patient_ids:
        while True:
            response = STAFF.post(
                f"{base_url}/api/v2/patient-searches",
                json={"patient_id": patient_id},
                timeout=60,
            )
            if response.status_code != 404 or time.monotonic() > deadline:
                break
            time.sleep(1)
        if response.status_code == 201:
            outcome["started"] += 1
        elif response.status_code == 409:
            outcome["existing"] += 1
        else:
            outcome["not_ready"] += 1
    return outcome


def _round(base_url: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A bundle round on demand, sent at once; then every bundle waiting for an answer."""
    response = STAFF.post(f"{base_url}/api/v2/bundles/create", json={"send_immediately": True}, timeout=120)
    if response.status_code != 201:
        raise RuntimeError(f"POST /api/v2/bundles/create answered {_problem(response)}")
    sent = STAFF.get(f"{base_url}/api/v2/bundles", params={"status": "sent", "limit": "50"}, timeout=60)
    return response.json(), sent.json()["items"]


def _read_model_counts() -> dict[str, int]:
    """How many profiles the matching service's read models hold (fed by events)."""
    from sqlalchemy import create_engine, text

    from localcloud import postgres

    engine = create_engine(postgres.admin_url())
    try:
        with engine.connect() as connection:
            return {
                table: int(
                    connection.execute(text(f"SELECT count(*) FROM matching_service.{table}")).scalar_one()
                )
                for table in ("patient_profiles", "therapist_profiles")
            }
    finally:
        engine.dispose()


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


def _import_directory(base_url: str, timeout_s: float = 600) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the weekly schedule for the region does, now: invoke the scraper with the schedule's
    own input; its raw file in S3 triggers the import (S3 -> EventBridge -> SQS -> import
    function). Returns the scraper's run and the import report (an unchanged file imported
    before has its earlier report)."""
    event = {**stack.directory_schedule_input(DIRECTORY_REGION), "trigger": "demo"}
    run = stack.invoke("DirectoryScraperFunction", event)
    if run.error or not isinstance(run.payload, dict) or run.payload.get("status") == "failed":
        raise RuntimeError(f"the directory scraper failed: {run.payload}\n{run.logs}")
    key = run.payload["raw_object_key"]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        listing = STAFF.get(f"{base_url}/api/v2/imports", params={"limit": "50"}, timeout=60)
        if listing.status_code == 200:
            done = [
                item
                for item in listing.json()["items"]
                if item["source"].endswith(key) and item["status"] != "running"
            ]
            if done:
                return run.payload, done[0]
        time.sleep(2)
    raise RuntimeError(f"no import report for {key} within {timeout_s:.0f} s")


def _await_therapist_profiles(expected: int, timeout_s: float = 180) -> int:
    """The matching service learns of imported therapists through events: wait for them."""
    deadline = time.monotonic() + timeout_s
    while True:
        count = _read_model_counts()["therapist_profiles"]
        if count >= expected or time.monotonic() > deadline:
            return count
        time.sleep(2)


def _reply_tag(message: Any) -> str:
    """The bundle reference an email carries in its Reply-To (antwort+B123@...)."""
    reply_to = str(message.get("Reply-To", ""))
    return reply_to.split("+", 1)[1].split("@", 1)[0] if "+" in reply_to else ""


def _await_follow_up(
    base_url: str, bundles: list[dict[str, Any]], timeout_s: float = 180
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Inquiry emails in the Maildir for bundles sent by email, phone-call tasks for the others.
    Returns (reference -> email, reference -> call task) for those that arrived in time."""
    by_email = {b["reference"] for b in bundles if b["channel"] == "email"}
    by_phone = {b["reference"] for b in bundles if b["channel"] != "email"}
    emails: dict[str, Any] = {}
    calls: dict[str, Any] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for message in smtp.read_messages():
            if _reply_tag(message) in by_email:
                emails.setdefault(_reply_tag(message), message)
        for reference in by_phone - set(calls):
            found = STAFF.get(
                f"{base_url}/api/v2/phone-calls", params={"bundle_reference": reference}, timeout=60
            )
            if found.status_code == 200 and found.json()["items"]:
                calls[reference] = found.json()["items"][0]
        if by_email <= set(emails) and by_phone <= set(calls):
            break
        time.sleep(2)
    return emails, calls


def run(up: Callable[..., dict[str, float]]) -> int:
    print(
        "1/7  Bringing the local cloud up (PostgreSQL, Tansu Kafka, SMTP, directory, LocalStack; sam deploy)",
        flush=True,
    )
    timings = up()
    info = stack.StackInfo.load()
    base_url = info.api_base_url
    health = requests.get(f"{base_url}/health", timeout=60)  # public: no token

    print(f"2/7  Importing the therapist pool: the 116117 schedule for region {DIRECTORY_REGION}", flush=True)
    scrape, report = _import_directory(base_url)
    pool = STAFF.get(f"{base_url}/api/v2/therapists", params={"limit": "1"}, timeout=60).json()["total"]
    profiles = _await_therapist_profiles(pool)

    print("3/7  Seeding patients and driving a request: POST a patient, GET it back", flush=True)
    seeded, seeded_now = _seed(base_url)
    seed_ids = seeded["patients"]
    created = _post(base_url, "patients", DRIVE_PATIENT)
    read_back = STAFF.get(f"{base_url}/api/v2/patients/{created['id']}", timeout=30)

    print("4/7  Waiting for the events on Kafka topic patient-events", flush=True)
    expected = {created["id"], *(seed_ids if seeded_now else [])}
    events = _await_events(expected, timeout_s=90)

    print("5/7  Starting a patient search for every seeded patient", flush=True)
    searches = _start_searches(base_url, seed_ids)

    print("6/7  Running a bundle round (POST /api/v2/bundles/create, sent at once)", flush=True)
    round_result, open_bundles = _round(base_url)

    print("7/7  Waiting for the inquiry emails (local SMTP server) and the phone-call tasks", flush=True)
    # This round's bundles (a repeated demo finds its patients in earlier runs' open bundles).
    made_now = {b["reference"] for b in round_result["bundles"]}
    emails, calls = _await_follow_up(base_url, [b for b in open_bundles if b["reference"] in made_now])

    line = "-" * 78
    print(f"\n{line}\nTherapy matching platform - local stack summary\n{line}")
    print(f"Stack up in {timings['total']:.1f} s (deploy {timings.get('deploy', 0):.1f} s)")
    print(f"API base URL     {base_url}")
    components = health.json().get("components", {})
    states = ", ".join(f"{name} {state.get('status')}" for name, state in components.items())
    print(f"Health           {health.status_code} ({states})")
    print(
        f"Directory run    region {DIRECTORY_REGION}: {scrape['pages']} pages, {scrape['entries']} entries, "
        f"{scrape.get('enriched', 0)} completed from practice websites -> s3://.../{scrape['raw_object_key']}"
    )
    counts = report["counts"]
    reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(report["skip_reasons"].items())) or "none"
    print(
        f"Import report    {report['id']}: new {counts['new']}, updated {counts['updated']}, "
        f"unchanged {counts['unchanged']}, skipped {counts['skipped']} ({reasons})"
    )
    print(f"Therapist pool   {pool} therapists; matching read model: {profiles} therapist profiles")
    seed_note = "created now" if seeded_now else "already there from an earlier run"
    print(f"Seed patients    {len(seed_ids)} patients ({seed_note})")
    where = f"{created['postcode']} {created['city']}"
    location = created.get("location") or {}
    print(f"Created patient  {created['first_name']} {created['last_name']} ({where}) id={created['id']}")
    point = f"{location.get('latitude')}, {location.get('longitude')}"
    print(f"   located at    {point} ({location.get('precision')})")
    print(f"Read back        GET -> {read_back.status_code}")
    print(f"Kafka events     {len(events)}/{len(expected)} patient.created events seen on patient-events")
    print(
        f"Searches         {searches['started']} started now, {searches['existing']} from earlier runs, "
        f"{searches['not_ready']} not ready (e.g. address not located)"
    )
    made = round_result["bundles"]
    print(
        f"Bundle round     {len(made)} new bundles from {round_result['therapists_considered']} therapists "
        f"and {round_result['searches_considered']} searches; {len(open_bundles)} bundles await an answer"
    )
    for bundle in open_bundles[:10]:
        references = ", ".join(m["reference"] for m in bundle["members"])
        print(
            f"   {bundle['reference']:<6} to therapist {bundle['therapist_id']} by {bundle['channel']}: "
            f"{len(bundle['members'])} patients ({references})"
        )
    by_email = [b for b in open_bundles if b["channel"] == "email" and b["reference"] in made_now]
    by_phone = [b for b in open_bundles if b["channel"] != "email" and b["reference"] in made_now]
    print(
        f"Inquiry emails   {len(emails)}/{len(by_email)} of this round in the Maildir {smtp.maildir_path()} "
        f"({len(smtp.read_messages())} messages in all)"
    )
    for reference, message in sorted(emails.items())[:5]:
        print(f"   {reference:<6} to {message['To']}: {message['Subject']}")
    print(f"Phone-call tasks {len(calls)}/{len(by_phone)} of this round (GET /api/v2/phone-calls)")
    for reference, call in sorted(calls.items())[:5]:
        rule = call.get("scheduling_rule")
        print(f"   {reference:<6} {call['slot_start']} {call['therapist_name']} ({call['purpose']}, {rule})")
    print(f"API docs         {base_url}/api/v2/docs  (OpenAPI: {base_url}/api/v2/openapi.json)")
    print("Call the API     TOKEN=$(.venv/bin/localcloud token --role staff)   (or --role admin|auditor)")
    print(f'                 curl -H "Authorization: Bearer $TOKEN" {base_url}/api/v2/patients')
    print(f"Server logs      {LOG_DIR}")
    print("Function logs    .venv/bin/localcloud logs PatientsApiFunction")
    print("Invoke any fn    .venv/bin/localcloud invoke HealthFunction --event health_api/get_health.json")
    print("Stop everything  .venv/bin/localcloud down")
    print(line)
    ok = (
        health.status_code == 200
        and report["status"] != "failed"
        and pool > 0
        and read_back.status_code == 200
        and expected <= set(events)
        and len(open_bundles) > 0
        and len(emails) == len(by_email)
        and len(calls) == len(by_phone)
    )
    if not ok:
        print("DEMO FAILED: see the lines above and the logs.")
    return 0 if ok else 1
