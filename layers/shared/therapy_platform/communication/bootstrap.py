"""The communication service's follow-up context as deployed: its PostgreSQL unit of work, the
SQS email queue, the renderer with the legal footer, addressing, planning and follow-up
settings, German public holidays and the real clock (one per warm Lambda environment)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

from therapy_platform.communication.adapters.email_queue import SqsEmailQueue
from therapy_platform.communication.adapters.state import SqlCommunicationStateUnitOfWork
from therapy_platform.communication.domain.phone_calls import WorkingCalendar
from therapy_platform.communication.mail_settings import EmailQueueSettings, LegalSettings, MailSettings
from therapy_platform.communication.rendering.renderer import EmailRenderer
from therapy_platform.communication.settings import CallPlanningSettings, FollowUpSettings
from therapy_platform.communication.use_cases.events import CommunicationContext
from therapy_platform.communication.use_cases.staff_emails import StaffEmailContext
from therapy_platform.platform.database import default_engine


def utc_now() -> datetime:
    return datetime.now(UTC)


@cache
def default_context() -> CommunicationContext:
    calls = CallPlanningSettings.from_env().policy()
    return CommunicationContext(
        unit_of_work=lambda: SqlCommunicationStateUnitOfWork(default_engine()),
        queue=SqsEmailQueue.from_url(EmailQueueSettings.from_env().queue_url),
        renderer=EmailRenderer(LegalSettings.from_env().notice()),
        addressing=MailSettings.from_env().addressing(),
        calls=calls,
        follow_up=FollowUpSettings.from_env().policy(),
        calendar=WorkingCalendar.for_policy(calls),
        clock=utc_now,
    )


@cache
def default_staff_email_context() -> StaffEmailContext:
    """What the emails API needs to write an email: no call planning or follow-up settings."""
    return StaffEmailContext(
        unit_of_work=lambda: SqlCommunicationStateUnitOfWork(default_engine()),
        queue=SqsEmailQueue.from_url(EmailQueueSettings.from_env().queue_url),
        renderer=EmailRenderer(LegalSettings.from_env().notice()),
        addressing=MailSettings.from_env().addressing(),
        clock=utc_now,
    )
