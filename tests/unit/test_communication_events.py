"""The communication service's reactions to events (use_cases/events.py, on the platform's
consumer runtime as bootstrap.py wires it) with in-memory fakes: what is sent to whom, exactly
once, in any order."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from communication_fakes import QUEUE_ARN, sqs_record
from communication_state_fakes import (
    Reaction,
    StateWorld,
    bundle_sent_payload,
    bus_body,
    closed_bundle_payload,
    deliver,
    envelope,
    erase_patient,
    patient_payload,
    state_world,
    therapist_payload,
)
from support import FakeLambdaContext, load_function
from therapy_platform.communication.domain.emails import Email, EmailKind, RecipientType
from therapy_platform.communication.domain.phone_calls import (
    PhoneCallPurpose,
    PhoneCallStatus,
    PhoneCallTask,
    SlotRule,
)
from therapy_platform.platform.events import EventEnvelope

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 23, 6, 5, tzinfo=UTC)  # Monday 07:05 in Berlin, just after the round


@pytest.fixture
def w() -> StateWorld:
    return state_world(now=NOW)


def handle(w: StateWorld, event: EventEnvelope) -> Reaction:
    return deliver(w.context, event)


def emails(w: StateWorld, kind: EmailKind | None = None) -> list[Email]:
    found = sorted(w.database.emails.values(), key=lambda e: e.created_at)
    return [e for e in found if kind is None or e.kind is kind]


def calls(w: StateWorld) -> list[PhoneCallTask]:
    return sorted(w.database.state.calls.values(), key=lambda c: c.slot_start)


def sent(w: StateWorld, number: int = 1042, **changes: Any) -> dict[str, Any]:
    payload = bundle_sent_payload(number=number, sent_at=w.clock(), **changes)
    handle(w, envelope("bundle.sent", payload, at=w.clock()))
    return payload


# --------------------------------------------------------------------------- bundle.sent


def test_an_email_bundle_becomes_one_data_minimised_inquiry(w: StateWorld) -> None:
    payload = sent(w)
    [inquiry] = emails(w)
    assert inquiry.kind is EmailKind.BUNDLE_INQUIRY
    assert inquiry.recipient == "praxis@example.org" and inquiry.recipient_type is RecipientType.THERAPIST
    assert "Ref: B1042" in inquiry.subject
    assert inquiry.bundle_reference == "B1042" and str(inquiry.bundle_id) == payload["id"]
    assert inquiry.reply_to == "antwort+B1042@antwort.vermittlung.test"
    assert "Sehr geehrte Frau Dr. Müller" in inquiry.text
    for position in (1, 2, 3):
        assert f"B1042-{position}" in inquiry.text
    assert w.queue.messages == [inquiry.id]
    assert w.database.event_types() == ["email.queued"]
    tracked = w.database.state.bundles[uuid.UUID(payload["id"])]
    assert tracked.sent_at == NOW and tracked.channel == "email" and len(tracked.members) == 3


def test_a_redelivered_event_changes_nothing(w: StateWorld) -> None:
    payload = bundle_sent_payload(number=7, sent_at=NOW)
    event = envelope("bundle.sent", payload, at=NOW)
    first, second = handle(w, event), handle(w, event)
    assert len(first.emails) == 1 and second.duplicate
    assert len(emails(w)) == 1 and w.queue.messages == list(first.emails)


def test_the_same_bundle_sent_twice_under_different_event_ids_is_still_one_email(w: StateWorld) -> None:
    payload = bundle_sent_payload(number=8, sent_at=NOW)
    handle(w, envelope("bundle.sent", payload, at=NOW))
    handle(w, envelope("bundle.sent", payload, at=NOW))
    assert len(emails(w)) == 1


def test_a_phone_bundle_becomes_a_call_at_the_start_of_the_next_phone_window(w: StateWorld) -> None:
    payload = sent(w, email=None, phone_windows={"tue": ["08:00-09:00"], "thu": ["14:00-15:00"]})
    assert emails(w) == []
    [call] = calls(w)
    assert call.purpose is PhoneCallPurpose.INQUIRY and call.status is PhoneCallStatus.SCHEDULED
    assert call.slot_start == datetime(2026, 11, 24, 8, 0, tzinfo=BERLIN)
    assert call.scheduling_rule is SlotRule.PHONE_WINDOW
    assert call.phone == "030 1234567" and call.therapist_name == "Dr. Anna Müller"
    assert call.bundle_reference == "B1042" and str(call.bundle_id) == payload["id"]
    [(key, scheduled)] = w.database.events
    assert scheduled.event_type == "phone_call.scheduled" and key == str(call.id)
    assert scheduled.payload["slot_start"] == "2026-11-24T07:00:00Z"
    assert scheduled.payload["has_phone_number"] is True
    assert "030 1234567" not in json.dumps(scheduled.payload)  # no contact data (ids may hold "030")


def test_two_phone_bundles_for_the_same_window_get_consecutive_slots(w: StateWorld) -> None:
    windows = {"tue": ["08:00-09:00"]}
    sent(w, number=1, email=None, phone_windows=windows)
    sent(w, number=2, email=None, phone_windows=windows)
    starts = [call.slot_start.astimezone(BERLIN).strftime("%a %H:%M") for call in calls(w)]
    assert starts == ["Tue 08:00", "Tue 08:05"]


def test_without_a_phone_window_the_call_is_on_the_next_working_day_at_noon(w: StateWorld) -> None:
    sent(w, email=None, phone=None)
    [call] = calls(w)
    assert call.slot_start == datetime(2026, 11, 24, 12, 0, tzinfo=BERLIN)
    assert call.scheduling_rule is SlotRule.FALLBACK
    assert call.phone is None  # staff look the number up; the task still exists


# --------------------------------------------------------------------------- closing


def test_an_answer_closes_the_bundle_and_cancels_its_calls(w: StateWorld) -> None:
    payload = sent(w, email=None)
    bundle = closed_bundle_payload(payload, status="answered", answered_at=NOW.isoformat())
    response = {"bundle": bundle, "next_contact_allowed_on": "2026-12-21"}
    handle(w, envelope("bundle.response_received", response, at=NOW))
    tracked = w.database.state.bundles[uuid.UUID(payload["id"])]
    assert tracked.answered_at == NOW
    assert [call.status for call in calls(w)] == [PhoneCallStatus.CANCELLED]


def test_a_conflict_becomes_a_staff_alert_naming_both_bundles(w: StateWorld) -> None:
    winner = sent(w, number=10)
    loser = sent(w, number=11, email="zweite@example.org")
    search_id = winner["members"][0]["search_id"]
    loser["members"][0]["search_id"] = search_id  # the same patient sat in both bundles
    w.database.state.bundles[uuid.UUID(loser["id"])] = w.database.state.bundles[
        uuid.UUID(loser["id"])
    ].model_copy(
        update={
            "members": [
                m.model_copy(update={"search_id": uuid.UUID(search_id)}) if m.reference == "B11-1" else m
                for m in w.database.state.bundles[uuid.UUID(loser["id"])].members
            ]
        }
    )
    bundle = closed_bundle_payload(loser, status="answered", answered_at=NOW.isoformat())
    bundle["members"][0].update(status="conflict", responded_at=NOW.isoformat())
    alert_id = uuid.uuid4()
    conflict = {
        "search_id": search_id,
        "patient_id": winner["members"][0]["patient_id"],
        "therapist_id": loser["therapist_id"],
        "placed_with_therapist_id": winner["therapist_id"],
        "alert_id": str(alert_id),
    }
    response = {"bundle": bundle, "conflicts": [conflict], "next_contact_allowed_on": "2026-12-21"}
    event = envelope("bundle.response_received", response, at=NOW)
    handle(w, event)
    handle(w, envelope("bundle.response_received", response, at=NOW))  # another delivery path
    [alert] = emails(w, EmailKind.STAFF_CONFLICT_ALERT)
    assert alert.recipient == "alarm@vermittlung.test" and alert.recipient_type is RecipientType.STAFF
    assert "B11-1" in alert.subject and "Ref: B11" in alert.subject
    assert "B10" in alert.text  # placed through the other bundle


def test_an_expired_bundle_gets_no_reminder_later(w: StateWorld) -> None:
    payload = sent(w)
    handle(w, envelope("bundle.expired", closed_bundle_payload(payload, status="expired"), at=NOW))
    tracked = w.database.state.bundles[uuid.UUID(payload["id"])]
    assert tracked.expired_at == NOW
    assert not tracked.reminder_due(NOW + timedelta(days=8), w.context.follow_up)


def test_an_answer_that_overtakes_bundle_sent_means_no_inquiry(w: StateWorld) -> None:
    payload = bundle_sent_payload(number=12, sent_at=NOW)
    bundle = closed_bundle_payload(payload, status="answered", answered_at=NOW.isoformat())
    handle(
        w,
        envelope(
            "bundle.response_received", {"bundle": bundle, "next_contact_allowed_on": "2026-12-21"}, at=NOW
        ),
    )
    outcome = handle(w, envelope("bundle.sent", payload, at=NOW))
    assert emails(w) == [] and outcome.notes


# --------------------------------------------------------------------------- withdrawals and patients


def status_changed(
    search_id: str, patient_id: uuid.UUID, status: str, *, withdrawals: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    return {
        "id": search_id,
        "patient_id": str(patient_id),
        "previous_status": "active",
        "status": status,
        "changed_at": NOW.isoformat(),
        "withdrawals": withdrawals,
        **extra,
    }


def withdrawal(payload: dict[str, Any], position: int, bundle_status: str = "sent") -> dict[str, Any]:
    member = payload["members"][position - 1]
    return {
        "bundle_id": payload["id"],
        "bundle_reference": payload["reference"],
        "bundle_status": bundle_status,
        "therapist_id": payload["therapist_id"],
        "search_id": member["search_id"],
        "member_reference": member["reference"],
    }


def test_a_placement_elsewhere_sends_a_withdrawal_notice_and_the_patient_the_good_news(w: StateWorld) -> None:
    payload = sent(w, number=20)
    patient_id, placed_with = uuid.uuid4(), uuid.uuid4()
    handle(w, envelope("patient.created", patient_payload(patient_id), at=NOW))
    handle(w, envelope("therapist.created", therapist_payload(placed_with), at=NOW))
    change = status_changed(
        payload["members"][1]["search_id"],
        patient_id,
        "placed",
        withdrawals=[withdrawal(payload, 2)],
        placed_therapist_id=str(placed_with),
    )
    event = envelope("search.status_changed", change, at=NOW)
    handle(w, event)
    handle(w, event)
    [notice] = emails(w, EmailKind.WITHDRAWAL_NOTICE)
    assert notice.recipient == "praxis@example.org" and "Ref: B20" in notice.subject
    assert "B20-2" in notice.text and "übrigen Personen" in notice.text
    [good_news] = emails(w, EmailKind.PATIENT_PLACE_FOUND)
    assert good_news.recipient == "patientin@example.org" and good_news.recipient_id == patient_id
    assert "Sehr geehrte Frau Schröder" in good_news.text
    assert "Hauptstraße 5" in good_news.text and "030 7654321" in good_news.text
    # The reminder later lists only the members still open.
    tracked = w.database.state.bundles[uuid.UUID(payload["id"])]
    assert [m.reference for m in tracked.remaining_members] == ["B20-1", "B20-3"]


def test_a_withdrawal_from_a_phone_bundle_is_a_call(w: StateWorld) -> None:
    payload = sent(w, number=21, email=None)
    change = status_changed(
        payload["members"][0]["search_id"], uuid.uuid4(), "cancelled", withdrawals=[withdrawal(payload, 1)]
    )
    handle(w, envelope("search.status_changed", change, at=NOW))
    assert [call.purpose for call in calls(w)] == [PhoneCallPurpose.INQUIRY, PhoneCallPurpose.WITHDRAWAL]
    assert emails(w) == []


def test_withdrawals_from_drafts_or_bundles_never_sent_here_are_silent(w: StateWorld) -> None:
    payload = bundle_sent_payload(number=22, sent_at=NOW)
    change = status_changed(
        payload["members"][0]["search_id"],
        uuid.uuid4(),
        "cancelled",
        withdrawals=[withdrawal(payload, 1), withdrawal(payload, 2, bundle_status="draft")],
    )
    handle(w, envelope("search.status_changed", change, at=NOW))
    assert emails(w) == [] and calls(w) == []
    # When bundle.sent arrives late, the withdrawn member is not presented.
    handle(w, envelope("bundle.sent", payload, at=NOW))
    [inquiry] = emails(w)
    assert "B22-1" not in inquiry.text and "B22-2" in inquiry.text


def test_a_search_start_is_written_to_a_patient_with_an_address_only(w: StateWorld) -> None:
    with_mail, without = uuid.uuid4(), uuid.uuid4()
    handle(w, envelope("patient.created", patient_payload(with_mail), at=NOW))
    handle(w, envelope("patient.created", patient_payload(without, email=None), at=NOW))
    for patient_id in (with_mail, without):
        search = {
            "id": str(uuid.uuid4()),
            "patient_id": str(patient_id),
            "status": "active",
            "created_at": NOW.isoformat(),
            "updated_at": NOW.isoformat(),
            "total_requested_contacts": 10,
        }
        handle(w, envelope("search.created", search, at=NOW))
    [started] = emails(w)
    assert started.kind is EmailKind.PATIENT_SEARCH_STARTED and started.recipient_id == with_mail
    assert "20 km" in started.text and "Suchnummer S-" in started.subject


def test_an_unknown_patient_means_try_again_later_with_nothing_recorded(w: StateWorld) -> None:
    patient_id = uuid.uuid4()
    search = {
        "id": str(uuid.uuid4()),
        "patient_id": str(patient_id),
        "status": "active",
        "created_at": NOW.isoformat(),
        "updated_at": NOW.isoformat(),
        "total_requested_contacts": 10,
    }
    event = envelope("search.created", search, at=NOW)
    later = handle(w, event)
    assert later.outcome == "retry" and later.reason is not None and str(patient_id) in later.reason
    assert w.database.state.processed == set() and emails(w) == []
    handle(w, envelope("patient.created", patient_payload(patient_id), at=NOW))
    assert len(handle(w, event).emails) == 1


def test_an_unknown_location_alerts_staff_once_per_patient(w: StateWorld) -> None:
    patient_id = uuid.uuid4()
    handle(w, envelope("patient.created", patient_payload(patient_id, flagged=True), at=NOW))
    later = NOW + timedelta(minutes=5)
    handle(
        w, envelope("patient.updated", patient_payload(patient_id, flagged=True, city="Berlinn"), at=later)
    )
    [alert] = emails(w, EmailKind.STAFF_UNKNOWN_LOCATION_ALERT)
    assert alert.recipient_type is RecipientType.STAFF and "Patient*in" in alert.subject


def test_a_stale_patient_event_raises_no_alert_the_patient_no_longer_deserves(w: StateWorld) -> None:
    patient_id = uuid.uuid4()
    stale = {**patient_payload(patient_id), "location_flagged": True}  # the record is fixed since
    handle(w, envelope("patient.created", stale, at=NOW - timedelta(hours=1)))
    assert emails(w) == []
    assert ("patient", patient_id) in w.database.directory.lookups


def test_patient_events_leave_no_contact_copy_behind(w: StateWorld) -> None:
    patient_id = uuid.uuid4()
    event = envelope("patient.created", patient_payload(patient_id), at=NOW)
    assert "last_name" not in event.payload and "email" not in event.payload
    handle(w, event)
    stored = repr(w.database.state) + repr(w.database.emails)
    assert "Schröder" not in stored and "patientin@example.org" not in stored


def test_an_erased_patient_stays_erased_and_their_emails_are_redacted(w: StateWorld) -> None:
    patient_id = uuid.uuid4()
    handle(w, envelope("patient.created", patient_payload(patient_id), at=NOW))
    w.database.emails.clear()
    search = {
        "id": str(uuid.uuid4()),
        "patient_id": str(patient_id),
        "status": "active",
        "created_at": NOW.isoformat(),
        "updated_at": NOW.isoformat(),
        "total_requested_contacts": 10,
    }
    handle(w, envelope("search.created", search, at=NOW))
    [email] = emails(w)
    w.database.emails[email.id] = email.model_copy(update={"status": "sent", "sent_at": NOW})
    erase_patient(patient_id)  # the patient service erased the record, then told everyone
    handle(w, envelope("patient.deleted", {"id": str(patient_id), "erased_at": NOW.isoformat()}, at=NOW))
    [redacted] = emails(w)
    assert redacted.recipient == "geloescht@invalid" and "Schröder" not in redacted.text + redacted.subject


def test_a_payload_that_breaks_its_contract_is_poison_named_by_field_never_by_value(w: StateWorld) -> None:
    payload = {**patient_payload(uuid.uuid4()), "postcode": "Schröder-Str. 1, 10115 Berlin" * 3}
    del payload["status"]
    refused = handle(w, envelope("patient.created", payload, at=NOW))
    assert refused.outcome == "failed" and refused.reason is not None  # no DLQ here: SQS redrives it
    assert "PatientSnapshot" in refused.reason and "status" in refused.reason
    assert "postcode" in refused.reason and "Schröder" not in refused.reason
    assert w.database.state.processed == set()


def test_events_of_other_types_are_ignored(w: StateWorld) -> None:
    outcome = handle(w, envelope("bundle.created", {"id": str(uuid.uuid4())}, at=NOW))
    assert outcome.ignored and w.database.state.processed == set()


# --------------------------------------------------------------------------- the function


class QueueControl:
    """What the runtime asks of SQS: the backoff of a message to retry, dead letters."""

    def __init__(self) -> None:
        self.delays: list[tuple[str, str, int]] = []
        self.dead_letters: list[tuple[str, str, str]] = []

    def delay_retry(self, queue_arn: str, receipt_handle: str, delay_seconds: int) -> None:
        self.delays.append((queue_arn, receipt_handle, delay_seconds))

    def send_to_dead_letter(self, dead_letter_queue_url: str, body: str, reason: str) -> None:
        self.dead_letters.append((dead_letter_queue_url, body, reason))


def bus_record(event: EventEnvelope) -> dict[str, object]:
    return sqs_record(bus_body(event))


def test_the_function_reports_only_the_failed_messages(
    w: StateWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = load_function("communication_events")
    queues = QueueControl()
    monkeypatch.setattr(app, "service", w.context)
    monkeypatch.setattr(app.consumer, "queues", lambda: queues)
    good = bus_record(envelope("bundle.sent", bundle_sent_payload(number=30, sent_at=NOW), at=NOW))
    unknown_patient = bus_record(
        envelope(
            "search.created",
            {
                "id": str(uuid.uuid4()),
                "patient_id": str(uuid.uuid4()),
                "status": "active",
                "created_at": NOW.isoformat(),
                "updated_at": NOW.isoformat(),
                "total_requested_contacts": 10,
            },
            at=NOW,
        )
    )
    garbage = sqs_record("not json")
    response = app.lambda_handler({"Records": [good, unknown_patient, garbage]}, FakeLambdaContext())
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    assert failed == {unknown_patient["messageId"], garbage["messageId"]}
    assert len(emails(w)) == 1
    assert good["eventSourceARN"] == QUEUE_ARN
    # The unknown patient's event waits for the backoff; the garbage is never retried.
    assert queues.delays == [(QUEUE_ARN, f"receipt-{unknown_patient['messageId']}", 2)]


def test_with_a_dead_letter_queue_an_unreadable_message_goes_there_at_once(
    w: StateWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = load_function("communication_events")
    queues = QueueControl()
    monkeypatch.setattr(app, "service", w.context)
    monkeypatch.setattr(app.consumer, "queues", lambda: queues)
    monkeypatch.setattr(app.consumer, "dead_letter_queue_url", "https://sqs/communication-events-dlq")
    garbage = sqs_record(json.dumps({"detail": {"key": "k"}}))
    assert app.lambda_handler({"Records": [garbage]}, FakeLambdaContext()) == {"batchItemFailures": []}
    [(url, body, reason)] = queues.dead_letters
    assert url.endswith("-dlq") and body == garbage["body"] and "envelope" in reason
