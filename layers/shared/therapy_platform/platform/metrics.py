"""Business and operational metrics: a small port (`MetricsSink`) that use cases and handlers
write to, and an in-memory sink for tests. The CloudWatch adapter (EMF over Powertools
`Metrics`) is `metrics_emf.py`; domain code never imports it nor Powertools.

Every metric lands in one namespace (POWERTOOLS_METRICS_NAMESPACE, set in the template's
Globals) with two low-cardinality dimensions: `service` (the service's schema name) and
`environment` (ENVIRONMENT). Ids, names or any personal data are never metric names or
dimensions. The catalogue: docs/metrics.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from therapy_platform.platform.events import EventEnvelope
from therapy_platform.platform.ports import AfterCommit

LOGGER = logging.getLogger(__name__)


class Unit(StrEnum):
    """The CloudWatch units the catalogue uses."""

    COUNT = "Count"
    MILLISECONDS = "Milliseconds"
    SECONDS = "Seconds"


class MetricsSink(Protocol):
    def add(self, name: str, unit: Unit, value: float) -> None: ...


class FlushedMetrics(MetricsSink, Protocol):
    """A sink a handler flushes at the end of each invocation (an empty flush does nothing)."""

    def flush(self) -> None: ...


@dataclass(frozen=True)
class Measurement:
    name: str
    unit: Unit
    value: float


@dataclass
class RecordingMetrics:
    """An in-memory sink: remembers every value in the order added (tests, and a default for
    code paths that are not measured)."""

    measurements: list[Measurement] = field(default_factory=list)
    flushes: int = 0

    def flush(self) -> None:
        self.flushes += 1

    def add(self, name: str, unit: Unit, value: float) -> None:
        self.measurements.append(Measurement(name, unit, value))

    def total(self, name: str) -> float:
        return sum(m.value for m in self.measurements if m.name == name)

    def values(self, name: str) -> list[float]:
        return [m.value for m in self.measurements if m.name == name]

    def names(self) -> set[str]:
        return {m.name for m in self.measurements}


def add_all(sink: MetricsSink, measurements: Iterable[Measurement]) -> None:
    for measurement in measurements:
        sink.add(measurement.name, measurement.unit, measurement.value)


def measured_after_commit(
    publish: AfterCommit | None,
    sink: MetricsSink,
    measure: Callable[[Sequence[EventEnvelope]], Iterable[Measurement]],
) -> AfterCommit:
    """An after-commit hook that first measures the events a transaction committed, then hands
    them to `publish`. Only what committed is counted, whichever use case wrote it; a
    measurement that fails is logged and never stops the publishing."""

    def after_commit(events: Sequence[EventEnvelope]) -> None:
        try:
            add_all(sink, measure(events))
        except Exception:
            LOGGER.warning("measuring committed events failed", exc_info=True)
        if publish is not None:
            publish(events)

    return after_commit
