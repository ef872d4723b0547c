"""Queueing and sending emails with in-memory fakes: one copy per email, retries with backoff,
final failure with a staff alert, events through the outbox, the sweeper."""

from __future__ import annotations

import uuid
from datetime import date
from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from communication_fakes import (
    ADDRESSING,
    LEGAL,
    Attempt,
    World,
    permanent,
    transient,
    world,
)
from therapy_platform.communication.domain.email_content import (
    BundleInquiry,
    BundlePatient,
    DistanceBand,
    Person,
)
from therapy_platform.communication.domain.emails import (
    DeliveryPolicy,
    EmailKind,
    EmailStatus,
    OutgoingEmail,
    RecipientType,
)
from therapy_platform.communication.ports import EmailUnitOfWork
from therapy_platform.communication.rendering.renderer import EmailRenderer
from therapy_platform.communication.use_cases.emails import (
    SendResult,
    compose,
    queue_email,
    requeue_stale_emails,
    send_email,
    send_emails,
)
from therapy_platform.contracts.symptoms import Symptom
from therapy_platform.contracts.therapy import Gender


def _inquiry_email(bundle_number: int = 42, **changes: object) -> OutgoingEmail:
    return _rendered_inquiry(bundle_number).model_copy(update=changes)


@cache
def _rendered_inquiry(bundle_number: int) -> OutgoingEmail:
    content = BundleInquiry(
        bundle_reference=f"B{bundle_number}",
        therapist=Person(gender=Gender.FEMALE, title="Dr.", first_name="Anna", last_name="Schäfer"),
        patients=[
            BundlePatient(
                reference=f"B{bundle_number}-1",
                age=30,
                symptoms=[Symptom.DEPRESSION],
                distance_band=DistanceBand.UP_TO_5,
            )
        ],
        sent_on=date(2026, 11, 23),
    )
    return compose(
        EmailRenderer(LEGAL),
        content,
        recipient="praxis@schaefer.example.org",
        recipient_name="Dr. Anna Schäfer",
        recipient_type=RecipientType.THERAPIST,
        recipient_id=uuid.uuid4(),
    )


def _queue(w: World, outgoing: OutgoingEmail | None = None) -> uuid.UUID:
    result = queue_email(
        w.context.unit_of_work, w.queue, outgoing or _inquiry_email(), ADDRESSING, now=w.clock()
    ).value
    return result.email.id


def test_compose_takes_the_bundle_reference_from_the_content() -> None:
    outgoing = _inquiry_email(1042)
    assert outgoing.bundle_reference == "B1042"
    assert "(Ref: B1042)" in outgoing.subject
    assert outgoing.kind is EmailKind.BUNDLE_INQUIRY
    assert "Sehr geehrte Frau Dr. Schäfer," in outgoing.text


def test_queueing_stores_the_email_records_the_event_and_enqueues_it() -> None:
    w = world()
    email_id = _queue(w)
    email = w.database.emails[email_id]
    assert email.status is EmailStatus.QUEUED
    assert email.reply_to == "antwort+B42@antwort.vermittlung.test"
    assert w.database.event_types() == ["email.queued"]
    assert w.queue.messages == [email_id]
    assert email_id in w.database.enqueued_at


def test_queueing_twice_with_one_idempotency_key_stores_one_email() -> None:
    w = world()
    outgoing = _inquiry_email(idempotency_key="bundle.sent:event-1")
    queued = queue_email(w.context.unit_of_work, w.queue, outgoing, ADDRESSING, now=w.clock())
    again = queue_email(w.context.unit_of_work, w.queue, outgoing, ADDRESSING, now=w.clock())
    first, second = queued.value, again.value
    assert (first.created, second.created) == (True, False)
    assert ([e.event_type for e in queued.events], again.events) == (["email.queued"], ())
    assert second.email.id == first.email.id
    assert len(w.database.emails) == 1
    assert w.database.event_types() == ["email.queued"]


