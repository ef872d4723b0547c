"""GET /health: whether the platform's dependencies answer (the database, the event bus, the
Kafka broker). A check is a callable that raises when its dependency does not answer; the report
names the failing ones with the error's type and message (connection errors, never data)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel

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
