"""Environment-variable models of the communication service (`platform.settings.EnvModel`: a
missing or malformed variable fails at cold start naming it).

Sections, each one group of variables (`MailSettings`, `LegalSettings`, ...), and what each kind
of function reads (`WritingSettings`, `FollowUpSettings`, `SenderSettings`,
`ReplyIntakeSettings`): the functions differ in what template.yaml gives them, so each reads
only its own variables, when its handler module is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from typing import Literal, Self

from pydantic import Field, model_validator

from therapy_platform.communication.domain.email_content import LegalNotice
from therapy_platform.communication.domain.emails import Addressing, DeliveryPolicy
from therapy_platform.communication.domain.phone_calls import CallPlanningPolicy
from therapy_platform.communication.domain.replies import ReplyPolicy
from therapy_platform.communication.domain.tracking import FollowUpPolicy
from therapy_platform.platform.settings import EnvModel

# --------------------------------------------------------------------------- sections


class MailSettings(EnvModel):
    """Where emails come from and how they leave: `MAIL_TRANSPORT=smtp` (the local SMTP server in
    development and tests, any SMTP relay elsewhere) or `ses` (Amazon SES API, IAM-authorised)."""

    transport: Literal["smtp", "ses"] = Field(default="smtp", alias="MAIL_TRANSPORT")
    mail_from: str = Field(
        alias="MAIL_FROM", description='e.g. "Therapieplatz-Vermittlung <team@example.org>"'
    )
    reply_domain: str = Field(
        alias="REPLY_DOMAIN", description="Domain of the reply addresses (antwort+B123@...)"
    )
    reply_local_part: str = Field(default="antwort", alias="REPLY_LOCAL_PART")
    staff_alert_email: str | None = Field(default=None, alias="STAFF_ALERT_EMAIL")
    smtp_host: str = Field(default="127.0.0.1", alias="SMTP_HOST")
    smtp_port: int = Field(default=25, ge=1, le=65535, alias="SMTP_PORT")
    # STARTTLS unless switched off (SMTP_STARTTLS=false: the local SMTP server only; the template
    # sets it from Environment).
    smtp_starttls: bool = Field(default=True, alias="SMTP_STARTTLS")
    smtp_username: str | None = Field(default=None, alias="SMTP_USERNAME")
    smtp_password: str | None = Field(default=None, alias="SMTP_PASSWORD")
    smtp_timeout_seconds: float = Field(default=20.0, gt=0, le=120, alias="SMTP_TIMEOUT_SECONDS")
    ses_configuration_set: str | None = Field(default=None, alias="SES_CONFIGURATION_SET")

    def addressing(self) -> Addressing:
        return Addressing(
            sender=self.mail_from,
            reply_domain=self.reply_domain,
            reply_local_part=self.reply_local_part,
            staff_alert_recipient=self.staff_alert_email,
        )


class EmailQueueSettings(EnvModel):
    queue_url: str = Field(alias="EMAIL_QUEUE_URL")


class LegalSettings(EnvModel):
    """The provider identification (Impressum) printed under every email."""

    organisation: str = Field(alias="LEGAL_ORGANISATION")
    street: str = Field(alias="LEGAL_STREET")
    postcode_city: str = Field(alias="LEGAL_POSTCODE_CITY")
    email: str = Field(alias="LEGAL_EMAIL")
    phone: str | None = Field(default=None, alias="LEGAL_PHONE")
    website: str | None = Field(default=None, alias="LEGAL_WEBSITE")
    represented_by: str | None = Field(default=None, alias="LEGAL_REPRESENTED_BY")
    register_entry: str | None = Field(default=None, alias="LEGAL_REGISTER")
    vat_id: str | None = Field(default=None, alias="LEGAL_VAT_ID")
    privacy_url: str | None = Field(default=None, alias="LEGAL_PRIVACY_URL")

    def notice(self) -> LegalNotice:
        return LegalNotice(**self.model_dump())


class DeliverySettings(EnvModel):
    lease_seconds: int = Field(default=120, ge=1, le=3600, alias="EMAIL_CLAIM_LEASE_SECONDS")
    retry_base_seconds: int = Field(default=30, ge=1, le=3600, alias="EMAIL_RETRY_BASE_SECONDS")
    retry_max_seconds: int = Field(default=3600, ge=1, le=43200, alias="EMAIL_RETRY_MAX_SECONDS")
    requeue_after_seconds: int = Field(default=900, ge=60, le=86400, alias="EMAIL_REQUEUE_AFTER_SECONDS")

    def policy(self) -> DeliveryPolicy:
        return DeliveryPolicy(**self.model_dump())


class FollowUpPolicySettings(EnvModel):
    reminder_after_days: int = Field(default=7, ge=1, le=60, alias="REMINDER_AFTER_DAYS")
    expire_after_days: int = Field(default=14, ge=2, le=120, alias="EXPIRE_AFTER_DAYS")
    cooling_days: int = Field(default=28, ge=0, le=365, alias="COOLING_DAYS")
    contact_within_days: int = Field(default=7, ge=1, le=60, alias="PLACE_CONTACT_WITHIN_DAYS")

    def policy(self) -> FollowUpPolicy:
        return FollowUpPolicy(**self.model_dump())


class CallPlanningSettings(EnvModel):
    horizon_days: int = Field(default=7, ge=1, le=60, alias="PHONE_WINDOW_HORIZON_DAYS")
    fallback_time: time = Field(default=time(12, 0), alias="PHONE_FALLBACK_TIME")
    day_end: time = Field(default=time(18, 0), alias="PHONE_CALL_DAY_END")
    holiday_subdivision: str | None = Field(
        default=None, alias="PUBLIC_HOLIDAY_SUBDIVISION", description='German state code, e.g. "BY"'
    )

    def policy(self) -> CallPlanningPolicy:
        return CallPlanningPolicy(**self.model_dump())


class ReplyInboxSettings(EnvModel):
    """Where replies arrive: `maildir` (the local SMTP server's Maildir) or `s3` (SES receiving
    stores each message as an object under REPLY_PREFIX; its verdict headers are then required).
    A message over REPLY_MAX_MESSAGE_BYTES (default 5 MiB: a reply with a scanned form attached
    fits, the parser's memory stays far below the function's) is put on the review list unread."""

    inbox: Literal["maildir", "s3"] = Field(default="maildir", alias="REPLY_INBOX")
    maildir: str | None = Field(default=None, alias="REPLY_MAILDIR")
    bucket: str | None = Field(default=None, alias="REPLY_BUCKET")
    prefix: str = Field(default="inbound/", alias="REPLY_PREFIX")
    processed_prefix: str = Field(default="processed/", alias="REPLY_PROCESSED_PREFIX")
    max_message_bytes: int = Field(
        default=5 * 1024 * 1024, ge=64 * 1024, le=40 * 1024 * 1024, alias="REPLY_MAX_MESSAGE_BYTES"
    )

    def policy(self) -> ReplyPolicy:
        # SES receiving is the only way into the S3 inbox: its verdicts must be on every message.
        return ReplyPolicy(max_message_bytes=self.max_message_bytes, verdicts_required=self.inbox == "s3")

    @model_validator(mode="after")
    def _where(self) -> Self:
        if self.inbox == "maildir" and not self.maildir:
            raise ValueError("REPLY_MAILDIR is required with REPLY_INBOX=maildir")
        if self.inbox == "s3" and not self.bucket:
            raise ValueError("REPLY_BUCKET is required with REPLY_INBOX=s3")
        return self


class ConsumerSettings(EnvModel):
    """A queue consumer's dead-letter queue. Optional: without it a poison message simply fails
    until the queue's redrive policy moves it."""

    dead_letter_queue_url: str | None = Field(default=None, alias="DEAD_LETTER_QUEUE_URL")


