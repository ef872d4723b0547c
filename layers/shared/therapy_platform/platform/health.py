"""GET /health: whether the platform's dependencies answer (the database, the event bus, the
Kafka broker). A check is a callable that raises when its dependency does not answer.

The answer is public (the only route without a token), so it carries one stable code per
dependency and never an exception's text: that text can name hosts, ports, users, SQL or
configuration. The exception itself goes to the function's log, for operators. Codes:
`ok`; `timeout` (no answer in time); `unavailable` (cannot connect: refused, unknown host,
broker down, connection lost); `access_denied` (reached, but our credentials or permissions
were refused); `error` (anything else).
`deployed_checks` composes the real checks for the health function."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, Literal

from pydantic import BaseModel, Field
from sqlalchemy import text

from therapy_platform.platform.database import default_engine
from therapy_platform.platform.kafka import KafkaEventSink
from therapy_platform.platform.settings import EventBusSettings, KafkaSettings

logger = logging.getLogger(__name__)

Check = Callable[[], Any]
ComponentStatus = Literal["ok", "timeout", "unavailable", "access_denied", "error"]

# Recognised by class name along the cause chain, so this module needs no driver or SDK import
# (botocore's ConnectTimeoutError, kafka's KafkaTimeoutError, SQLAlchemy's pool TimeoutError ...).
_TIMEOUT_WORDS: Final = ("Timeout",)
_DENIED_WORDS: Final = ("AccessDenied", "Authorization", "Authentication", "PermissionError", "Forbidden")
_UNAVAILABLE_WORDS: Final = (
    "ConnectionError",
    "ConnectionRefused",
    "ConnectionReset",
    "EndpointConnection",
    "NoBrokersAvailable",
    "BrokerNotAvailable",
    "OperationalError",
    "InterfaceError",
    "gaierror",
    "OSError",
)
# AWS error codes of a refused caller, PostgreSQL SQLSTATE classes of refused credentials
# (28: invalid authorization) and privileges (42501).
_DENIED_AWS_CODES: Final = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnrecognizedClientException", "InvalidClientTokenId"}
)


class ComponentHealth(BaseModel):
    status: ComponentStatus = Field(
        description="ok, timeout, unavailable (cannot connect), access_denied (credentials or "
        "permissions refused) or error (anything else); details are in the function's log"
    )
    latency_ms: float


class HealthReport(BaseModel):
    status: Literal["ok", "degraded"]
    components: dict[str, ComponentHealth]

    @property
    def healthy(self) -> bool:
        return self.status == "ok"


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, what caused it, and a driver error SQLAlchemy wraps (`orig`), each once."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        original = getattr(current, "orig", None)
        pending += [current.__cause__, current.__context__]
        if isinstance(original, BaseException):
            pending.append(original)


def _names(error: BaseException) -> list[str]:
    return [cls.__name__ for cls in type(error).__mro__]


def _denied(error: BaseException) -> bool:
    if any(word in name for name in _names(error) for word in _DENIED_WORDS):
        return True
    response = getattr(error, "response", None)  # botocore ClientError
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
        if code in _DENIED_AWS_CODES:
            return True
    first = error.args[0] if error.args else None  # pg8000: {"C": SQLSTATE, ...}
    if isinstance(first, dict):
        state = str(first.get("C", ""))
        return state.startswith("28") or state == "42501"
    return False


def classify(error: BaseException) -> ComponentStatus:
    """The stable code for why a check failed (the most specific cause in its chain wins:
    a timeout over refused credentials over a connection problem)."""
    chain = list(_chain(error))
    if any(word in name for e in chain for name in _names(e) for word in _TIMEOUT_WORDS):
        return "timeout"
    if any(_denied(e) for e in chain):
        return "access_denied"
    if any(word in name for e in chain for name in _names(e) for word in _UNAVAILABLE_WORDS):
        return "unavailable"
    return "error"


def probe(name: str, check: Check) -> ComponentHealth:
    started = time.perf_counter()
    try:
        check()
    except Exception as error:
        status = classify(error)
        # The detail is for operators only: it may name hosts, ports or SQL, never patient data
        # (the checks read nothing).
        logger.warning("health check failed: %s is %s (%s: %s)", name, status, type(error).__name__, error)
        return ComponentHealth(status=status, latency_ms=round((time.perf_counter() - started) * 1000, 1))
    return ComponentHealth(status="ok", latency_ms=round((time.perf_counter() - started) * 1000, 1))


def health_report(checks: Mapping[str, Check]) -> HealthReport:
    """Runs every check, one after another (each has its own short timeout)."""
    components = {name: probe(name, check) for name, check in checks.items()}
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