def test_a_refusing_queue_loses_nothing_the_sweeper_offers_it_again() -> None:
    w = world()
    w.queue.down = True
    result = queue_email(w.context.unit_of_work, w.queue, _inquiry_email(), ADDRESSING, now=w.clock()).value
    assert (result.created, result.enqueued) == (True, False)
    assert result.email.id in w.database.emails
    w.queue.down = False
    w.clock.advance(w.context.policy.requeue_after_seconds)
    report = requeue_stale_emails(w.context.unit_of_work, w.queue, w.context.policy, now=w.clock())
    assert report.offered == 1 and w.queue.messages == [result.email.id]
    # Offered just now: the next sweep leaves it alone.
    again = requeue_stale_emails(w.context.unit_of_work, w.queue, w.context.policy, now=w.clock())
    assert again.offered == 0


def test_sending_delivers_once_and_records_email_sent() -> None:
    w = world()
    email_id = _queue(w)
    sent = send_email(w.context, email_id)
    outcome = sent.value
    assert outcome.result is SendResult.SENT
    assert [event.event_type for event in sent.events] == ["email.sent"]
    email = w.database.emails[email_id]
    assert (email.status, email.attempts, email.provider_message_id) == (EmailStatus.SENT, 1, "provider-1")
    assert w.database.event_types() == ["email.queued", "email.sent"]
    assert [attempt.outcome for attempt in w.database.attempts.values()] == ["sent"]


def test_a_redelivered_message_sends_no_second_copy() -> None:
    w = world()
    email_id = _queue(w)
    results = [send_email(w.context, email_id).value.result for _ in range(3)]
    assert results == [SendResult.SENT, SendResult.ALREADY_DONE, SendResult.ALREADY_DONE]
    assert w.transport.copies_of(email_id) == 1
    assert w.database.event_types().count("email.sent") == 1


def test_a_concurrent_sender_backs_off_while_the_lease_is_live() -> None:
    w = world()
    email_id = _queue(w)
    email = w.database.emails[email_id]
    # Another worker holds the claim right now (it is between claim and send).
    w.database.emails[email_id] = email.claimed(w.clock(), uuid.uuid4(), lease_seconds=60)
    outcome = send_email(w.context, email_id).value
    assert (outcome.result, outcome.retry_in_seconds) == (SendResult.RETRY, 61)
    assert w.transport.delivered == []


def test_a_sender_that_died_after_claiming_is_replaced_once_its_lease_runs_out() -> None:
    w = world()
    email_id = _queue(w)
    dead = w.database.emails[email_id].claimed(w.clock(), uuid.uuid4(), lease_seconds=60)
    w.database.emails[email_id] = dead
    w.clock.advance(60)
    assert send_email(w.context, email_id).value.result is SendResult.SENT
    email = w.database.emails[email_id]
    assert (email.attempts, email.interrupted_attempts) == (2, 1)
    assert w.transport.copies_of(email_id) == 1


def test_transient_errors_retry_with_growing_backoff() -> None:
    w = world(DeliveryPolicy(lease_seconds=60, retry_base_seconds=10, retry_max_seconds=600))
    email_id = _queue(w)
    w.transport.errors = [transient(), transient(), transient()]
    delays = []
    for _ in range(3):
        outcome = send_email(w.context, email_id).value
        assert outcome.result is SendResult.RETRY
        delays.append(outcome.retry_in_seconds)
        # Too early: not due yet, nothing is attempted.
        early = send_email(w.context, email_id).value
        assert early.result is SendResult.RETRY and w.database.emails[email_id].attempts == len(delays)
        w.clock.advance(outcome.retry_in_seconds or 0)
    assert delays == [10, 20, 40]
    assert send_email(w.context, email_id).value.result is SendResult.SENT
    email = w.database.emails[email_id]
    assert (email.status, email.attempts, email.last_error) == (EmailStatus.SENT, 4, None)
    assert w.database.event_types() == ["email.queued", "email.sent"]