# --------------------------------------------------------------------------- per function


@dataclass(frozen=True)
class WritingSettings:
    """What every function that writes emails reads (the emails API): sender and reply
    addresses, the email queue, the Impressum."""

    mail: MailSettings
    queue: EmailQueueSettings
    legal: LegalSettings

    @classmethod
    def from_env(cls) -> Self:
        return cls(MailSettings.from_env(), EmailQueueSettings.from_env(), LegalSettings.from_env())


@dataclass(frozen=True)
class FollowUpSettings:
    """The event consumer and the reminder job: writing, plus the follow-up days and call
    planning, plus the consumer's dead-letter queue."""

    writing: WritingSettings
    follow_up: FollowUpPolicySettings
    calls: CallPlanningSettings
    consumer: ConsumerSettings

    @classmethod
    def from_env(cls) -> Self:
        return cls(
            WritingSettings.from_env(),
            FollowUpPolicySettings.from_env(),
            CallPlanningSettings.from_env(),
            ConsumerSettings.from_env(),
        )


@dataclass(frozen=True)
class SenderSettings:
    """The email sender and its sweep: writing (failure alerts are emails), how hard to try,
    and the consumer's dead-letter queue."""

    writing: WritingSettings
    delivery: DeliverySettings
    consumer: ConsumerSettings

    @classmethod
    def from_env(cls) -> Self:
        return cls(WritingSettings.from_env(), DeliverySettings.from_env(), ConsumerSettings.from_env())


@dataclass(frozen=True)
class ReplyIntakeSettings:
    """Reply intake: which addresses are ours, and where replies arrive."""

    mail: MailSettings
    inbox: ReplyInboxSettings

    @classmethod
    def from_env(cls) -> Self:
        return cls(MailSettings.from_env(), ReplyInboxSettings.from_env())
