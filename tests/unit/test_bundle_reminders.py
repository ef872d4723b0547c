"""The daily reminder job (use_cases/reminders.py) with in-memory fakes: who is due, exactly once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from communication_state_fakes import (
    StateWorld,
    bundle_sent_payload,
    closed_bundle_payload,
    deliver,
    envelope,
    state_world,
)
from support import FakeLambdaContext, load_function
from therapy_platform.communication.domain.emails import EmailKind
from therapy_platform.communication.domain.phone_calls import PhoneCallPurpose
from therapy_platform.communication.domain.tracking import BundleAddressee, FollowUpPolicy, TrackedBundle
from therapy_platform.communication.use_cases.reminders import send_due_reminders
from therapy_platform.contracts.bundles import BundleSent
from therapy_platform.platform.feature_flags import FixedFlags, Flag

BERLIN = ZoneInfo("Europe/Berlin")
SENT = datetime(2026, 11, 23, 6, 5, tzinfo=UTC)


def sent(w: StateWorld, number: int, **changes: Any) -> dict[str, Any]:
    payload = bundle_sent_payload(number=number, sent_at=w.clock(), **changes)
    deliver(w.context, envelope("bundle.sent", payload, at=w.clock()))
    return payload


def reminder_emails(w: StateWorld) -> list[Any]:
    return [e for e in w.database.emails.values() if e.kind is EmailKind.BUNDLE_REMINDER]


def test_after_seven_days_one_reminder_and_never_a_second() -> None:
    w = state_world(now=SENT)
    payload = sent(w, 1042)
    w.clock.now = SENT + timedelta(days=6, hours=23)
    assert send_due_reminders(w.context).value.due == 0
    w.clock.now = SENT + timedelta(days=7)
    report = send_due_reminders(w.context).value
    assert (report.due, report.by_email, report.by_phone) == (1, 1, 0)
    [reminder] = reminder_emails(w)
    assert reminder.recipient == "praxis@example.org"
    assert reminder.subject == "Erinnerung: Anfrage Therapieplatz vom 23.11.2026 (Ref: B1042)"
    assert "07.12.2026" in reminder.text  # expires 14 days after sending
    assert w.database.state.bundles[uuid.UUID(payload["id"])].reminder_sent_at == w.clock.now
    w.clock.now += timedelta(days=1)
    assert send_due_reminders(w.context).value.due == 0
    assert len(reminder_emails(w)) == 1


def test_a_phone_bundle_gets_a_reminder_call() -> None:
    w = state_world(now=SENT)
    sent(w, 7, email=None, phone_windows={"wed": ["10:00-11:00"]})
    w.clock.now = SENT + timedelta(days=7, hours=1)
    report = send_due_reminders(w.context).value
    assert report.by_phone == 1 and reminder_emails(w) == []
    purposes = sorted(c.purpose for c in w.database.state.calls.values())
    assert purposes == [PhoneCallPurpose.INQUIRY, PhoneCallPurpose.REMINDER]
    reminder = next(c for c in w.database.state.calls.values() if c.purpose is PhoneCallPurpose.REMINDER)
    assert reminder.slot_start == datetime(2026, 12, 2, 10, 0, tzinfo=BERLIN)


def test_answered_expired_and_fully_withdrawn_bundles_get_no_reminder() -> None:
    w = state_world(now=SENT)
    answered, expired, due = sent(w, 1), sent(w, 2), sent(w, 3)
    emptied = sent(w, 4, members=1)
    bundle = closed_bundle_payload(answered, status="answered", answered_at=SENT.isoformat())
    deliver(
        w.context,
        envelope(
            "bundle.response_received", {"bundle": bundle, "next_contact_allowed_on": "2026-12-21"}, at=SENT
        ),
    )
    deliver(w.context, envelope("bundle.expired", closed_bundle_payload(expired, status="expired"), at=SENT))
    member = emptied["members"][0]
    withdrawal = {
        "bundle_id": emptied["id"],
        "bundle_reference": "B4",
        "bundle_status": "sent",
        "therapist_id": emptied["therapist_id"],
        "search_id": member["search_id"],
        "member_reference": "B4-1",
    }
    change = {
        "id": member["search_id"],
        "patient_id": member["patient_id"],
        "previous_status": "active",
        "status": "cancelled",
        "changed_at": SENT.isoformat(),
        "withdrawals": [withdrawal],
    }
    deliver(w.context, envelope("search.status_changed", change, at=SENT))
    w.clock.now = SENT + timedelta(days=8)
    report = send_due_reminders(w.context).value
    assert report.by_email == 1
    [reminder] = reminder_emails(w)
    assert reminder.bundle_reference == due["reference"]


def test_one_bad_bundle_does_not_stop_the_others() -> None:
    w = state_world(now=SENT)
    broken, fine = sent(w, 1), sent(w, 2)
    record = w.database.state.bundles[uuid.UUID(broken["id"])]
    w.database.state.bundles[record.id] = record.model_copy(update={"therapist": None})
    w.clock.now = SENT + timedelta(days=7)
    report = send_due_reminders(w.context).value
    assert report.by_email == 1 and len(report.failed) == 1 and broken["id"] in report.failed[0]
    assert [e.bundle_reference for e in reminder_emails(w)] == [fine["reference"]]


def test_the_function_returns_its_report(monkeypatch: pytest.MonkeyPatch) -> None:
    w = state_world(now=SENT)
    sent(w, 5)
    w.clock.now = SENT + timedelta(days=9)
    app = load_function("bundle_reminders")
    monkeypatch.setattr(app, "service", w.context)
    monkeypatch.setattr(app, "flags", FixedFlags())
    report = app.lambda_handler({"source": "aws.events"}, FakeLambdaContext())
    assert report["by_email"] == 1 and report["failed"] == []


def test_with_reminder_emails_off_the_function_holds_email_reminders_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = state_world(now=SENT)
    sent(w, 5)
    w.clock.now = SENT + timedelta(days=9)
    app = load_function("bundle_reminders")
    monkeypatch.setattr(app, "service", w.context)
    monkeypatch.setattr(app, "flags", FixedFlags(off={(Flag.REMINDER_EMAILS, None)}))
    held = app.lambda_handler({"source": "aws.events"}, FakeLambdaContext())
    assert (held["held"], held["by_email"]) == (1, 0)
    assert reminder_emails(w) == []
    # Held, not dropped: once the flag is on again the reminder goes out.
    monkeypatch.setattr(app, "flags", FixedFlags())
    report = app.lambda_handler({"source": "aws.events"}, FakeLambdaContext())
    assert (report["held"], report["by_email"]) == (0, 1)
    assert len(reminder_emails(w)) == 1


def tracked(sent_at: datetime | None, **changes: Any) -> TrackedBundle:
    payload = bundle_sent_payload(number=1, sent_at=sent_at or SENT)
    bundle = TrackedBundle.placeholder(uuid.uuid4(), "B1", uuid.uuid4(), now=SENT)
    if sent_at is not None:
        sent_bundle = BundleSent.model_validate(payload)
        addressee = BundleAddressee(
            id=sent_bundle.therapist.id, gender="female", first_name="Anna", last_name="Müller"
        )
        bundle = bundle.with_sent(sent_bundle, addressee)
    return bundle.model_copy(update=changes)


@settings(max_examples=200, deadline=None)
@given(
    age_hours=st.integers(0, 24 * 30),
    sent=st.booleans(),
    answered=st.booleans(),
    expired=st.booleans(),
    reminded=st.booleans(),
    withdrawn=st.integers(0, 3),
    days=st.integers(1, 20),
)
def test_reminder_selection_rule(
    age_hours: int, sent: bool, answered: bool, expired: bool, reminded: bool, withdrawn: int, days: int
) -> None:
    now = SENT + timedelta(hours=age_hours)
    bundle = tracked(
        SENT if sent else None,
        answered_at=now if answered else None,
        expired_at=now if expired else None,
        reminder_sent_at=now if reminded and sent else None,
    )
    bundle, _ = bundle.with_withdrawn([m.reference for m in bundle.members[:withdrawn]], now)
    policy = FollowUpPolicy(reminder_after_days=days)
    expected = (
        sent
        and age_hours >= days * 24
        and not answered
        and not expired
        and not reminded
        and withdrawn < len(bundle.members)
    )
    assert bundle.reminder_due(now, policy) is expected
