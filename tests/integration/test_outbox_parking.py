"""The outbox relay against real PostgreSQL: backoff, parking, re-queueing and the purge, as
the service's own database role does them; and migration 0015 (idempotent, reversible).
The outbox of scraping_service is used: no code of that service writes events."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, text

from runner import upgrade
from support import migrate
from therapy_platform.platform.database import transaction
from therapy_platform.platform.events import new_envelope
from therapy_platform.platform.outbox import SqlOutbox, SqlOutboxStore
from therapy_platform.platform.outbox_relay import purge_published, relay_outbox
from therapy_platform.platform.outbox_retry import OutboxRetryPolicy
from therapy_platform.platform.ports import OutboxRecord, PublishOutcome

pytestmark = pytest.mark.integration

SCHEMA = "scraping_service"
NOW = datetime(2026, 12, 12, 8, 0, tzinfo=UTC)


class RefusingBus:
    """Takes every event but those of the refused types (the entry's own error)."""

    def __init__(self, refused: set[str]) -> None:
        self.refused = refused
        self.taken: list[uuid.UUID] = []

    def publish(self, records: Sequence[OutboxRecord]) -> list[PublishOutcome]:
        outcomes = []
        for record in records:
            if record.message.envelope.event_type in self.refused:
                outcomes.append(
                    PublishOutcome(record.id, "MalformedDetail: Detail is malformed.\n" + "x" * 500)
                )
            else:
                self.taken.append(record.message.envelope.event_id)
                outcomes.append(PublishOutcome(record.id))
        return outcomes


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def engine(admin_engine: Engine, service_url: Callable[[str], str]) -> Iterator[Engine]:
    """The service's own role (its grants must allow update and delete); an empty outbox."""
    with admin_engine.begin() as connection:
        connection.execute(text(f"DELETE FROM {SCHEMA}.outbox"))
    engine = create_engine(service_url(SCHEMA))
    yield engine
    engine.dispose()


def _write(engine: Engine, *event_types: str) -> list[uuid.UUID]:
    envelopes = [
        new_envelope(event_type, "scraping-service", {"n": 1}, now=NOW) for event_type in event_types
    ]
    with transaction(engine) as connection:
        SqlOutbox(connection, SCHEMA).add_many([(str(uuid.uuid4()), envelope) for envelope in envelopes])
    return [envelope.event_id for envelope in envelopes]


def _row(engine: Engine, event_id: uuid.UUID) -> dict[str, object]:
    with engine.connect() as connection:
        return dict(
            connection.execute(text(f"SELECT * FROM {SCHEMA}.outbox WHERE event_id = :id"), {"id": event_id})
            .mappings()
            .one()
        )


def test_a_poison_row_backs_off_is_parked_listed_without_payload_and_requeued(engine: Engine) -> None:
    store, clock, bus = SqlOutboxStore(engine, SCHEMA), Clock(), RefusingBus({"run.poison"})
    poison, *good = _write(engine, "run.poison", "run.done", "run.done")
    policy = OutboxRetryPolicy(max_attempts=3)

    first = relay_outbox(store, bus, batch_size=2, policy=policy, clock=clock)
    assert (first.published, first.failed) == (2, 1) and set(bus.taken) == set(good)
    row = _row(engine, poison)
    assert (row["attempts"], row["next_attempt_at"], row["parked_at"]) == (
        1,
        NOW + timedelta(minutes=2),
        None,
    )
    assert str(row["last_error"]).startswith("MalformedDetail: Detail is malformed. xxx")
    assert len(str(row["last_error"])) == 300

    clock.now = NOW + timedelta(minutes=1)  # backoff not over: not claimed
    assert relay_outbox(store, bus, policy=policy, clock=clock).failed == 0
    clock.now = NOW + timedelta(minutes=2)
    assert relay_outbox(store, bus, policy=policy, clock=clock).failed == 1
    assert _row(engine, poison)["next_attempt_at"] == clock.now + timedelta(minutes=4)
    clock.now += timedelta(minutes=4)
    third = relay_outbox(store, bus, policy=policy, clock=clock)
    assert third.parked == 1
    row = _row(engine, poison)
    assert (row["attempts"], row["parked_at"], row["next_attempt_at"]) == (3, clock.now, None)

    clock.now += timedelta(days=30)
    assert relay_outbox(store, bus, policy=policy, clock=clock).failed == 0  # parked: left alone
    assert store.parked_count() == 1 and store.pending_count() == 0
    assert store.oldest_unpublished_at() is None  # a parked row does not make the outbox lag grow
    (parked,) = store.parked(10)
    assert (parked.event_id, parked.event_type, parked.attempts) == (poison, "run.poison", 3)

    bus.refused.clear()
    assert store.requeue([uuid.uuid4(), *good]) == 0  # only parked rows
    assert store.requeue([poison]) == 1
    assert relay_outbox(store, bus, policy=policy, clock=clock).published == 1
    assert store.parked_count() == 0 and _row(engine, poison)["published_at"] == clock.now


def test_the_purge_deletes_only_published_rows_past_the_retention_in_batches(
    engine: Engine, admin_engine: Engine
) -> None:
    store, clock = SqlOutboxStore(engine, SCHEMA), Clock()
    old = _write(engine, *["run.done"] * 5)
    relay_outbox(store, RefusingBus(set()), clock=clock)
    clock.now = NOW + timedelta(days=6)
    recent = _write(engine, "run.done")
    relay_outbox(store, RefusingBus(set()), clock=clock)
    (parked,) = _write(engine, "run.poison")
    relay_outbox(store, RefusingBus({"run.poison"}), policy=OutboxRetryPolicy(max_attempts=1), clock=clock)
    (waiting,) = _write(engine, "run.waiting")

    clock.now = NOW + timedelta(days=7, minutes=1)
    assert purge_published(store, retention=timedelta(days=7), batch_size=2, clock=clock) == 5
    with admin_engine.connect() as connection:
        left = {row for (row,) in connection.execute(text(f"SELECT event_id FROM {SCHEMA}.outbox"))}
    assert left == {*recent, parked, waiting} and not left & set(old)


def test_migration_0015_is_idempotent_and_reverts(
    scratch_database: Callable[[str], AbstractContextManager[Engine]],
) -> None:
    with scratch_database("outbox_0015") as engine:

        def outbox_columns() -> set[str]:
            with engine.connect() as connection:
                return {
                    column
                    for (column,) in connection.execute(
                        text(
                            "SELECT column_name FROM information_schema.columns"
                            " WHERE table_schema = 'matching_service' AND table_name = 'outbox'"
                        )
                    )
                }

        upgrade(engine, "0014")
        assert "parked_at" not in outbox_columns()
        assert upgrade(engine, "0015") == "0015"
        assert {"attempts", "last_error", "next_attempt_at", "parked_at"} <= outbox_columns()
        migrate(engine, command.stamp, "0014")  # as if 0015 had not run: running it again changes nothing
        assert upgrade(engine, "0015") == "0015"
        migrate(engine, command.downgrade, "0014")
        assert "parked_at" not in outbox_columns() and "attempts" in outbox_columns()
        assert upgrade(engine, "0015") == "0015"