def test_after_the_last_attempt_the_email_fails_and_staff_are_alerted() -> None:
    w = world()
    email_id = _queue(w, _inquiry_email(max_attempts=2))
    w.transport.errors = [transient("SMTP 421 try later"), transient("SMTP 421 try later")]
    assert send_email(w.context, email_id).value.result is SendResult.RETRY
    w.clock.advance(3600)
    given_up = send_email(w.context, email_id)
    outcome = given_up.value
    assert outcome.result is SendResult.FAILED and outcome.alert is not None
    assert [event.event_type for event in given_up.events] == ["email.failed", "email.queued"]
    failed = w.database.emails[email_id]
    assert (failed.status, failed.attempts, failed.last_error) == (
        EmailStatus.FAILED,
        2,
        "SMTP 421 try later",
    )
    alert = w.database.emails[outcome.alert.id]
    assert alert.kind is EmailKind.STAFF_SEND_FAILED_ALERT and alert.recipient == "alarm@vermittlung.test"
    assert "Anfrage Therapieplatz" in alert.subject and "SMTP 421 try later" in alert.text
    assert w.queue.messages[-1] == alert.id
    assert w.database.event_types() == ["email.queued", "email.failed", "email.queued"]
    failed_event = next(e for _, e in w.database.events if e.event_type == "email.failed")
    assert failed_event.payload["status"] == "failed" and "error" not in failed_event.payload
    assert "SMTP 421" not in str(failed_event.payload)  # the reason stays with the email
    # The failed email is done: its message is acknowledged from now on.
    assert send_email(w.context, email_id).value.result is SendResult.ALREADY_DONE


def test_a_permanent_error_fails_at_once() -> None:
    w = world()
    email_id = _queue(w)
    w.transport.errors = [permanent()]
    outcome = send_email(w.context, email_id).value
    assert outcome.result is SendResult.FAILED
    assert w.database.emails[email_id].attempts == 1


def test_a_failing_staff_alert_raises_no_alert_about_itself() -> None:
    w = world()
    email_id = _queue(w)
    w.transport.errors = [permanent(), permanent()]
    alert = send_email(w.context, email_id).value.alert
    assert alert is not None
    outcome = send_email(w.context, alert.id).value
    assert outcome.result is SendResult.FAILED and outcome.alert is None
    assert len(w.database.emails) == 2


def test_without_an_alert_address_a_failure_is_only_recorded() -> None:
    w = world(addressing=ADDRESSING.model_copy(update={"staff_alert_recipient": None}))
    email_id = _queue(w)
    w.transport.errors = [permanent()]
    assert send_email(w.context, email_id).value.alert is None
    assert w.database.event_types() == ["email.queued", "email.failed"]


def test_an_unexpected_transport_error_counts_as_transient() -> None:
    w = world()
    email_id = _queue(w)
    w.transport.errors = [RuntimeError("bug in a transport")]
    outcome = send_email(w.context, email_id).value
    assert outcome.result is SendResult.RETRY and "RuntimeError" in (outcome.error or "")
    assert w.database.emails[email_id].status is EmailStatus.QUEUED


def test_a_short_database_outage_after_sending_does_not_lose_the_sent_mark() -> None:
    w = world()
    email_id = _queue(w)
    real_send = w.transport.send

    def send_then_lose_the_database(email):  # type: ignore[no-untyped-def]
        provider_id = real_send(email)
        w.database.down_for_next = 2
        return provider_id

    w.transport.send = send_then_lose_the_database  # type: ignore[method-assign]
    assert send_email(w.context, email_id).value.result is SendResult.SENT
    assert w.database.emails[email_id].status is EmailStatus.SENT
    assert w.sleeps == [0.2, 1.0]


def test_unknown_email() -> None:
    assert send_email(world().context, uuid.uuid4()).value.result is SendResult.MISSING


def test_the_sweeper_offers_emails_whose_sender_died() -> None:
    w = world()
    email_id = _queue(w)
    w.database.emails[email_id] = w.database.emails[email_id].claimed(w.clock(), uuid.uuid4(), 60)
    w.clock.advance(w.context.policy.requeue_after_seconds + 1)
    assert requeue_stale_emails(w.context.unit_of_work, w.queue, w.context.policy, now=w.clock()).offered == 1


