"""Outbox relay (scheduled, and invokable by operators): publishes a service's due outbox rows
to the EventBridge bus, parks rows the bus keeps refusing, purges old published rows (DB_SCHEMA
and the role say which service). Operators may also list the parked rows (`{"action": "parked"}`:
ids, type and reason, no payload) and re-queue them (`{"action": "requeue", "event_ids": [...]}`)."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Any, Literal, Self

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, model_validator

from therapy_platform.platform import bootstrap
from therapy_platform.platform.metrics import Unit
from therapy_platform.platform.metrics_emf import flushed
from therapy_platform.platform.outbox_relay import (
    RELAY_MIN_TIME_LEFT_S,
    outbox_lag_seconds,
    parked_rows_as_json,
    purge_published,
    relay_outbox,
)

logger = Logger(service="outbox-relay")
service = bootstrap.outbox_relay()


class RelayRequest(BaseModel):
    """Operators may pass these; a scheduled EventBridge event carries none of these keys."""

    model_config = ConfigDict(extra="ignore")

    action: Literal["relay", "parked", "requeue"] = "relay"
    batch_size: int = Field(default=500, ge=1, le=500)
    max_batches: int = Field(default=50, ge=1, le=1000)
    limit: int = Field(default=100, ge=1, le=1000)  # parked rows listed
    event_ids: list[uuid.UUID] = Field(default_factory=list, max_length=500)  # parked rows re-queued

    @model_validator(mode="after")
    def _requeue_names_its_rows(self) -> Self:
        if self.action == "requeue" and not self.event_ids:
            raise ValueError("requeue needs event_ids")
        return self


@logger.inject_lambda_context
@flushed(service.metrics)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = RelayRequest.model_validate(event or {})
    store = service.store()
    if request.action == "parked":
        return {"schema": service.schema, "parked": parked_rows_as_json(store.parked(request.limit))}
    if request.action == "requeue":
        requeued = store.requeue(request.event_ids)
        logger.info("parked outbox rows re-queued", extra={"outbox_requeued": requeued})
        return {"schema": service.schema, "requeued": requeued}
    # Measured before relaying: how late the oldest event is that the after-commit publish missed.
    lag = outbox_lag_seconds(service.backlog().oldest_unpublished_at(), service.clock())
    service.metrics.add("OutboxLag", Unit.SECONDS, lag)
    report = relay_outbox(
        store,
        service.publisher(),
        batch_size=request.batch_size,
        max_batches=request.max_batches,
        policy=service.policy,
        clock=service.clock,
        time_left_s=lambda: context.get_remaining_time_in_millis() / 1000,  # no batch near the timeout
        min_time_left_s=RELAY_MIN_TIME_LEFT_S,
    )
    purged = purge_published(store, retention=service.retention, clock=service.clock)
    # One line per run with the parked total: a metric filter or alarm keys on outbox_parked_total.
    summary = {**asdict(report), "purged": purged, "outbox_parked_total": store.parked_count()}
    if report.parked:
        logger.warning("outbox rows parked", extra=summary)
    else:
        logger.info("outbox relayed", extra=summary)
    return {"schema": service.schema, **summary}
