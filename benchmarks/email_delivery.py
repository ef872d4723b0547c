"""Email delivery figures: N queued emails (default 10,000) delivered by the real sender function
(functions/email_sender/app.py) to the local SMTP server, twice: once undisturbed, once with the
SMTP server stopped for 30 s in the middle. Counts every message in the Maildir: duplicates and
losses must both be zero. Prints the figures and writes benchmarks/results/email_delivery.json.

    .venv/bin/python benchmarks/email_delivery.py [--emails 10000] [--workers 5] [--outage 30] [--label after]

Uses the local cloud's PostgreSQL (LOCALCLOUD_STATE_DIR, PG_PORT; started if it is not running,
stopped if started here) with a database of its own (`--database`, default `email_bench`), and
an SMTP server of its own: a private instance of localcloud.smtp_server on a free port with its
own Maildir under /tmp, which the outage variant stops and starts (the shared local SMTP server
is never stopped; `--shared-smtp` uses that one instead, without the outage variant).
The queue is an in-process stand-in with SQS standard-queue
semantics, shared by the worker processes: at-least-once delivery, visibility timeout, per-
message visibility changes (the sender's backoff), receive counts, a dead-letter limit, and
a share of messages deliberately delivered twice at the same time (`--duplicate-rate`), as SQS
may do. Each worker process is one warm Lambda environment calling the handler with batches
of up to 10 messages and deleting the messages it did not report as failures.
"""

from __future__ import annotations

import argparse
import heapq
import json
import multiprocessing
import os
import platform
import random
import re
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from multiprocessing.managers import BaseManager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for extra in ("infra", "infra/migrations", "layers/shared", "tests", "tests/unit", "benchmarks"):
    sys.path.insert(0, str(ROOT / extra))

from calibration import pure_planning  # noqa: E402
from sqlalchemy import create_engine, event, text  # noqa: E402

from localcloud import postgres, smtp  # noqa: E402
from localcloud.process import read_pid  # noqa: E402
from runner import upgrade  # noqa: E402
from therapy_platform.communication.adapters.mail import SmtpTransport  # noqa: E402
from therapy_platform.communication.adapters.unit_of_work import SqlCommunicationUnitOfWork  # noqa: E402
from therapy_platform.communication.domain.email_content import (  # noqa: E402
    BundleInquiry,
    BundlePatient,
    DistanceBand,
    LegalNotice,
    Person,
)
from therapy_platform.communication.domain.emails import Addressing, DeliveryPolicy, RecipientType  # noqa: E402
from therapy_platform.communication.rendering.renderer import EmailRenderer  # noqa: E402
from therapy_platform.communication.use_cases.emails import SenderContext, compose, queue_email  # noqa: E402
from therapy_platform.contracts.symptoms import Symptom  # noqa: E402
from therapy_platform.contracts.therapy import Gender  # noqa: E402
from therapy_platform.platform.database import make_engine  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "email_delivery.json"
DATABASE = "email_bench"


