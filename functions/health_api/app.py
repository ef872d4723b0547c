"""GET /health: reports whether the database, the event bus and the Kafka broker answer."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cache
from typing import Any, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel
from sqlalchemy import text

from therapy_platform.platform.database import default_engine
from therapy_platform.platform.kafka import KafkaEventSink
from therapy_platform.platform.rest.resolver import create_resolver
from therapy_platform.platform.settings import EventBusSettings, KafkaSettings

logger = Logger(service="health")
app = create_resolver(logger)


class ComponentHealth(BaseModel):
    status: Literal["ok", "unavailable"]
    latency_ms: float
    error: str | None = None


class HealthReport(BaseModel):
    status: Literal["ok", "degraded"]
    components: dict[str, ComponentHealth]


def _probe(check: Callable[[], Any]) -> ComponentHealth:
    started = time.perf_counter()
    try:
        check()
    except Exception as error:
        return ComponentHealth(
            status="unavailable",
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
            error=f"{type(error).__name__}: {error}"[:300],
        )
    return ComponentHealth(status="ok", latency_ms=round((time.perf_counter() - started) * 1000, 1))


def _check_database() -> None:
    with default_engine().connect() as connection:
        connection.execute(text("SELECT 1"))


def _check_bus() -> None:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "events", config=Config(connect_timeout=2, read_timeout=3, retries={"max_attempts": 1})
    )
    client.describe_event_bus(Name=EventBusSettings.from_env().bus_name)


@cache
def _kafka() -> KafkaEventSink:
    return KafkaEventSink(KafkaSettings.from_env())


@app.get("/health")
def health() -> Response[HealthReport]:
    components = {
        "database": _probe(_check_database),
        "bus": _probe(_check_bus),
        "broker": _probe(lambda: _kafka().check()),
    }
    healthy = all(component.status == "ok" for component in components.values())
    report = HealthReport(status="ok" if healthy else "degraded", components=components)
    return Response(
        status_code=200 if healthy else 503, content_type=content_types.APPLICATION_JSON, body=report
    )


@logger.inject_lambda_context
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return app.resolve(event, context)
