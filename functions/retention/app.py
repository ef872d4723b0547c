"""Retention job of one service (scheduled nightly, invokable by operators): applies the
service's retention periods (platform/retention.py) to its own schema (DB_SCHEMA, through its
own database role) in batches. Answers and logs counts per rule, never content.

Operators may pass `batch_size`, `max_batches`, and `now` (an instant not in the future: a run
"as of" an earlier time erases less, never more, than the scheduled run)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from therapy_platform.platform.retention import report
from therapy_platform.platform.retention_sql import retention_job

logger = Logger(service="retention")
job = retention_job()


class RetentionRequest(BaseModel):
    """A scheduled event carries none of these keys."""

    model_config = ConfigDict(extra="ignore")

    batch_size: int = Field(default=500, ge=1, le=5000)
    max_batches: int = Field(default=200, ge=1, le=10000)
    now: AwareDatetime | None = None


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = RetentionRequest.model_validate(event or {})
    real_now: datetime = job.clock()
    if request.now is not None and request.now > real_now:
        raise ValueError("now may not lie in the future")
    # Batches stop 15 s before the timeout; each has committed, and the next run goes on.
    at, results = job.run(
        now=request.now or real_now,
        batch_size=request.batch_size,
        max_batches=request.max_batches,
        keep_going=lambda: context.get_remaining_time_in_millis() > 15_000,
    )
    summary = report(job.schema, at, results)
    logger.info("retention applied", extra={"retention": summary})
    return summary