class PrivateSmtp:
    """A private SMTP sink (localcloud.smtp_server) on a free port, with its own Maildir."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="email-bench-smtp-"))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self._port = int(probe.getsockname()[1])
        self._process: subprocess.Popen[bytes] | None = None

    def port(self) -> int:
        return self._port

    def maildir_path(self) -> Path:
        return self.root / "maildir"

    def is_healthy(self, timeout_s: float = 2.0) -> bool:
        try:
            with smtplib.SMTP("127.0.0.1", self._port, timeout=timeout_s) as client:
                return client.noop()[0] == 250
        except (OSError, smtplib.SMTPException):
            return False

    def start(self, timeout_s: float = 30.0) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "infra"), env.get("PYTHONPATH", "")) if p)
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "localcloud.smtp_server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self._port),
                "--maildir",
                str(self.maildir_path()),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while not self.is_healthy(0.5):
            if time.monotonic() > deadline or self._process.poll() is not None:
                raise RuntimeError("the private SMTP server did not start")
            time.sleep(0.1)

    def stop(self) -> bool:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return False
        process.terminate()
        process.wait(timeout=10)
        return True

    def clear(self) -> None:
        for folder in ("new", "cur"):  # the folders stay: the running server writes into them
            for path in (self.maildir_path() / folder).glob("*"):
                path.unlink()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


# The SMTP server the run talks to: `smtp` (the shared local one) or a PrivateSmtp.
SMTP_SERVER: Any = smtp
QUEUE_ARN = "arn:aws:sqs:eu-central-1:000000000000:therapy-platform-bench-emails"
VISIBILITY_TIMEOUT = 60
MAX_RECEIVES = 20
LEGAL = LegalNotice(
    organisation="Therapieplatz-Vermittlung Benchmark e. V.",
    street="Müllerstraße 12",
    postcode_city="10115 Berlin",
    email="team@vermittlung.test",
)
ADDRESSING = Addressing(
    sender="Therapieplatz-Vermittlung <team@vermittlung.test>",
    reply_domain="antwort.vermittlung.test",
    staff_alert_recipient="alarm@vermittlung.test",
)
# Retries fit a 30 s outage well inside the 8 attempts: 2, 4, 8, 10, 10 ... seconds.
POLICY = DeliveryPolicy(lease_seconds=30, retry_base_seconds=2, retry_max_seconds=10)


# --------------------------------------------------------------------------- the queue


@dataclass
class _Message:
    message_id: str
    body: str
    visible_at: float = 0.0
    receive_count: int = 0
    receipt: str = ""


@dataclass
class SimulatedSqs:
    """SQS standard-queue semantics in one process, shared with the workers by a manager."""

    duplicate_rate: float = 0.0
    messages: dict[str, _Message] = field(default_factory=dict)
    by_receipt: dict[str, str] = field(default_factory=dict)
    heap: list[tuple[float, str]] = field(default_factory=list)
    dead_letters: int = 0
    duplicates_delivered: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    rng: random.Random = field(default_factory=lambda: random.Random(42))

    def send(self, bodies: list[str]) -> None:
        with self.lock:
            for body in bodies:
                message = _Message(str(uuid.uuid4()), body)
                self.messages[message.message_id] = message
                heapq.heappush(self.heap, (0.0, message.message_id))

    def receive(self, limit: int) -> list[dict[str, Any]]:
        now, records = time.monotonic(), list[dict[str, Any]]()
        with self.lock:
            while self.heap and len(records) < limit and self.heap[0][0] <= now:
                visible_at, message_id = heapq.heappop(self.heap)
                message = self.messages.get(message_id)
                if message is None or message.visible_at != visible_at:
                    continue  # deleted, or its visibility changed since this entry
                message.receive_count += 1
                if message.receive_count > MAX_RECEIVES:
                    self.dead_letters += 1
                    del self.messages[message_id]
                    continue
                message.receipt = str(uuid.uuid4())
                self.by_receipt[message.receipt] = message_id
                if self.rng.random() < self.duplicate_rate:
                    # Delivered now and again at once, to whoever asks next (as SQS may do).
                    self.duplicates_delivered += 1
                    message.visible_at = now
                else:
                    message.visible_at = now + VISIBILITY_TIMEOUT
                heapq.heappush(self.heap, (message.visible_at, message_id))
                records.append(_record(message))
        return records

    def delete(self, receipt: str) -> None:
        with self.lock:
            message_id = self.by_receipt.pop(receipt, None)
            if message_id is not None:
                self.messages.pop(message_id, None)

    def change_visibility(self, receipt: str, seconds: int) -> None:
        with self.lock:
            message = self.messages.get(self.by_receipt.get(receipt, ""))
            if message is not None and message.receipt == receipt:
                message.visible_at = time.monotonic() + seconds
                heapq.heappush(self.heap, (message.visible_at, message.message_id))

    def size(self) -> int:
        with self.lock:
            return len(self.messages)

    def stats(self) -> dict[str, int]:
        with self.lock:
            return {"dead_letters": self.dead_letters, "duplicates_delivered": self.duplicates_delivered}


def _record(message: _Message) -> dict[str, Any]:
    return {
        "messageId": message.message_id,
        "receiptHandle": message.receipt,
        "body": message.body,
        "attributes": {
            "ApproximateReceiveCount": str(message.receive_count),
            "SentTimestamp": "1795330800000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1795330800001",
        },
        "messageAttributes": {},
        "md5OfBody": "00000000000000000000000000000000",
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": "eu-central-1",
    }


class QueueManager(BaseManager):
    pass


class SimulatedQueuePort:
    """The EmailQueue port over the simulated SQS (what SqsEmailQueue is in AWS)."""

    def __init__(self, sqs: Any) -> None:
        self._sqs = sqs

    def enqueue(self, email_ids: Any) -> None:
        self._sqs.send([json.dumps({"email_id": str(email_id)}) for email_id in email_ids])


# --------------------------------------------------------------------------- workers


def _disable_nagle(engine: Any) -> None:
    """pg8000 leaves Nagle's algorithm on: a statement with a large parameter (an email body)
    then waits for the peer's delayed ACK (~40 ms on Linux). `--tcp-nodelay` shows the effect."""

    @event.listens_for(engine, "connect")
    def _nodelay(dbapi_connection: Any, record: Any) -> None:
        sock = getattr(dbapi_connection, "_usock", None)
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _context(database_url: str, sqs: Any, *, tcp_nodelay: bool = False) -> SenderContext:
    engine = make_engine(database_url, pool_size=2)
    if tcp_nodelay:
        _disable_nagle(engine)
    return SenderContext(
        unit_of_work=lambda: SqlCommunicationUnitOfWork(engine),
        transport=SmtpTransport("127.0.0.1", SMTP_SERVER.port(), timeout_seconds=10, starttls=False),
        queue=SimulatedQueuePort(sqs),
        renderer=EmailRenderer(LEGAL),
        addressing=ADDRESSING,
        policy=POLICY,
        clock=lambda: datetime.now(UTC),
    )


