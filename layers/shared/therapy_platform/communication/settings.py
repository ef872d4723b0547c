"""Environment-variable models of the communication service's follow-up work (event
reactions, reminders, phone calls, reply intake). Same rules as settings.py: a missing or
malformed variable fails at cold start naming it."""

from __future__ import annotations

from datetime import time
from typing import Literal, Self

from pydantic import Field, model_validator

from therapy_platform.communication.domain.phone_calls import CallPlanningPolicy
from therapy_platform.communication.domain.tracking import FollowUpPolicy
from therapy_platform.platform.settings import EnvModel


class FollowUpSettings(EnvModel):
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
    stores each message as an object under REPLY_PREFIX)."""

    inbox: Literal["maildir", "s3"] = Field(default="maildir", alias="REPLY_INBOX")
    maildir: str | None = Field(default=None, alias="REPLY_MAILDIR")
    bucket: str | None = Field(default=None, alias="REPLY_BUCKET")
    prefix: str = Field(default="inbound/", alias="REPLY_PREFIX")
    processed_prefix: str = Field(default="processed/", alias="REPLY_PROCESSED_PREFIX")

    @model_validator(mode="after")
    def _where(self) -> Self:
        if self.inbox == "maildir" and not self.maildir:
            raise ValueError("REPLY_MAILDIR is required with REPLY_INBOX=maildir")
        if self.inbox == "s3" and not self.bucket:
            raise ValueError("REPLY_BUCKET is required with REPLY_INBOX=s3")
        return self
