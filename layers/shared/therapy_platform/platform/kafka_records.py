"""The event Lambda's Kafka event source hands a function, read and written in one place.

AWS (MSK `aws:kafka`, self-managed `SelfManagedKafka`) delivers a batch as

    {"eventSource": "SelfManagedKafka", "bootstrapServers": "...",
     "records": {"<topic>-<partition>": [{"topic", "partition", "offset", "timestamp",
                 "timestampType", "key": base64, "value": base64,
                 "headers": [{"<name>": [byte, byte, ...]}]}]}}

`records_of` reads it into `KafkaRecord`s (pure: no broker client); `lambda_kafka_event` writes
that same shape, which the local stand-in for the event source (infra/localcloud/kafka_source.py)
uses, so the function code cannot tell the two apart.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

EVENT_SOURCES: Final = frozenset({"SelfManagedKafka", "aws:kafka"})


class KafkaEventError(ValueError):
    """The event is not in the shape Lambda's Kafka event source delivers."""


@dataclass(frozen=True)
class KafkaRecord:
    topic: str
    partition: int
    offset: int
    timestamp: int  # milliseconds since the epoch (the record's CreateTime)
    value: bytes | None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = field(default=())

    def header(self, name: str) -> bytes | None:
        """The last value of a header (case-insensitive name), None when absent."""
        found = None
        for key, value in self.headers:
            if key.lower() == name.lower():
                found = value
        return found

    @property
    def position(self) -> str:
        return f"{self.topic}-{self.partition}@{self.offset}"


def _decode(value: Any, what: str) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise KafkaEventError(f"{what} is not base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as error:
        raise KafkaEventError(f"{what} is not valid base64") from error


def _headers(raw: Any) -> tuple[tuple[str, bytes], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise KafkaEventError("headers is not a list")
    headers: list[tuple[str, bytes]] = []
    for entry in raw:
        if not isinstance(entry, Mapping):
            raise KafkaEventError("a header is not an object")
        for name, value in entry.items():
            if not isinstance(value, list) or not all(isinstance(b, int) and 0 <= b <= 255 for b in value):
                raise KafkaEventError(f"header {name!r} is not a list of bytes")
            headers.append((str(name), bytes(value)))
    return tuple(headers)


def records_of(event: Mapping[str, Any]) -> list[KafkaRecord]:
    """Every record of a Kafka event, in the order of its partitions and offsets."""
    if event.get("eventSource") not in EVENT_SOURCES:
        raise KafkaEventError(f"eventSource is not one of {sorted(EVENT_SOURCES)}")
    batches = event.get("records")
    if not isinstance(batches, Mapping):
        raise KafkaEventError("records is not an object of topic-partition lists")
    records: list[KafkaRecord] = []
    for batch_key, batch in batches.items():
        if not isinstance(batch, list):
            raise KafkaEventError(f"records[{batch_key!r}] is not a list")
        for raw in batch:
            try:
                record = KafkaRecord(
                    topic=str(raw["topic"]),
                    partition=int(raw["partition"]),
                    offset=int(raw["offset"]),
                    timestamp=int(raw.get("timestamp") or 0),
                    key=_decode(raw.get("key"), "key"),
                    value=_decode(raw.get("value"), "value"),
                    headers=_headers(raw.get("headers")),
                )
            except (KeyError, TypeError) as error:
                raise KafkaEventError(
                    f"a record of {batch_key!r} lacks topic, partition or offset"
                ) from error
            records.append(record)
    return records


def _encoded(value: bytes | None) -> str | None:
    return None if value is None else base64.b64encode(value).decode("ascii")


def lambda_kafka_event(
    records: Iterable[KafkaRecord], *, bootstrap_servers: str, event_source: str = "SelfManagedKafka"
) -> dict[str, Any]:
    """The event Lambda's Kafka event source would deliver for these records."""
    batches: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        batches.setdefault(f"{record.topic}-{record.partition}", []).append(
            {
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "timestamp": record.timestamp,
                "timestampType": "CREATE_TIME",
                "key": _encoded(record.key),
                "value": _encoded(record.value),
                "headers": [{name: list(value)} for name, value in record.headers],
            }
        )
    return {"eventSource": event_source, "bootstrapServers": bootstrap_servers, "records": batches}
