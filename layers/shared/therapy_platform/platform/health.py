"""GET /health: whether the platform's dependencies answer (the database, the event bus, the
Kafka broker). A check is a callable that raises when its dependency does not answer; the report
names the failing ones with the error's type and message (connection errors, never data).
`deployed_checks` composes the real checks for the health function."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import text

from therapy_platform.platform.database import default_engine
from therapy_platform.platform.kafka import KafkaEventSink
from therapy_platform.platform.settings import EventBusSettings, KafkaSettings

ERROR_TEXT_LIMIT = 300

Check = Callable[[], Any]


class ComponentHealth(BaseModel):
    status: Literal["ok", "unavailable"]
    latency_ms: float
    error: str | None = None


class HealthReport(BaseModel):
    status: Literal["ok", "degraded"]
    components: dict[str, ComponentHealth]

    @property
    def healthy(self) -> bool:
        return self.status == "ok"


def probe(check: Check) -> ComponentHealth:
    started = time.perf_counter()
    try:
        check()
    except Exception as error:
        return ComponentHealth(
            status="unavailable",
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
            error=f"{type(error).__name__}: {error}"[:ERROR_TEXT_LIMIT],
        )
    return ComponentHealth(status="ok", latency_ms=round((time.perf_counter() - started) * 1000, 1))


def health_report(checks: Mapping[str, Check]) -> HealthReport:
    """Runs every check, one after another (each has its own short timeout)."""
    components = {name: probe(check) for name, check in checks.items()}
    healthy = all(component.status == "ok" for component in components.values())
    return HealthReport(status="ok" if healthy else "degraded", components=components)


# ---------------------------------------------------------------- the deployed checks


def _database_answers() -> None:
    with default_engine().connect() as connection:
        connection.execute(text("SELECT 1"))


def _bus_answers(bus_name: str) -> Check:
    def check() -> None:
        import boto3
        from botocore.config import Config

        config = Config(connect_timeout=2, read_timeout=3, retries={"max_attempts": 1})
        boto3.client("events", config=config).describe_event_bus(Name=bus_name)

    return check


def deployed_checks() -> dict[str, Check]:
    """The dependencies /health reports on (EVENT_BUS_NAME, KAFKA_*; the database as configured),
    read at cold start."""
    bus = EventBusSettings.from_env()
    broker = KafkaEventSink(KafkaSettings.from_env())
    return {"database": _database_answers, "bus": _bus_answers(bus.bus_name), "broker": broker.check}
