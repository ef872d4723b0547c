"""Publishes outbox records to the EventBridge bus (10 entries per PutEvents call)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from typing import Any

from therapy_platform.platform.ports import OutboxRecord, PublishOutcome
from therapy_platform.platform.settings import EventPublisherSettings

PUT_EVENTS_MAX_ENTRIES = 10
# Entry errors that say the bus is busy or failing, not that the entry is wrong: no attempt counts.
TRANSIENT_ENTRY_ERRORS = frozenset(
    {"InternalFailure", "InternalException", "ThrottlingException", "MissingResult"}
)


class EventBridgePublisher:
    def __init__(self, client: Any, bus_name: str, source: str) -> None:
        self._client = client
        self._bus_name = bus_name
        self._source = source

    @classmethod
    def from_settings(cls, bus_name: str, source: str) -> EventBridgePublisher:
        import boto3
        from botocore.config import Config

        # Short timeouts and few retries: an unreachable bus must not hold an API request;
        # the unpublished rows stay in the outbox and the scheduled relay retries them.
        config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"})
        return cls(boto3.client("events", config=config), bus_name, source)

    def publish(self, records: Sequence[OutboxRecord]) -> list[PublishOutcome]:
        outcomes: list[PublishOutcome] = []
        for start in range(0, len(records), PUT_EVENTS_MAX_ENTRIES):
            chunk = records[start : start + PUT_EVENTS_MAX_ENTRIES]
            outcomes.extend(self._publish_chunk(chunk))
        return outcomes

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
