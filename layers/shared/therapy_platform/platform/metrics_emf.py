"""The CloudWatch adapter of `MetricsSink`: Powertools `Metrics` in the embedded metric format
(one JSON line on stdout per flush, which CloudWatch Logs turns into metrics). Handlers build one
at import and flush it after each invocation (`flushed`); docs/metrics.md lists what is emitted."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, Final, TypeVar

from aws_lambda_powertools import Metrics

from therapy_platform.platform.metrics import FlushedMetrics, Unit

DEFAULT_NAMESPACE: Final = "TherapyPlatform"


class EmfMetrics:
    """Powertools `Metrics` (CloudWatch EMF: one JSON line on stdout per flush, which CloudWatch
    turns into metrics) with the platform's dimensions. `flush` prints only when something was
    added, so a handler that measured nothing neither warns nor prints."""

    def __init__(self, service: str, *, namespace: str | None = None, environment: str | None = None) -> None:
        self._metrics = Metrics(
            service=service,
            namespace=namespace or os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE,
        )
        # Default dimensions survive each flush (plain dimensions are cleared by it). Powertools
        # keeps them per process, shared by every instance: set once, not again.
        environment = environment or os.environ.get("ENVIRONMENT", "local")
        if self._metrics.default_dimensions.get("environment") != environment:
            self._metrics.set_default_dimensions(environment=environment)

    def add(self, name: str, unit: Unit, value: float) -> None:
        self._metrics.add_metric(name=name, unit=unit.value, value=value)

    def flush(self) -> None:
        # Powertools itself flushes a name's 100th value; what is left may be nothing.
        if self._metrics.metric_set:
            self._metrics.flush_metrics()


Handler = TypeVar("Handler", bound=Callable[..., Any])


def flushed(metrics: FlushedMetrics) -> Callable[[Handler], Handler]:
    """Decorates a Lambda handler: whatever it measured is flushed when it returns or raises."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return handler(*args, **kwargs)
            finally:
                metrics.flush()

        return run  # type: ignore[return-value]

    return decorate
