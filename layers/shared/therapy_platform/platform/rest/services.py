"""What the data services' API handlers share: the adapters their routes use (and how they are
wired when deployed), and publishing an event right after the request committed it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from aws_lambda_powertools import Logger

from therapy_platform.platform.database import default_engine
from therapy_platform.platform.eventbridge import default_publisher
from therapy_platform.platform.events import EventEnvelope
from therapy_platform.platform.geography.locator import default_locator
from therapy_platform.platform.geography.ports import Geocoder
from therapy_platform.platform.outbox import SqlOutboxStore
from therapy_platform.platform.outbox_relay import relay_outbox
from therapy_platform.platform.ports import EventPublisher, OutboxStore
from therapy_platform.platform.unit_of_work import SqlUnitOfWork

UnitOfWork = TypeVar("UnitOfWork")
SqlUnitOfWorkT = TypeVar("SqlUnitOfWorkT", bound=SqlUnitOfWork)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ServiceDependencies(Generic[UnitOfWork]):
    """Adapters the routes use; unit tests swap in in-memory fakes (and a fixed clock)."""

    unit_of_work: Callable[[], UnitOfWork]
    outbox_store: Callable[[], OutboxStore]
    publisher: Callable[[], EventPublisher]
    geocoder: Callable[[], Geocoder]
    clock: Callable[[], datetime] = utc_now

    def publish_now(self, events: Iterable[EventEnvelope | None], logger: Logger) -> None:
        """Publish the events the request just committed without waiting for the scheduled relay.
        Best effort: if the bus is unreachable (or not configured) the rows stay in the outbox
        for the relay, and the request still succeeds."""
        event_ids = [event.event_id for event in events if event is not None]
        if not event_ids:
            return
        try:
            report = relay_outbox(self.outbox_store(), self.publisher(), event_ids=event_ids)
            if report.failed:
                logger.warning("event left in outbox for the relay", extra={"errors": report.errors})
        except Exception:
            logger.warning("immediate publish failed; the scheduled relay will retry", exc_info=True)


def default_dependencies(unit_of_work: type[SqlUnitOfWorkT]) -> ServiceDependencies[SqlUnitOfWorkT]:
    """A deployed service: its unit of work and outbox on the function's PostgreSQL engine (the
    schema named by the unit of work), the EventBridge bus, the real clock."""
    return ServiceDependencies(
        unit_of_work=lambda: unit_of_work(default_engine()),
        outbox_store=lambda: SqlOutboxStore(default_engine(), unit_of_work.schema),
        publisher=default_publisher,
        # Full address through Nominatim when NOMINATIM_ENABLED, else the postcode centroid from
        # the shipped table, else unknown (flagged for staff). No cache here: a service's role
        # cannot reach the geocoding schema (docs/geocoding.md).
        geocoder=default_locator,
    )
