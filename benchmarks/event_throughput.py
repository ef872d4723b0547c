"""Events outbox -> EventBridge -> SQS -> Kafka through the deployed local stack (issue 15:
>= 500 events/s, 0 lost, 0 duplicated per eventId). Prints the figures and writes
benchmarks/results/event_throughput.json.

Needs the local stack up (`localcloud up`). What it does:
1. writes `--events` patients with their `patient.created` outbox rows straight into the stack's
   database (as the API would, minus the immediate publish), in one transaction, the rows held
   back until the measurement starts (else the scheduled relay, every minute, takes some early);
2. starts a Kafka reader on `patient-events` (from the beginning; old records are skipped by
   eventId) and waits until it has caught up;
3. releases the rows and invokes `PatientOutboxRelayFunction` (`--relays` invocations at once;
   they, and a scheduled run that happens to start, share the rows by FOR UPDATE SKIP LOCKED)
   and times outbox -> bus (the relay's answer) and outbox -> Kafka (the last of the events read
   back from the topic);
4. keeps reading `--grace` seconds after the last arrival, then counts per eventId: lost (never
   arrived) and duplicated (arrived more than once).

`--leg bridge` measures the second half alone: the seeded rows are marked published (the relay
leaves them) and their bus messages go straight into the bridge's SQS queue (SendMessageBatch,
10 a call, 8 calls at once, shaped as the bus rule delivers them); timed from the first send to
the last event on Kafka. Together with the relay's own rate (outbox -> bus) it shows which leg
limits the whole path.

The path measured is the whole deployed one: the relay function (claim, PutEvents), LocalStack's
EventBridge rule to the bridge's SQS queue, LocalStack's SQS -> Lambda poller, the bridge function
(decode, produce with acks=all), the broker. The same events also reach the matching read-model
queue (its rule takes `patient.*`), as they would in production: that consumer shares the cores.

    PYTHONPATH=layers/shared:infra:. .venv/bin/python benchmarks/event_throughput.py \
        [--events 5000] [--relays 1] [--leg all|bridge] [--grace 10] [--label text]

Calibration (this machine has 2 cores shared with other work): cores, the load average before
and after, and `--label` (say what else ran) are written with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for extra in ("infra", "layers/shared", "tests", "benchmarks"):
    sys.path.insert(0, str(ROOT / extra))

from calibration import pure_planning  # noqa: E402

from localcloud import kafka, postgres, stack  # noqa: E402
from localcloud.aws import client  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "event_throughput.json"
TOPIC = "patient-events"
TARGET_EVENTS_PER_S = 500.0


class TopicReader(threading.Thread):
    """Reads a topic from the beginning and records, for the eventIds it is told to watch, every
    arrival (monotonic time): a second arrival of an eventId is a duplicate."""

    def __init__(self, topic: str) -> None:
        super().__init__(daemon=True)
        self.topic = topic
        self.watched: set[str] = set()
        self.arrivals: dict[str, list[float]] = {}
        self.caught_up = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def watch(self, event_ids: set[str]) -> None:
        with self._lock:
            self.watched |= event_ids

    def arrived(self) -> int:
        with self._lock:
            return sum(1 for event_id in self.watched if event_id in self.arrivals)

    def run(self) -> None:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(
            bootstrap_servers=kafka.bootstrap_servers(), enable_auto_commit=False, max_poll_records=5000
        )
        try:
            partitions = consumer.partitions_for_topic(self.topic) or {0}
            assigned = [TopicPartition(self.topic, partition) for partition in partitions]
            consumer.assign(assigned)
            consumer.seek_to_beginning(*assigned)
            while not self._stop.is_set():
                polled = consumer.poll(timeout_ms=500)
                now = time.monotonic()
                if not polled:
                    self.caught_up.set()
                for batch in polled.values():
                    for record in batch:
                        if record.value is None:
                            continue
                        event_id = json.loads(record.value)["eventId"]
                        with self._lock:
                            if event_id in self.watched:
                                self.arrivals.setdefault(event_id, []).append(now)
        finally:
            consumer.close()

    def stop(self) -> None:
        self._stop.set()


def seed_outbox(count: int) -> set[str]:
    """`count` patients registered through the use case (patient row, audit, outbox), in one
    transaction, their outbox rows held back (`next_attempt_at` an hour ahead, so the scheduled
    relay leaves them until `release`): returns their eventIds."""
    from sqlalchemy import create_engine, text

    from therapy_platform.contracts.symptoms import Symptom
    from therapy_platform.patients.adapters.store import SqlPatientUnitOfWork
    from therapy_platform.patients.domain.patient import PatientDraft
    from therapy_platform.patients.use_cases import PatientService, register_patient
    from therapy_platform.platform.geography.postcodes import postcode_directory
    from therapy_platform.platform.unit_of_work import SharedTransaction

    engine = create_engine(postgres.admin_url())
    shared = SharedTransaction(engine)
    service = PatientService(
        unit_of_work=lambda: SqlPatientUnitOfWork(engine, shared=shared), geocoder=postcode_directory()
    )
    keys = []
    for index in range(count):
        draft = PatientDraft(
            first_name=f"Durchsatz{index}", last_name="Schäfer", postcode="50667", symptoms=[Symptom.BURNOUT]
        )
        keys.append(str(register_patient(service, draft, actor="benchmark").value.id))
    rows = (
        shared.connection()
        .execute(
            text(
                "UPDATE patient_service.outbox SET next_attempt_at = now() + interval '1 hour' "
                "WHERE aggregate_key = ANY(:keys) AND published_at IS NULL RETURNING event_id::text"
            ),
            {"keys": keys},
        )
        .all()
    )
    shared.commit()
    shared.close()
    engine.dispose()
    return {row[0] for row in rows}


def release(event_ids: set[str]) -> None:
    """Make the held-back rows due now (what a committed request's rows are)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(postgres.admin_url())
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE patient_service.outbox SET next_attempt_at = NULL WHERE event_id::text = ANY(:ids)"),
            {"ids": sorted(event_ids)},
        )
    engine.dispose()


