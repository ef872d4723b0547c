"""Outbox relay (scheduled, and invokable by operators): publishes a service's unpublished
outbox rows to the EventBridge bus. Which service is set by DB_SCHEMA and the database role."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from therapy_platform.platform.database import default_engine
from therapy_platform.platform.eventbridge import EventBridgePublisher
from therapy_platform.platform.outbox import SqlOutboxStore
from therapy_platform.platform.outbox_relay import relay_outbox
from therapy_platform.platform.settings import DatabaseSettings, EventPublisherSettings, SettingsError

logger = Logger(service="outbox-relay")


class RelayRequest(BaseModel):
    """Operators may pass limits; a scheduled EventBridge event carries none of these keys."""

    model_config = ConfigDict(extra="ignore")

    batch_size: int = Field(default=100, ge=1, le=500)
    max_batches: int = Field(default=50, ge=1, le=1000)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = RelayRequest.model_validate(event or {})
    schema = DatabaseSettings.from_env().service_schema
    if not schema:
        raise SettingsError("DB_SCHEMA must name the service schema whose outbox this relay drains")
    bus = EventPublisherSettings.from_env()
    report = relay_outbox(
        SqlOutboxStore(default_engine(), schema),
        EventBridgePublisher.from_settings(bus.bus_name, bus.source),
        batch_size=request.batch_size,
        max_batches=request.max_batches,
    )
    logger.info("outbox relayed", extra=asdict(report))
    return {"schema": schema, **asdict(report)}