class SimulatedQueueControl:
    """What the consumer runtime asks of SQS (per-message backoff), on the simulated queue."""

    def __init__(self, sqs: Any) -> None:
        self._sqs = sqs

    def delay_retry(self, queue_arn: str, receipt_handle: str, delay_seconds: int) -> None:
        self._sqs.change_visibility(receipt_handle, delay_seconds)

    def send_to_dead_letter(self, dead_letter_queue_url: str, body: str, reason: str) -> None:
        raise AssertionError("no dead-letter queue is configured in the benchmark")


def worker(
    address: tuple[str, int],
    authkey: bytes,
    database_url: str,
    stop_when_idle_s: float,
    tcp_nodelay: bool,
    smtp_port: int,
) -> None:
    """One warm Lambda environment: receive a batch, call the handler, delete what succeeded."""
    import logging

    global SMTP_SERVER
    SMTP_SERVER = type("_Port", (), {"port": staticmethod(lambda: smtp_port)})()

    from support import FakeLambdaContext, load_function

    logging.disable(logging.INFO)  # the handler logs a line per email; figures only here
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    # The handler builds its deployed service at import, from the variables the function gets;
    # the worker then puts its own context (simulated queue, this database) in its place.
    for name, value in {
        "MAIL_FROM": ADDRESSING.sender,
        "REPLY_DOMAIN": ADDRESSING.reply_domain,
        "EMAIL_QUEUE_URL": "http://127.0.0.1:1/000000000000/emails",
        "LEGAL_ORGANISATION": LEGAL.organisation,
        "LEGAL_STREET": LEGAL.street,
        "LEGAL_POSTCODE_CITY": LEGAL.postcode_city,
        "LEGAL_EMAIL": LEGAL.email,
    }.items():
        os.environ.setdefault(name, value)
    QueueManager.register("sqs")
    manager = QueueManager(address=address, authkey=authkey)
    manager.connect()
    sqs = manager.sqs()  # type: ignore[attr-defined]
    app = load_function("email_sender")
    context = _context(database_url, sqs, tcp_nodelay=tcp_nodelay)
    app.service = context  # type: ignore[attr-defined]
    app.consumer.queues = lambda: SimulatedQueueControl(sqs)
    idle_since = time.monotonic()
    while True:
        records = sqs.receive(10)
        if not records:
            if sqs.size() == 0 and time.monotonic() - idle_since > stop_when_idle_s:
                return
            time.sleep(0.05)
            continue
        idle_since = time.monotonic()
        response = app.lambda_handler({"Records": records}, FakeLambdaContext())
        failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        for record in records:
            if record["messageId"] not in failed:
                sqs.delete(record["receiptHandle"])


# --------------------------------------------------------------------------- one run


_HEADER = re.compile(rb"^X-Email-Id: ([0-9a-f-]{36})", re.MULTILINE)


def maildir_counts() -> Counter[str]:
    counts: Counter[str] = Counter()
    root = SMTP_SERVER.maildir_path()
    for folder in ("new", "cur"):
        for path in (root / folder).glob("*"):
            match = _HEADER.search(path.read_bytes()[:4096])
            if match:
                counts[match[1].decode()] += 1
    return counts