def take_from_outbox(event_ids: set[str]) -> list[dict[str, Any]]:
    """The seeded rows' bus messages, the rows marked published so no relay sends them too."""
    from sqlalchemy import create_engine, text

    engine = create_engine(postgres.admin_url())
    with engine.begin() as connection:
        rows = connection.execute(
            text(
                "UPDATE patient_service.outbox SET published_at = now() "
                "WHERE event_id::text = ANY(:ids) AND published_at IS NULL "
                "RETURNING aggregate_key, envelope"
            ),
            {"ids": sorted(event_ids)},
        ).all()
    engine.dispose()
    return [{"key": row.aggregate_key, "envelope": row.envelope} for row in rows]


def send_to_bridge_queue(messages: list[dict[str, Any]]) -> None:
    """As the bus rule delivers them: the EventBridge event (detail = the bus message) as body."""
    from botocore.config import Config

    sqs = client("sqs", config=Config(max_pool_connections=8))
    url = sqs.get_queue_url(QueueName=f"{stack.queue_prefix()}kafka-bridge")["QueueUrl"]

    def body(message: dict[str, Any]) -> str:
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": message["envelope"]["eventType"],
            "source": "therapy-platform.patient-service",
            "time": message["envelope"]["timestamp"],
            "resources": [],
            "detail": message,
        }
        return json.dumps(event)

    def send(chunk: list[dict[str, Any]]) -> None:
        entries = [{"Id": str(index), "MessageBody": body(m)} for index, m in enumerate(chunk)]
        answer = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        if answer.get("Failed"):
            raise RuntimeError(f"SendMessageBatch refused {len(answer['Failed'])} messages")

    chunks = [messages[start : start + 10] for start in range(0, len(messages), 10)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, chunks))


def queue_depths() -> dict[str, int]:
    sqs = client("sqs")
    prefix = stack.queue_prefix()
    depths: dict[str, int] = {}
    for url in sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", []):
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        depths[url.rsplit("/", 1)[-1]] = int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )
    return depths


