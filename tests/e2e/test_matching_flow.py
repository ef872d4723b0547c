"""The matching engine through the deployed local stack: patients and therapists registered
through their APIs reach the matching read models, searches, a round on demand (dry run, then
sent at once), bundle detail without names, responses with placement, repeat, conflict and
alert; the patient service and the therapist service follow the events; Kafka carries them;
two rounds invoked at the same moment never double-book a practice."""

from __future__ import annotations

import random
import smtplib
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from datetime import time as time_of_day
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from sqlalchemy import create_engine, text

from cloud_support import ApiCaller, consume_until, eventually
from localcloud import postgres, smtp, stack

pytestmark = pytest.mark.e2e

STAFF = ApiCaller("staff", user="e2e-matching@praxisvermittlung.example.de")
BERLIN = ZoneInfo("Europe/Berlin")
# Small towns far apart: each run picks one, so leftovers of earlier runs rarely compete.
# Towns no other test registers patients in: the flow asserts the exact members of its bundles.
TOWNS = ["18055", "06108", "36037", "66111", "26122"]


def _post(base_url: str, path: str, body: Any) -> requests.Response:
    return STAFF.post(f"{base_url}{path}", json=body, timeout=60)


def _eventually(probe: Callable[[], Any], timeout_s: float = 90, every: float = 1.0) -> Any:
    return eventually(probe, timeout_s=timeout_s, every=every)


@pytest.fixture
def region(base_url: str) -> Iterator[dict[str, Any]]:
    postcode = random.choice(TOWNS)
    made: dict[str, Any] = {"postcode": postcode, "searches": []}
    yield made
    for search_id in made["searches"]:  # leave nothing active for later runs
        STAFF.patch(
            f"{base_url}/api/v2/patient-searches/{search_id}",
            json={"status": "cancelled"},
            headers={"If-Match": "*"},  # cleanup: whatever the search's version
            timeout=30,
        )


def _free_tuesday_half_hour(base_url: str) -> time_of_day:
    """The first half hour from 09:00 on the Tuesdays of the coming week (the planner's horizon)
    in which no scheduled call holds a slot; a Tuesday today counts from two hours ahead."""
    now = datetime.now(BERLIN)
    tuesdays = [
        now.date() + timedelta(days=d) for d in range(8) if (now.date() + timedelta(days=d)).weekday() == 1
    ]
    taken: set[time_of_day] = set()
    for day in tuesdays:
        page = 1
        while True:
            response = STAFF.get(
                f"{base_url}/api/v2/phone-calls",
                params={"status": "scheduled", "date": day.isoformat(), "page": str(page), "limit": "100"},
                timeout=30,
            )
            assert response.status_code == 200, response.text
            body = response.json()
            taken |= {
                datetime.fromisoformat(c["slot_start"]).astimezone(BERLIN).time() for c in body["items"]
            }
            if page * 100 >= body["total"]:
                break
            page += 1
    earliest = (now + timedelta(hours=2)).time() if now.weekday() == 1 else time_of_day(0, 0)
    for hour in range(9, 18):
        for minute in (0, 30):
            start = time_of_day(hour, minute)
            slots = {time_of_day(hour, minute + m) for m in range(0, 30, 5)}
            if start >= earliest and not slots & taken:
                return start
    pytest.fail("every Tuesday half hour of the coming week already holds a call")


