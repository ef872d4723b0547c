"""The email life cycle: status machine, claims and leases, backoff, reply addresses."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from communication_fakes import ADDRESSING
from therapy_platform.communication.domain.emails import (
    ALLOWED_TRANSITIONS,
    ClaimRefusal,
    Email,
    EmailKind,
    EmailStatus,
    EmailStatusConflictError,
    OutgoingEmail,
    RecipientType,
    bundle_reference,
    bundle_reference_in_address,
    bundle_reference_in_message_ids,
    check_transition,
    message_id_for,
    reply_address,
    retry_delay_seconds,
)
from therapy_platform.contracts.communication import EmailStatusChanged

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def _outgoing(**changes: object) -> OutgoingEmail:
    values: dict[str, object] = {
        "kind": EmailKind.BUNDLE_INQUIRY,
        "recipient": "praxis@example.org",
        "recipient_type": RecipientType.THERAPIST,
        "subject": "Anfrage (Ref: B7)",
        "html": "<p>Hallo</p>",
        "text": "Hallo",
        "bundle_reference": "B7",
    }
    return OutgoingEmail.model_validate({**values, **changes})


def _queued() -> Email:
    return Email.draft(_outgoing(), ADDRESSING, now=NOW).queued(NOW)


@given(st.sampled_from(list(EmailStatus)), st.sampled_from(list(EmailStatus)))
def test_only_listed_transitions_are_allowed(current: EmailStatus, target: EmailStatus) -> None:
    if target in ALLOWED_TRANSITIONS[current]:
        check_transition(current, target)
    else:
        with pytest.raises(EmailStatusConflictError) as raised:
            check_transition(current, target)
        assert current.value in raised.value.message and target.value in raised.value.message


def test_the_happy_path_draft_queued_sending_sent() -> None:
    draft = Email.draft(_outgoing(), ADDRESSING, now=NOW)
    assert draft.status is EmailStatus.DRAFT
    assert draft.message_id == f"<B7.{draft.id}@antwort.vermittlung.test>"
    assert draft.reply_to == "antwort+B7@antwort.vermittlung.test"
    queued = draft.queued(NOW)
    token = uuid.uuid4()
    sending = queued.claimed(NOW, token, lease_seconds=60)
    assert (sending.status, sending.attempts, sending.claim_token) == (EmailStatus.SENDING, 1, token)
    assert sending.lease_until == NOW + timedelta(seconds=60)
    sent = sending.delivered(NOW + timedelta(seconds=1), "ses-1")
    assert (sent.status, sent.sent_at, sent.claim_token, sent.lease_until) == (
        EmailStatus.SENT,
        NOW + timedelta(seconds=1),
        None,
        None,
    )
    with pytest.raises(EmailStatusConflictError):
        sent.claimed(NOW + timedelta(hours=1), uuid.uuid4(), 60)


def test_a_live_lease_refuses_a_second_claim_until_it_runs_out() -> None:
    sending = _queued().claimed(NOW, uuid.uuid4(), lease_seconds=60)
    assert sending.claim_refusal(NOW + timedelta(seconds=59)) is ClaimRefusal.IN_PROGRESS
    assert sending.wait_seconds(NOW + timedelta(seconds=30)) == 31
    reclaimed = sending.claimed(NOW + timedelta(seconds=60), uuid.uuid4(), lease_seconds=60)
    assert (reclaimed.attempts, reclaimed.interrupted_attempts) == (2, 1)


def test_done_and_draft_emails_are_never_claimed() -> None:
    draft = Email.draft(_outgoing(), ADDRESSING, now=NOW)
    assert draft.claim_refusal(NOW) is ClaimRefusal.NOT_QUEUED
    failed = _queued().claimed(NOW, uuid.uuid4(), 60).given_up(NOW, "550 no such user")
    assert failed.claim_refusal(NOW) is ClaimRefusal.DONE
    assert failed.last_error == "550 no such user"


def test_a_retry_waits_for_its_time() -> None:
    retry = _queued().claimed(NOW, uuid.uuid4(), 60).retry_later(NOW, "connection refused", 30)
    assert retry.status is EmailStatus.QUEUED
    assert retry.claim_refusal(NOW + timedelta(seconds=29)) is ClaimRefusal.NOT_DUE
    assert retry.wait_seconds(NOW + timedelta(seconds=10)) == 21
    assert retry.claim_refusal(NOW + timedelta(seconds=30)) is None


def test_staff_can_queue_a_failed_email_again_with_fresh_attempts() -> None:
    failed = _queued().claimed(NOW, uuid.uuid4(), 60).given_up(NOW, "550")
    again = failed.queued(NOW + timedelta(hours=1))
    assert (again.status, again.attempts, again.failed_at) == (EmailStatus.QUEUED, 0, None)


def test_a_late_success_after_another_sender_requeued_still_counts_as_sent() -> None:
    requeued = _queued().claimed(NOW, uuid.uuid4(), 1).retry_later(NOW, "x", 10)
    assert requeued.delivered(NOW, None).status is EmailStatus.SENT


@given(st.integers(min_value=1, max_value=100))
def test_backoff_doubles_and_is_capped(attempt: int) -> None:
    delay = retry_delay_seconds(attempt, base=30, cap=3600)
    assert delay == min(3600, 30 * 2 ** (attempt - 1))
    assert retry_delay_seconds(attempt + 1, base=30, cap=3600) >= delay


@given(st.integers(min_value=1, max_value=10**12 - 1))
def test_reply_address_and_message_id_carry_the_bundle_reference(number: int) -> None:
    reference = bundle_reference(number)
    assert bundle_reference_in_address(reply_address("antwort.example.org", reference)) == reference
    email_id = uuid.uuid4()
    quoted = f"<other@mail.example.com> {message_id_for(email_id, 'antwort.example.org', reference)}"
    assert bundle_reference_in_message_ids(quoted) == reference


def test_addresses_without_a_reference() -> None:
    assert reply_address("antwort.example.org", None) == "antwort@antwort.example.org"
    assert bundle_reference_in_address("antwort@antwort.example.org") is None
    assert bundle_reference_in_address("ANTWORT+b12@x.org") == "B12"
    assert bundle_reference_in_message_ids("<abc@example.org>") is None
    with pytest.raises(ValueError):
        bundle_reference(0)


def test_header_fields_refuse_line_breaks() -> None:
    with pytest.raises(ValueError):
        _outgoing(subject="Hallo\r\nBcc: everyone@example.org")
    with pytest.raises(ValueError):
        _outgoing(recipient_name="Dr. X\nBcc: y@example.org")
    with pytest.raises(ValueError):
        _outgoing(recipient="a@b.de, c@d.de")


def test_events_say_nothing_personal() -> None:
    sent = _queued().claimed(NOW, uuid.uuid4(), 60).delivered(NOW, None)
    payload = sent.event_payload()
    EmailStatusChanged.model_validate(payload)
    flat = str(payload)
    assert "praxis@example.org" not in flat and "Anfrage" not in flat and "Hallo" not in flat
    assert payload["bundle_reference"] == "B7" and payload["status"] == "sent"