def run(events: int, relays: int, grace_s: float, timeout_s: float, leg: str) -> dict[str, Any]:
    seed_started = time.perf_counter()
    event_ids = seed_outbox(events)
    seed_s = time.perf_counter() - seed_started
    if len(event_ids) != events:
        raise RuntimeError(f"seeded {len(event_ids)} outbox rows, expected {events}")

    reader = TopicReader(TOPIC)
    reader.start()
    if not reader.caught_up.wait(300):
        raise RuntimeError("the Kafka reader did not catch up with the topic")
    reader.watch(event_ids)
    already = reader.arrived()
    if already:
        raise RuntimeError(f"{already} events were on Kafka before the relay ran")

    bus_messages = take_from_outbox(event_ids) if leg == "bridge" else []
    if leg != "bridge":
        release(event_ids)
    started = time.monotonic()
    relay_answers: list[Any] = []

    def relay() -> None:
        result = stack.invoke("PatientOutboxRelayFunction", {"batch_size": 500, "max_batches": 1000})
        relay_answers.append((time.monotonic() - started, result.error, result.payload))

    def to_bridge_queue() -> None:
        send_to_bridge_queue(bus_messages)
        relay_answers.append((time.monotonic() - started, None, {"published": len(bus_messages)}))

    if leg == "bridge":
        threads = [threading.Thread(target=to_bridge_queue)]
    else:
        threads = [threading.Thread(target=relay) for _ in range(relays)]
    for thread in threads:
        thread.start()
    progress: list[tuple[float, int]] = []
    deadline = started + timeout_s
    while time.monotonic() < deadline and reader.arrived() < len(event_ids):
        time.sleep(0.5)
        progress.append((round(time.monotonic() - started, 1), reader.arrived()))
    for thread in threads:
        thread.join()
    time.sleep(grace_s)  # late duplicates (a redelivered batch) still count
    reader.stop()
    reader.join(timeout=10)

    with reader._lock:
        mine = {event_id: reader.arrivals.get(event_id, []) for event_id in event_ids}
    arrived = [times for times in mine.values() if times]
    lost = len(event_ids) - len(arrived)
    duplicated = sum(1 for times in arrived if len(times) > 1)
    first_arrival = min(times[0] for times in arrived) - started if arrived else 0.0
    last_arrival = max(times[0] for times in arrived) - started if arrived else 0.0
    relayed = [answer for answer in relay_answers if not answer[1]]
    published = sum(int(answer[2].get("published", 0)) for answer in relayed)
    return {
        "leg": "bridge only (SQS -> bridge -> Kafka)" if leg == "bridge" else "all (outbox -> Kafka)",
        "events": len(event_ids),
        "arrived": len(arrived),
        "lost": lost,
        "duplicated": duplicated,
        "relays": relays,
        "relay_published": published,
        "relay_errors": [answer[2] for answer in relay_answers if answer[1]],
        "relay_to_bus_s": round(max((answer[0] for answer in relay_answers), default=0.0), 2),
        "first_on_kafka_s": round(first_arrival, 2),
        "outbox_to_kafka_s": round(last_arrival, 2),
        "events_per_s": round(len(arrived) / last_arrival, 1) if last_arrival else 0.0,
        "relay_events_per_s": round(published / max(answer[0] for answer in relay_answers), 1)
        if relay_answers and published
        else 0.0,
        "arrivals_over_time": progress[:: max(1, len(progress) // 20)],
        "seed_s": round(seed_s, 1),
        "queue_depths_after": queue_depths(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--relays", type=int, default=1, help="relay invocations at once")
    parser.add_argument("--leg", choices=("all", "bridge"), default="all")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds to wait for late duplicates")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--label", default="", help="what this run is (before/after, what else ran)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    machine_speed = pure_planning()  # before the run, on the same machine state
    load_before = os.getloadavg()
    figures = run(args.events, args.relays, args.grace, args.timeout, args.leg)
    load_after = os.getloadavg()
    met = figures["events_per_s"] >= TARGET_EVENTS_PER_S and not figures["lost"] and not figures["duplicated"]
    result: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "label": args.label,
        "target": {"events_per_s": TARGET_EVENTS_PER_S, "lost": 0, "duplicated": 0},
        "met": met,
        "figures": figures,
        "calibration": {
            **machine_speed,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": [round(value, 2) for value in load_before],
            "load_average_after": [round(value, 2) for value in load_after],
        },
        "run_id": str(uuid.uuid4()),
    }
    print(json.dumps(result, indent=2))
    if not args.no_write:
        existing: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        runs = [*existing.get("runs", []), result]
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({**existing, "latest": result, "runs": runs}, indent=2) + "\n")
        print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