def _therapist(base_url: str, postcode: str, **extra: Any) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    body = {
        "first_name": "Jörg",
        "last_name": f"Weißmann{tag}",
        "postcode": postcode,
        "email": f"praxis-{tag}@example.de",
        "procedures": ["VT", "TP"],
        "phone_windows": {"mon": ["08:00-09:00"]},
        **extra,
    }
    response = _post(base_url, "/api/v2/therapists", body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _search(base_url: str, region: dict[str, Any], n: int) -> dict[str, Any]:
    patient = _post(
        base_url,
        "/api/v2/patients",
        {
            "first_name": "Ümit",
            "last_name": f"Özdemir{n}",
            "postcode": region["postcode"],
            "birth_date": "1988-04-02",
            "gender": "male",
            "symptoms": ["depression", "anxiety"],
            "max_travel_km": 10,
            "health_insurer": "AOK Bayern",
        },
    )
    assert patient.status_code == 201, patient.text
    patient_id = patient.json()["id"]

    def create() -> requests.Response | None:
        response = _post(base_url, "/api/v2/patient-searches", {"patient_id": patient_id})
        return None if response.status_code == 404 else response  # the read model is a moment behind

    created = _eventually(create)
    assert created is not None and created.status_code == 201, created.text if created else "never known"
    region["searches"].append(created.json()["id"])
    return {"patient_id": patient_id, **created.json()}


def _known_therapists(base_url: str, ids: list[str]) -> None:
    def known() -> bool:
        response = _post(base_url, "/api/v2/bundles/create", {"dry_run": True, "therapist_ids": ids})
        return response.status_code == 200 and response.json()["therapists_considered"] >= len(ids)

    assert _eventually(known), "therapists never reached the matching read model"


def test_search_round_response_conflict_and_followers(base_url: str, region: dict[str, Any]) -> None:
    first = _therapist(base_url, region["postcode"])
    second = _therapist(base_url, region["postcode"])
    searches = [_search(base_url, region, n) for n in range(3)]
    again = _post(base_url, "/api/v2/patient-searches", {"patient_id": searches[0]["patient_id"]})
    assert again.status_code == 409 and "unfinished search" in again.json()["detail"]
    assert again.headers["Content-Type"] == "application/problem+json" and again.json()["code"] == "conflict"
    therapist_ids = [first["id"], second["id"]]
    _known_therapists(base_url, therapist_ids)

    dry = _post(base_url, "/api/v2/bundles/create", {"dry_run": True, "therapist_ids": therapist_ids})
    assert dry.status_code == 200 and dry.json()["round_id"] is None
    assert {b["therapist_id"] for b in dry.json()["bundles"]} == set(therapist_ids)
    nothing = STAFF.get(f"{base_url}/api/v2/bundles", params={"therapist_id": first["id"]}, timeout=30)
    assert nothing.json()["total"] == 0

    round_ = _post(
        base_url, "/api/v2/bundles/create", {"therapist_ids": therapist_ids, "send_immediately": True}
    )
    assert round_.status_code == 201, round_.text
    bundles = {b["therapist_id"]: b for b in round_.json()["bundles"]}
    assert {b["status"] for b in bundles.values()} == {"sent"}
    ours = {s["id"] for s in searches}
    assert {m["search_id"] for m in bundles[first["id"]]["members"]} == ours

    bundle_a = bundles[first["id"]]["bundle_id"]
    detail = STAFF.get(f"{base_url}/api/v2/bundles/{bundle_a}", timeout=30)
    assert detail.status_code == 200
    assert "Özdemir" not in detail.text and "Ümit" not in detail.text  # data-minimised
    summary = detail.json()["members"][0]["patient"]
    assert (
        summary["age"] >= 37
        and summary["distance_band"] == "up to 5 km"
        and summary["reference"].startswith("B")
    )

    target = searches[0]["id"]
    outcomes = [
        {"search_id": s["id"], "outcome": "accepted" if s["id"] == target else "rejected_capacity"}
        for s in searches
    ]
    missing = STAFF.put(
        f"{base_url}/api/v2/bundles/{bundle_a}/response",
        json={"members": outcomes[:2]},
        timeout=30,
    )
    assert missing.status_code == 400 and missing.json()["missing"] == [searches[2]["id"]]
    answered = STAFF.put(
        f"{base_url}/api/v2/bundles/{bundle_a}/response",
        json={"members": outcomes},
        timeout=30,
    )
    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert body["bundle"]["response_type"] == "partial_acceptance"
    assert [p["search_id"] for p in body["placements"]] == [target]
    assert [w["therapist_id"] for w in body["withdrawals"]] == [second["id"]]
    repeat = STAFF.put(
        f"{base_url}/api/v2/bundles/{bundle_a}/response",
        json={"members": outcomes},
        timeout=30,
    )
    assert repeat.status_code == 200 and repeat.json()["repeated"] is True
    different = [{**o, "outcome": "rejected_other"} for o in outcomes]
    assert (
        STAFF.put(
            f"{base_url}/api/v2/bundles/{bundle_a}/response",
            json={"members": different},
            timeout=30,
        ).status_code
        == 409
    )

    bundle_b = bundles[second["id"]]["bundle_id"]
    late = STAFF.put(
        f"{base_url}/api/v2/bundles/{bundle_b}/response",
        json={"members": outcomes},
        timeout=30,
    )
    assert late.status_code == 200 and [c["search_id"] for c in late.json()["conflicts"]] == [target]
    alerts = STAFF.get(f"{base_url}/api/v2/alerts", timeout=30).json()
    assert any(a["search_id"] == target and a["therapist_id"] == second["id"] for a in alerts)

    # the patient service and the therapist service follow the events
    patient = searches[0]["patient_id"]
    in_therapy = _eventually(
        lambda: (
            STAFF.get(f"{base_url}/api/v2/patients/{patient}", timeout=30).json()["status"] == "in_therapy"
        )
    )
    assert in_therapy, "the patient service never saw search.status_changed"
    cooled = _eventually(
        lambda: STAFF.get(f"{base_url}/api/v2/therapists/{first['id']}/cooling-period", timeout=30).json()[
            "in_cooling_period"
        ]
    )
    assert cooled, "the therapist service never stored the cooling period"

    def answered_on_kafka(seen: dict[str, dict[str, Any]]) -> bool:
        return any(
            m["envelope"]["eventType"] == "bundle.response_received" and m["key"] == bundle_a
            for m in seen.values()
        )

    assert answered_on_kafka(consume_until("bundle-events", answered_on_kafka, timeout_s=120))


def test_two_rounds_at_the_same_moment_never_double_book(
    deployed: stack.StackInfo, base_url: str, region: dict[str, Any]
) -> None:
    shared = f"gemeinschaftspraxis-{uuid.uuid4().hex[:6]}@example.de"
    therapists = [_therapist(base_url, region["postcode"], email=shared) for _ in range(2)]
    therapists += [_therapist(base_url, region["postcode"]) for _ in range(3)]
    for n in range(12):  # 12 searches x 3 open bundles: enough for four full bundles
        _search(base_url, region, n)
    ids = [t["id"] for t in therapists]
    _known_therapists(base_url, ids)
    event = {"therapist_ids": ids}
    with ThreadPoolExecutor(2) as pool:
        results = list(
            pool.map(lambda _: stack.invoke("BundleRoundFunction", event, info=deployed), range(2))
        )
    assert all(r.error is None for r in results), [r.payload for r in results]
    assert sum(r.payload["bundles"] for r in results) == 4  # one per practice: the shared one counts once
    engine = create_engine(postgres.admin_url())
    try:
        with engine.connect() as connection:
            open_bundles = connection.execute(
                text(
                    "SELECT practice_key, count(*) FROM matching_service.bundles "
                    "WHERE status IN ('draft','sent') AND therapist_id = ANY(:ids) GROUP BY practice_key"
                ),
                {"ids": [uuid.UUID(i) for i in ids]},
            ).all()
            per_search = connection.execute(
                text(
                    "SELECT max(n) FROM (SELECT count(*) AS n FROM matching_service.bundle_members m "
                    "JOIN matching_service.bundles b ON b.id = m.bundle_id "
                    "WHERE b.status IN ('draft','sent') AND m.search_id = ANY(:s) GROUP BY m.search_id) x"
                ),
                {"s": [uuid.UUID(s) for s in region["searches"]]},
            ).scalar_one()
    finally:
        engine.dispose()
    assert len(open_bundles) == 4 and all(count == 1 for _, count in open_bundles)
    assert per_search <= 3  # the open-bundle limit


def _reply_reference(message: Any) -> str:
    reply_to = str(message.get("Reply-To", ""))
    return reply_to.split("+", 1)[1].split("@", 1)[0] if "+" in reply_to else ""


def test_sent_bundles_become_inquiry_emails_and_call_tasks_and_replies_are_taken_in(
    deployed: stack.StackInfo, base_url: str, region: dict[str, Any]
) -> None:
    """bundle.sent -> communication service: an email for a therapist with an address (in the
    local SMTP server's Maildir, without patient names), a phone-call task in the phone window
    for one without; a reply to the reply address lands in the bundle's history."""
    with_email = _therapist(base_url, region["postcode"])
    # A Tuesday half hour no scheduled call occupies yet: the local database keeps the calls of
    # earlier runs, and one calling line holds one call per slot.
    window_start = _free_tuesday_half_hour(base_url)
    window_end = (datetime.combine(datetime.now(BERLIN).date(), window_start) + timedelta(minutes=30)).time()
    window = f"{window_start:%H:%M}-{window_end:%H:%M}"
    without_email = _therapist(
        base_url, region["postcode"], email=None, phone="0931 123456", phone_windows={"tue": [window]}
    )
    for n in range(3):
        _search(base_url, region, n)
    ids = [with_email["id"], without_email["id"]]
    _known_therapists(base_url, ids)
    round_ = _post(base_url, "/api/v2/bundles/create", {"therapist_ids": ids, "send_immediately": True})
    assert round_.status_code == 201, round_.text
    bundles = {
        b["therapist_id"]: STAFF.get(f"{base_url}/api/v2/bundles/{b['bundle_id']}", timeout=30).json()
        for b in round_.json()["bundles"]
    }
    by_email, by_phone = bundles[with_email["id"]], bundles[without_email["id"]]
    assert (by_email["channel"], by_phone["channel"]) == ("email", "phone")

    def inquiry() -> Any:
        found = [m for m in smtp.read_messages() if _reply_reference(m) == by_email["reference"]]
        return found[0] if found else None

    message = _eventually(inquiry, timeout_s=120)
    assert message is not None, "no inquiry email reached the local SMTP server"
    assert message["To"] == with_email["email"] or with_email["email"] in str(message["To"])
    text_body = message.get_body(preferencelist=("plain",)).get_content()
    assert by_email["members"][0]["reference"] in text_body
    assert "Özdemir" not in text_body and "Ümit" not in text_body  # data-minimised

    def call_task() -> Any:
        response = STAFF.get(
            f"{base_url}/api/v2/phone-calls", params={"bundle_reference": by_phone["reference"]}, timeout=30
        )
        return response.json()["items"] if response.status_code == 200 else None

    calls = _eventually(call_task, timeout_s=120)
    assert calls, "no phone-call task for the therapist without email"
    (call,) = calls
    slot = datetime.fromisoformat(call["slot_start"]).astimezone(BERLIN)
    assert call["purpose"] == "inquiry" and call["scheduling_rule"] == "phone_window"
    assert slot.weekday() == 1 and slot.minute % 5 == 0  # Tuesday, on a 5-minute boundary
    assert window_start <= slot.time() < window_end
    done = _post(base_url, f"/api/v2/phone-calls/{call['id']}/complete", {"outcome": "no_answer"})
    assert done.status_code == 200 and done.json()["status"] == "completed", done.text
    again = _post(base_url, f"/api/v2/phone-calls/{call['id']}/complete", {"outcome": "reached"})
    assert again.status_code == 409

    # The therapist answers by email to the Reply-To address.
    reply = EmailMessage()
    reply["From"], reply["To"] = with_email["email"], message["Reply-To"]
    reply["Subject"], reply["In-Reply-To"] = f"Re: {message['Subject']}", message["Message-ID"]
    reply.set_content("Guten Tag, ich kann zwei Personen aufnehmen. Mit freundlichen Grüßen")
    with smtplib.SMTP("127.0.0.1", smtp.port(), timeout=30) as client:
        client.send_message(reply)
    intake = stack.invoke("ReplyIntakeFunction", {}, info=deployed)
    assert intake.error is None, intake.payload
    history = STAFF.get(
        f"{base_url}/api/v2/communications", params={"bundle_reference": by_email["reference"]}, timeout=30
    )
    assert history.status_code == 200, history.text
    assert "zwei Personen" in history.text and by_email["reference"] in history.text
    reminders = stack.invoke("BundleReminderFunction", {}, info=deployed)
    assert reminders.error is None and reminders.payload["failed"] == []  # nothing due yet
