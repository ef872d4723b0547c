"""Outbox relay (scheduled, and invokable by operators): publishes a service's unpublished
outbox rows to the EventBridge bus. Which service is set by DB_SCHEMA and the database role."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from therapy_platform.platform import bootstrap
from therapy_platform.platform.metrics import Unit
from therapy_platform.platform.metrics_emf import flushed
from therapy_platform.platform.outbox_relay import outbox_lag_seconds, relay_outbox

logger = Logger(service="outbox-relay")
service = bootstrap.outbox_relay()


class RelayRequest(BaseModel):
    """Operators may pass limits; a scheduled EventBridge event carries none of these keys."""

    model_config = ConfigDict(extra="ignore")

    batch_size: int = Field(default=100, ge=1, le=500)
    max_batches: int = Field(default=50, ge=1, le=1000)


@logger.inject_lambda_context
@flushed(service.metrics)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = RelayRequest.model_validate(event or {})
    # Measured before relaying: how late the oldest event is that the after-commit publish missed.
    lag = outbox_lag_seconds(service.backlog().oldest_unpublished_at(), service.clock())
    service.metrics.add("OutboxLag", Unit.SECONDS, lag)
    report = relay_outbox(
        service.store(), service.publisher(), batch_size=request.batch_size, max_batches=request.max_batches
    )
    logger.info("outbox relayed", extra=asdict(report))
    return {"schema": service.schema, **asdict(report)}
