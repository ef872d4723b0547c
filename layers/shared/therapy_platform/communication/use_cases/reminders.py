"""The daily reminder job: one reminder per bundle left unanswered for `reminder_after_days`.

Selection (`TrackedBundle.reminder_due`): sent at least 7 days ago (config), neither answered
nor expired, no reminder yet, at least one member not withdrawn. The reminder lists the
members still open and the day the bundle expires (`expire_after_days` after sending; the
matching engine expires it). Email when the bundle went out by email, else a phone-call task.

Exactly once: each bundle is handled in its own transaction that locks its row, checks again
and sets `reminder_sent_at` together with the email (or call task) it writes; a second run, or
two runs at once, find the mark and do nothing. The email and the call carry an idempotency
key from the bundle id as well. One bundle that cannot be handled (logged) does not stop the
others; it is tried again on the next run.

Feature flag `reminder_emails` off (`emails=False`): email reminders are held back (counted as
`held`, nothing written, so they go out on the first run after the flag is on again, if the
bundle is still open); call-task reminders go on. docs/feature-flags.md
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from therapy_platform.communication.domain.email_content import BundleReminder
from therapy_platform.communication.domain.phone_calls import PhoneCallPurpose
from therapy_platform.communication.domain.tracking import TrackedBundle, person_of
from therapy_platform.communication.use_cases.emails import offer_after_commit
from therapy_platform.communication.use_cases.events import Actions, CommunicationContext
from therapy_platform.platform.events import EventEnvelope
from therapy_platform.platform.outcome import Outcome


@dataclass
class ReminderReport:
    due: int = 0
    by_email: int = 0
    by_phone: int = 0
    skipped: int = 0  # no longer due when locked (answered meanwhile, done by a parallel run)
    held: int = 0  # email reminders held back: the feature flag reminder_emails is off
    failed: list[str] = field(default_factory=list)


def _remind(actions: Actions, bundle: TrackedBundle) -> Literal["email", "phone"]:
    assert bundle.therapist is not None
    policy = actions.context.follow_up
    if bundle.writes_by_email:
        content = BundleReminder(
            bundle_reference=bundle.reference,
            therapist=person_of(bundle.therapist),
            patients=[member.patient for member in bundle.remaining_members],
            listed_in_directory=bundle.therapist.listed_in_directory,
            first_sent_on=bundle.sent_on(),
            expires_on=bundle.expires_on(policy),
        )
        actions.email_therapist(bundle, content, key=f"bundle-reminder:{bundle.id}")
        return "email"
    actions.call_therapist(bundle, PhoneCallPurpose.REMINDER, key=f"bundle-reminder-call:{bundle.id}")
    return "phone"


def _remind_one(
    context: CommunicationContext,
    bundle_id: uuid.UUID,
    now: datetime,
    events: list[EventEnvelope],
    *,
    emails: bool = True,
) -> str | None:
    with context.unit_of_work() as uow:
        bundle = uow.bundles.get(bundle_id, for_update=True)
        if bundle is None or not bundle.reminder_due(now, context.follow_up):
            return None
        if bundle.writes_by_email and not emails:
            return "held"
        actions = Actions(context, uow, now)
        channel = _remind(actions, bundle)
        uow.bundles.save(bundle.model_copy(update={"reminder_sent_at": now, "updated_at": now}))
        if actions.effects.emails:
            offer_after_commit(uow, context.unit_of_work, context.queue, actions.effects.emails, now=now)
        uow.commit()
    events.extend(actions.effects.events)
    return channel


def send_due_reminders(
    context: CommunicationContext, *, limit: int = 1000, emails: bool = True
) -> Outcome[ReminderReport]:
    now = context.clock()
    sent_before = now - timedelta(days=context.follow_up.reminder_after_days)
    with context.unit_of_work() as uow:
        due = uow.bundles.due_for_reminder(sent_before=sent_before, limit=limit)
    report = ReminderReport(due=len(due))
    events: list[EventEnvelope] = []
    for bundle_id in due:
        try:
            channel = _remind_one(context, bundle_id, now, events, emails=emails)
        except Exception as error:  # one bad bundle must not stop the others; the next run retries
            report.failed.append(f"{bundle_id}: {type(error).__name__}: {error}")
            continue
        if channel == "email":
            report.by_email += 1
        elif channel == "phone":
            report.by_phone += 1
        elif channel == "held":
            report.held += 1
        else:
            report.skipped += 1
    return Outcome(report, events=tuple(events))
