"""Payloads the communication service publishes (`email.*`, `phone_call.*`; Kafka topic
`communication-events`).

Produced by `communication/use_cases/emails.py` (an email queued, sent or given up),
`communication/use_cases/events.py` (a call planned for a therapist without email) and
`communication/use_cases/phone_calls.py` (staff record a call's outcome). No service consumes
them today except `email.opt_out_received` (the therapist service records the objection); all
reach Kafka through the bridge (reporting, audit). They carry no contact data,
no subject, no body and no notes: personal data stays in the communication service.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from therapy_platform.contracts.base import EventPayload


class EmailKind(StrEnum):
    BUNDLE_INQUIRY = "bundle_inquiry"
    BUNDLE_REMINDER = "bundle_reminder"
    WITHDRAWAL_NOTICE = "withdrawal_notice"
    PATIENT_SEARCH_STARTED = "patient_search_started"
    PATIENT_PLACE_FOUND = "patient_place_found"
    PATIENT_REGISTRATION_CONFIRMED = "patient_registration_confirmed"
    STAFF_CONFLICT_ALERT = "staff_conflict_alert"
    STAFF_UNKNOWN_LOCATION_ALERT = "staff_unknown_location_alert"
    STAFF_SEND_FAILED_ALERT = "staff_send_failed_alert"
    AD_HOC = "ad_hoc"


class RecipientType(StrEnum):
    THERAPIST = "therapist"
    PATIENT = "patient"
    STAFF = "staff"


class EmailStatus(StrEnum):
    """The statuses an email event reports (drafts and sending attempts are not published)."""

    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


class PhoneCallPurpose(StrEnum):
    INQUIRY = "inquiry"  # a bundle for a therapist without email
    REMINDER = "reminder"  # the one reminder after 7 days without an answer
    WITHDRAWAL = "withdrawal"  # a listed patient has been placed elsewhere
    FOLLOW_UP = "follow_up"  # anything else staff plan by hand


class SlotRule(StrEnum):
    """Why a call got its slot: inside a phone window, or the fallback (next working day)."""

    PHONE_WINDOW = "phone_window"
    FALLBACK = "fallback"


class PhoneCallOutcome(StrEnum):
    REACHED = "reached"
    NO_ANSWER = "no_answer"
    VOICEMAIL = "voicemail"
    CALL_BACK_REQUESTED = "call_back_requested"
    WRONG_NUMBER = "wrong_number"


class EmailStatusChanged(EventPayload):
    """Payload of `email.queued`, `email.sent` and `email.failed` (`status` says which).
    Produced by the communication service; consumed by Kafka only."""

    email_id: uuid.UUID
    kind: EmailKind
    status: EmailStatus
    recipient_type: RecipientType
    recipient_id: uuid.UUID | None = None
    bundle_id: uuid.UUID | None = None
    bundle_reference: str | None = None
    message_id: str
    attempts: int
    at: datetime


class PhoneCallScheduled(EventPayload):
    """Payload of `phone_call.scheduled`: staff are to call a therapist in this slot. Produced by
    the communication service; consumed by Kafka only."""

    task_id: uuid.UUID
    purpose: PhoneCallPurpose
    therapist_id: uuid.UUID
    bundle_id: uuid.UUID | None = None
    bundle_reference: str | None = None
    slot_start: datetime
    slot_end: datetime
    scheduling_rule: SlotRule
    has_phone_number: bool
    scheduled_at: datetime


class PhoneCallCompleted(EventPayload):
    """Payload of `phone_call.completed`: what came of a call (the notes stay in the
    communication service). Produced by the communication service; consumed by Kafka only."""

    task_id: uuid.UUID
    purpose: PhoneCallPurpose
    therapist_id: uuid.UUID
    bundle_id: uuid.UUID | None = None
    bundle_reference: str | None = None
    outcome: PhoneCallOutcome
    completed_at: datetime
    completed_by: str


class OptOutReceived(EventPayload):
    """Payload of `email.opt_out_received`: a therapist's trustworthy reply objected to further
    inquiries ("keine weiteren Anfragen", GDPR Art. 21). Produced by the communication
    service's reply intake; consumed by the therapist service, which marks the therapist opted
    out (idempotent). Only the therapist's id (the envelope's timestamp says when): never the
    reply's text, subject or address."""

    therapist_id: uuid.UUID
