"""Kafka producer adapter (kafka-python; MSK-compatible)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from therapy_platform.platform.settings import KafkaSettings

LOGGER = logging.getLogger(__name__)


class KafkaEventSink:
    """Sends keyed messages and reports success per message.

    The producer is created lazily and kept across warm invocations; after a failure it is
    dropped so that the next invocation reconnects (the broker may have come back).
    """

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._producer: Any = None

    def _get_producer(self) -> Any:
        if self._producer is None:
            from kafka import KafkaProducer

            timeout = self._settings.request_timeout_ms
            self._producer = KafkaProducer(
                bootstrap_servers=self._settings.bootstrap_servers.split(","),
                security_protocol=self._settings.security_protocol,
                acks="all",
                retries=2,
                linger_ms=5,
                request_timeout_ms=timeout,
                max_block_ms=timeout,
                # The producer bootstraps in its constructor (30 s by default): an unreachable
                # broker must fail within the timeout too, or the bridge's invocation (and
                # /health) runs out of time instead of backing off (or reporting it).
                bootstrap_timeout_ms=timeout,
                reconnect_backoff_max_ms=1000,
            )
        return self._producer

    def reset(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=1)
            except Exception:
                LOGGER.debug("closing the Kafka producer failed", exc_info=True)
            self._producer = None

    def send_all(self, messages: Sequence[tuple[str, str, bytes]]) -> list[str | None]:
        """messages: (topic, key, value). Returns None per delivered message, else the error."""
        if not messages:
            return []
        try:
            producer = self._get_producer()
            futures = [producer.send(topic, key=key.encode(), value=value) for topic, key, value in messages]
            producer.flush(timeout=self._settings.request_timeout_ms / 1000)
        except Exception as error:
            self.reset()
            return [f"{type(error).__name__}: {error}"] * len(messages)
        errors: list[str | None] = []
        for future in futures:
            if not future.is_done:
                errors.append("KafkaTimeoutError: not acknowledged in time")
            elif future.failed():
                errors.append(f"{type(future.exception).__name__}: {future.exception}")
            else:
                errors.append(None)
        if any(errors):
            self.reset()
        return errors

    def check(self) -> None:
        """Raises if no broker answers a metadata request (used by /health)."""
        producer = self._get_producer()
        try:
            producer.partitions_for("patient-events")
        except Exception:
            self.reset()
            raise