@settings(max_examples=50, deadline=None)
@given(
    deliveries=st.lists(st.integers(min_value=0, max_value=4), min_size=5, max_size=40),
    failures=st.lists(st.booleans(), max_size=10),
    steps=st.lists(st.integers(min_value=0, max_value=120), min_size=40, max_size=40),
)
def test_whatever_the_redeliveries_and_errors_each_email_goes_out_at_most_once(
    deliveries: list[int], failures: list[bool], steps: list[int]
) -> None:
    """Messages for five emails arrive in any order, any number of times, with transient errors
    in between: no email is ever delivered twice, and every email that is sent went out once."""
    w = world(DeliveryPolicy(lease_seconds=30, retry_base_seconds=5, retry_max_seconds=60))
    ids = [_queue(w, _inquiry_email(index + 1)) for index in range(5)]
    w.transport.errors = [transient() for failing in failures if failing]
    for index, step in zip(deliveries, steps, strict=False):
        send_email(w.context, ids[index])
        w.clock.advance(step)
    for email_id in ids:
        copies = w.transport.copies_of(email_id)
        assert copies <= 1
        assert (w.database.emails[email_id].status is EmailStatus.SENT) == (copies == 1)
    # Keep redelivering until everything is out: nothing is lost either.
    for _ in range(20):
        w.clock.advance(120)
        for email_id in ids:
            send_email(w.context, email_id)
    assert all(w.transport.copies_of(email_id) == 1 for email_id in ids)
    assert sum(1 for t in w.database.event_types() if t == "email.sent") == 5


def test_an_email_with_the_longest_subject_still_gets_its_failure_alert() -> None:
    w = world()
    email_id = _queue(w, _inquiry_email(subject="Ä" * 300))
    w.transport.errors = [permanent()]
    alert = send_email(w.context, email_id).value.alert
    assert alert is not None and alert.subject.startswith("[Versand fehlgeschlagen] ÄÄÄ")
    assert len(alert.subject) <= 300


# --------------------------------------------------------------------------- batches


def test_a_batch_is_claimed_in_one_transaction_and_answered_per_email_in_order() -> None:
    w = world()
    first, done, flaky = _queue(w), _queue(w), _queue(w)
    send_email(w.context, done)
    missing = uuid.uuid4()
    units = 0
    make_unit = w.context.unit_of_work

    def counted() -> EmailUnitOfWork:
        nonlocal units
        units += 1
        return make_unit()

    w.context.unit_of_work = counted
    w.transport.errors = [transient()]  # the first send of the batch: `flaky` comes first
    outcomes = send_emails(w.context, [flaky, first, missing, done, first])
    assert list(outcomes) == [flaky, first, missing, done]  # an id named twice is answered once
    assert {email_id: outcome.value.result for email_id, outcome in outcomes.items()} == {
        flaky: SendResult.RETRY,
        first: SendResult.SENT,
        missing: SendResult.MISSING,
        done: SendResult.ALREADY_DONE,
    }
    assert units == 3  # one claim for the batch, then one per outcome recorded (retry, sent)
    assert w.transport.copies_of(first) == 1 and w.transport.copies_of(done) == 1
    assert [attempt.outcome for attempt in w.database.attempts.values()] == ["sent", "retry", "sent"]


def test_a_late_success_after_another_sender_finished_records_no_second_event() -> None:
    w = world(DeliveryPolicy(lease_seconds=5, retry_base_seconds=10, retry_max_seconds=600))
    email_id = _queue(w)
    token = uuid.uuid4()
    late = w.database.emails[email_id].claimed(w.clock(), token, lease_seconds=5)
    w.database.emails[email_id] = late
    w.database.attempts[token] = Attempt(email_id, late.attempts, w.clock())
    w.clock.advance(seconds=6)
    assert send_email(w.context, email_id).value.result is SendResult.SENT  # the other sender
    with w.context.unit_of_work() as uow:
        assert uow.emails.store_delivered(late.delivered(w.clock(), None), token) is None
        uow.commit()
    assert w.database.event_types().count("email.sent") == 1
    assert w.database.emails[email_id].attempts == 2