def _fresh_database() -> str:
    server = create_engine(postgres.admin_url("postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        connection.execute(text(f"CREATE DATABASE {DATABASE}"))
    server.dispose()
    url = postgres.admin_url(DATABASE)
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def _sent_count(engine: Any) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                text("SELECT count(*) FROM communication_service.emails WHERE status = 'sent'")
            ).scalar_one()
        )


def run(
    emails: int, workers: int, outage_s: float, duplicate_rate: float, tcp_nodelay: bool
) -> dict[str, Any]:
    database_url = _fresh_database()
    SMTP_SERVER.clear()
    sqs = SimulatedSqs(duplicate_rate=duplicate_rate)
    QueueManager.register("sqs", callable=lambda: sqs)
    manager = QueueManager(address=("127.0.0.1", 0), authkey=b"email-bench")
    server = manager.get_server()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = server.address

    # Queue the emails the way the platform does (store + email.queued event + queue message).
    setup = _context(database_url, sqs, tcp_nodelay=tcp_nodelay)
    setup.queue = SimulatedQueuePort(sqs)
    content = BundleInquiry(
        bundle_reference="B1",
        therapist=Person(gender=Gender.FEMALE, title="Dr.", first_name="Anna", last_name="Schäfer"),
        patients=[
            BundlePatient(
                reference=f"B1-{position}",
                age=30 + position,
                symptoms=[Symptom.DEPRESSION, Symptom.SLEEP],
                insurer="AOK Nordost",
                distance_band=DistanceBand.UP_TO_10,
            )
            for position in range(1, 5)
        ],
        sent_on=date(2026, 11, 23),
    )
    template = compose(
        setup.renderer, content, recipient="x@example.org", recipient_type=RecipientType.THERAPIST
    )
    started = time.perf_counter()
    ids = []
    for index in range(emails):
        outgoing = template.model_copy(
            update={"recipient": f"praxis{index}@example.org", "bundle_reference": f"B{index + 1}"}
        )
        ids.append(
            queue_email(
                setup.unit_of_work, setup.queue, outgoing, ADDRESSING, now=setup.clock()
            ).value.email.id
        )
    queue_s = time.perf_counter() - started

    engine = create_engine(database_url)
    timeline: list[tuple[float, int]] = []
    outage: dict[str, float] = {}
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    processes = [
        multiprocessing.Process(
            target=worker,
            args=(address, b"email-bench", database_url, 3.0, tcp_nodelay, SMTP_SERVER.port()),
        )
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    while any(process.is_alive() for process in processes):
        sent = _sent_count(engine)
        elapsed = time.perf_counter() - started
        timeline.append((round(elapsed, 1), sent))
        if outage_s and "stopped_at_s" not in outage and sent >= emails * 0.3:
            SMTP_SERVER.stop()
            outage["stopped_at_s"] = elapsed
            outage["sent_when_stopped"] = sent
        if (
            "stopped_at_s" in outage
            and "restarted_at_s" not in outage
            and elapsed - outage["stopped_at_s"] >= outage_s
        ):
            SMTP_SERVER.start()
            outage["restarted_at_s"] = time.perf_counter() - started
            outage["sent_while_stopped"] = sent - outage["sent_when_stopped"]
        time.sleep(0.5)
    total_s = time.perf_counter() - started
    for process in processes:
        process.join()

    counts = maildir_counts()
    wanted = {str(email_id) for email_id in ids}
    with engine.connect() as connection:
        statuses: dict[str, int] = dict(
            connection.execute(
                text("SELECT status, count(*) FROM communication_service.emails GROUP BY status")
            ).all()
        )
        attempts = connection.execute(
            text(
                "SELECT coalesce(sum(attempts), 0), coalesce(sum(interrupted_attempts), 0), max(attempts)"
                " FROM communication_service.emails"
            )
        ).one()
        last_sent_at = connection.execute(
            text("SELECT max(sent_at) FROM communication_service.emails")
        ).scalar_one()
        events: dict[str, int] = dict(
            connection.execute(
                text("SELECT event_type, count(*) FROM communication_service.outbox GROUP BY event_type")
            ).all()
        )
    engine.dispose()
    until_last_s = (last_sent_at - started_at).total_seconds() if last_sent_at else total_s
    manager_stats = sqs.stats()
    result: dict[str, Any] = {
        "emails": emails,
        "workers": workers,
        "queueing_s": round(queue_s, 2),
        "queued_per_s": round(emails / queue_s, 1),
        # Until the workers stopped: includes their idle wait before they stop (3 s).
        "delivery_s": round(total_s, 2),
        "delivered_per_s": round(emails / total_s, 1),
        # Until the last email was recorded as sent (the figure the target is about).
        "until_last_sent_s": round(until_last_s, 2),
        "sent_per_s": round(emails / until_last_s, 1),
        "in_maildir": sum(counts[email_id] for email_id in wanted),
        "duplicates": sum(
            count - 1 for email_id, count in counts.items() if email_id in wanted and count > 1
        ),
        "lost": len(wanted - set(counts)),
        "statuses": {str(status): int(count) for status, count in statuses.items()},
        "attempts_total": int(attempts[0]),
        "interrupted_attempts": int(attempts[1]),
        "max_attempts_of_one_email": int(attempts[2] or 0),
        "events": {str(kind): int(count) for kind, count in events.items()},
        "queue": {**manager_stats, "left_in_queue": sqs.size()},
        "staff_alerts": sum(count for email_id, count in counts.items() if email_id not in wanted),
    }
    if outage:
        restarted = outage.get("restarted_at_s", total_s)
        after = [sent for elapsed, sent in timeline if elapsed >= restarted]
        result["outage"] = {
            "stopped_for_s": outage_s,
            "stopped_at_s": round(outage["stopped_at_s"], 1),
            "sent_when_stopped": int(outage["sent_when_stopped"]),
            "sent_while_stopped": int(outage.get("sent_while_stopped", 0)),
            "drained_s_after_restart": round(total_s - restarted, 1),
            "delivered_per_s_after_restart": round(
                (emails - (after[0] if after else 0)) / max(0.1, total_s - restarted), 1
            ),
        }
    return result


def main() -> int:
    global DATABASE, SMTP_SERVER
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--emails", type=int, default=10_000)
    parser.add_argument(
        "--workers", type=int, default=5, help="warm sender environments (template: MaximumConcurrency 5)"
    )
    parser.add_argument(
        "--outage", type=float, default=30.0, help="seconds the SMTP server is stopped (0: skip)"
    )
    parser.add_argument("--duplicate-rate", type=float, default=0.01)
    parser.add_argument("--tcp-nodelay", action="store_true", help="turn Nagle off on the database sockets")
    parser.add_argument("--database", default=DATABASE, help="database of this benchmark (dropped, created)")
    parser.add_argument(
        "--label",
        default="after",
        help="key of this run in the results file (other keys, e.g. 'before', are kept)",
    )
    parser.add_argument(
        "--shared-smtp", action="store_true", help="use the shared local SMTP server (no outage variant)"
    )
    args = parser.parse_args()
    machine_speed = pure_planning()  # before the runs, on the same machine state
    load_at_start = [round(value, 2) for value in os.getloadavg()]
    DATABASE = args.database
    private = None if args.shared_smtp else PrivateSmtp()
    if private is None:
        args.outage = 0  # never stop the shared SMTP server
    else:
        private.start()
        SMTP_SERVER = private

    started_here = []
    for module in (postgres,) if private else (postgres, smtp):
        if not (
            read_pid(getattr(module, "SERVICE", None) or module.NAME) is not None and module.is_healthy()
        ):
            module.start()
            started_here.append(module)
    try:
        runs = {"steady": run(args.emails, args.workers, 0, args.duplicate_rate, args.tcp_nodelay)}
        print(json.dumps(runs["steady"], indent=2))
        if args.outage:
            runs["smtp_outage"] = run(
                args.emails, args.workers, args.outage, args.duplicate_rate, args.tcp_nodelay
            )
            print(json.dumps(runs["smtp_outage"], indent=2))
    finally:
        if private is not None:
            private.remove()
        for module in started_here:
            module.stop()
    report = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1_5_15_at_start": load_at_start,
            "load_average_1_5_15_at_end": [round(value, 2) for value in os.getloadavg()],
        },
        "calibration": machine_speed,
        "workers": args.workers,
        "emails": args.emails,
        "settings": {
            "visibility_timeout_s": VISIBILITY_TIMEOUT,
            "max_receives": MAX_RECEIVES,
            "policy": POLICY.model_dump(),
            "duplicate_rate": args.duplicate_rate,
            "tcp_nodelay": args.tcp_nodelay,
        },
        **runs,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    results[args.label] = report
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    ok = all(run_["duplicates"] == 0 and run_["lost"] == 0 for run_ in runs.values())
    print(f"{'OK' if ok else 'FAILED'}: results in {RESULTS.relative_to(ROOT)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
