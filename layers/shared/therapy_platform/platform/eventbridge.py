"""Publishes outbox records to the EventBridge bus: 10 entries per PutEvents call (the API's
maximum), several calls at once (a bounded thread pool) when a relay batch holds more than ten.
A PutEvents call is a network round trip the bus answers per entry; calls for different chunks
are independent, so their latency overlaps. The pool is bounded (`PUT_EVENTS_PARALLEL_CALLS`) so a
relay never floods the bus (EventBridge throttles per account and Region) and the boto3 client's
connection pool is sized to match."""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

from therapy_platform.platform.ports import OutboxRecord, PublishOutcome
from therapy_platform.platform.settings import EventPublisherSettings

PUT_EVENTS_MAX_ENTRIES = 10
# PutEvents calls in flight at once for one relay batch (500 rows: 50 calls, 8 at a time).
PUT_EVENTS_PARALLEL_CALLS = 8
# Entry errors that say the bus is busy or failing, not that the entry is wrong: no attempt counts.
TRANSIENT_ENTRY_ERRORS = frozenset(
    {"InternalFailure", "InternalException", "ThrottlingException", "MissingResult"}
)


class EventBridgePublisher:
    def __init__(
        self, client: Any, bus_name: str, source: str, *, parallel_calls: int = PUT_EVENTS_PARALLEL_CALLS
    ) -> None:
        self._client = client
        self._bus_name = bus_name
        self._source = source
        self._parallel_calls = max(1, parallel_calls)

    @classmethod
    def from_settings(cls, bus_name: str, source: str) -> EventBridgePublisher:
        import boto3
        from botocore.config import Config

        # Short timeouts and few retries: an unreachable bus must not hold an API request;
        # the unpublished rows stay in the outbox and the scheduled relay retries them.
        # boto3 clients are thread-safe; one pooled connection per parallel call.
        config = Config(
            connect_timeout=2,
            read_timeout=5,
            retries={"max_attempts": 2, "mode": "standard"},
            max_pool_connections=PUT_EVENTS_PARALLEL_CALLS,
        )
        return cls(boto3.client("events", config=config), bus_name, source)

    def publish(self, records: Sequence[OutboxRecord]) -> list[PublishOutcome]:
        """One outcome per record, in the records' order (each chunk answers for its own)."""
        chunks = [
            records[start : start + PUT_EVENTS_MAX_ENTRIES]
            for start in range(0, len(records), PUT_EVENTS_MAX_ENTRIES)
        ]
        if len(chunks) <= 1 or self._parallel_calls == 1:
            return [outcome for chunk in chunks for outcome in self._publish_chunk(chunk)]
        with ThreadPoolExecutor(min(self._parallel_calls, len(chunks))) as pool:
            answers = list(pool.map(self._publish_chunk, chunks))
        return [outcome for answer in answers for outcome in answer]

    def _publish_chunk(self, chunk: Sequence[OutboxRecord]) -> list[PublishOutcome]:
        entries = [
            {
                "EventBusName": self._bus_name,
                "Source": self._source,
                "DetailType": record.message.envelope.event_type,
                "Detail": json.dumps(record.message.model_dump(mode="json", by_alias=True)),
            }
            for record in chunk
        ]
        try:
            response = self._client.put_events(Entries=entries)
        except Exception as error:
            # The call failed as a whole (unreachable, timeout, throttled): the bus's trouble.
            reason = f"{type(error).__name__}: {error}"
            return [PublishOutcome(record.id, reason, transient=True) for record in chunk]
        results = response.get("Entries", [])
        outcomes = []
        for index, record in enumerate(chunk):
            result = results[index] if index < len(results) else {"ErrorCode": "MissingResult"}
            if result.get("EventId"):
                outcomes.append(PublishOutcome(record.id))
            else:
                code = str(result.get("ErrorCode", "Unknown"))
                message = f"{code}: {result.get('ErrorMessage', '')}"
                outcomes.append(PublishOutcome(record.id, message, transient=code in TRANSIENT_ENTRY_ERRORS))
        return outcomes


@cache
def default_publisher() -> EventBridgePublisher:
    """The bus this function publishes to (EVENT_BUS_NAME, EVENT_SOURCE): one client per warm
    Lambda environment."""
    settings = EventPublisherSettings.from_env()
    return EventBridgePublisher.from_settings(settings.bus_name, settings.source)
