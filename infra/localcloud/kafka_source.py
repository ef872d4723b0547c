"""Local stand-in for Lambda's Kafka event source (LocalStack's free edition has none).

In AWS, `RegistrationIntakeFunction` is fed by an event source mapping (template.yaml:
`RegistrationIntakeMskMapping` / `RegistrationIntakeSelfManagedMapping`). Locally this process does
what that mapping does, for the one topic `patient-registrations`:

- polls the topic in its own consumer group (`registration-intake`), auto-commit off;
- hands each polled batch to the deployed function (LocalStack Lambda `Invoke`, the executor
  plugin runs it) in exactly the event shape Lambda uses (`eventSource: SelfManagedKafka`,
  `records: {"<topic>-<partition>": [...]}` with base64 key/value and byte-list headers; built by
  `therapy_platform.platform.kafka_records.lambda_kafka_event`, the same module that reads it);
- commits the offsets after the function succeeded, and only then; on a function error it seeks
  back to the batch's first offsets and offers the same records again after a backoff (as Lambda
  retries a failed Kafka batch), so nothing is skipped.

It is a development stand-in, not a re-implementation of every mapping setting (no batching
window, no retry limit, one topic). `localcloud up` starts it after the deploy (`.state/pids`,
`.state/logs/kafka-source.log`), `localcloud down` stops it by its PID.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from localcloud.paths import service_dir
from localcloud.process import is_alive, read_pid, start_daemon, stop_daemon
from therapy_platform.platform.kafka_records import KafkaRecord, lambda_kafka_event

SERVICE: Final = "kafka-source"
FUNCTION: Final = "RegistrationIntakeFunction"
TOPIC: Final = "patient-registrations"
GROUP: Final = "registration-intake"
MAX_BATCH: Final = 50
LOGGER = logging.getLogger("localcloud.kafka_source")

Deliver = Callable[[dict[str, Any]], None]
"""Hands one Kafka event to the function; raises when the function failed."""


class DeliveryFailedError(RuntimeError):
    pass


def _record(message: Any) -> KafkaRecord:
    return KafkaRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp=int(message.timestamp or 0),
        key=message.key,
        value=message.value,
        headers=tuple((name, value or b"") for name, value in (message.headers or [])),
    )


@dataclass
class KafkaEventSource:
    """One consumer and the function it feeds. `consumer` is a kafka-python KafkaConsumer
    subscribed to the topic with auto-commit off (tests pass their own)."""

    consumer: Any
    deliver: Deliver
    bootstrap_servers: str
    max_records: int = MAX_BATCH

    def poll_once(self, timeout_ms: int = 1000) -> int:
        """Polls one batch; delivers it; commits after success. Returns how many records were
        delivered (0: nothing polled). A failed delivery seeks back and raises."""
        from kafka.structs import OffsetAndMetadata, TopicPartition

        polled: Mapping[Any, list[Any]] = self.consumer.poll(
            timeout_ms=timeout_ms, max_records=self.max_records
        )
        records = [_record(message) for messages in polled.values() for message in messages]
        if not records:
            return 0
        event = lambda_kafka_event(records, bootstrap_servers=self.bootstrap_servers)
        try:
            self.deliver(event)
        except Exception:
            for partition, messages in polled.items():
                self.consumer.seek(partition, messages[0].offset)
            raise
        offsets = {
            TopicPartition(partition.topic, partition.partition): OffsetAndMetadata(
                messages[-1].offset + 1, "", -1
            )
            for partition, messages in polled.items()
        }
        self.consumer.commit(offsets=offsets)
        return len(records)

    def run(self, *, should_stop: Callable[[], bool], heartbeat: Callable[[], None] = lambda: None) -> None:
        backoff = 1.0
        while not should_stop():
            heartbeat()
            try:
                delivered = self.poll_once()
                backoff = 1.0
                if delivered:
                    LOGGER.info("delivered %d record(s) and committed their offsets", delivered)
            except Exception as error:
                LOGGER.warning("delivery failed (%s); the batch is offered again in %.0f s", error, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 60.0)


def consumer_for(bootstrap_servers: str, *, topic: str = TOPIC, group: str = GROUP) -> Any:
    from kafka import KafkaConsumer

    from localcloud.kafka import CONSUMER_DEFAULTS

    return KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",  # as the mapping's StartingPosition TRIM_HORIZON
        client_id="localcloud-kafka-source",
        **CONSUMER_DEFAULTS,
    )


def invoke_deployed(function: str = FUNCTION) -> Deliver:
    """Delivers through LocalStack's Lambda Invoke to the deployed function."""
    from localcloud import stack

    def deliver(event: dict[str, Any]) -> None:
        result = stack.invoke(function, event, timeout_s=120)
        if result.error:
            raise DeliveryFailedError(f"{result.function_name} failed: {result.error}")

    return deliver


# ---------------------------------------------------------------- the daemon


def heartbeat_file() -> Path:
    return service_dir(SERVICE) / "heartbeat"


def is_healthy() -> bool:
    pid = read_pid(SERVICE)
    if pid is None or not is_alive(pid):
        return False
    try:
        return time.time() - heartbeat_file().stat().st_mtime < 180
    except FileNotFoundError:
        return False


def start(timeout_s: float = 60.0) -> None:
    """Start the stand-in as a separate process (after the stack is deployed). A no-op when running."""
    import localcloud
    from localcloud import kafka

    infra_dir = Path(localcloud.__file__).resolve().parents[1]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(infra_dir), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    argv = [sys.executable, "-m", "localcloud.kafka_source", "--bootstrap-servers", kafka.bootstrap_servers()]
    start_daemon(SERVICE, argv, env=env, cwd=service_dir(SERVICE), healthy=is_healthy, timeout_s=timeout_s)


def stop() -> bool:
    return stop_daemon(SERVICE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="localcloud.kafka_source", description=__doc__)
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--function", default=FUNCTION)
    parser.add_argument("--topic", default=TOPIC)
    parser.add_argument("--group", default=GROUP)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stopping = False

    def stop_now(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop_now)
    signal.signal(signal.SIGINT, stop_now)
    beat = heartbeat_file()
    beat.parent.mkdir(parents=True, exist_ok=True)
    beat.touch()
    source = KafkaEventSource(
        consumer_for(args.bootstrap_servers, topic=args.topic, group=args.group),
        invoke_deployed(args.function),
        args.bootstrap_servers,
    )
    LOGGER.info("feeding %s from topic %s (group %s)", args.function, args.topic, args.group)
    source.run(should_stop=lambda: stopping, heartbeat=beat.touch)
    source.consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
