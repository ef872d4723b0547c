"""Environment-variable models of the communication service (same rules as settings.py: a
missing or malformed variable fails at cold start naming it)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from therapy_platform.communication.domain.email_content import LegalNotice
from therapy_platform.communication.domain.emails import Addressing, DeliveryPolicy
from therapy_platform.platform.settings import EnvModel


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
    smtp_starttls: bool = Field(default=False, alias="SMTP_STARTTLS")
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


class DeliverySettings(EnvModel):
    lease_seconds: int = Field(default=120, ge=1, le=3600, alias="EMAIL_CLAIM_LEASE_SECONDS")
    retry_base_seconds: int = Field(default=30, ge=1, le=3600, alias="EMAIL_RETRY_BASE_SECONDS")
    retry_max_seconds: int = Field(default=3600, ge=1, le=43200, alias="EMAIL_RETRY_MAX_SECONDS")
    requeue_after_seconds: int = Field(default=900, ge=60, le=86400, alias="EMAIL_REQUEUE_AFTER_SECONDS")

    def policy(self) -> DeliveryPolicy:
        return DeliveryPolicy(**self.model_dump())


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
