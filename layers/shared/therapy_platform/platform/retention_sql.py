"""Applying the retention rules (`retention.py`) to a service's schema in PostgreSQL.

Each rule is one statement shape over one table: which rows are due (`where`, with `:cutoff`
bound to the rule's cut-off), and either deleting them (their dependent rows first) or clearing
their free text (`set`). Rows are handled in batches, each in its own short transaction, with
`FOR UPDATE SKIP LOCKED` so a running request is never waited for (its row is taken next run).
A batch limit bounds a run; the report says when it stopped early.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Final

from pydantic import Field
from sqlalchemy import Engine, text

from therapy_platform.platform.clock import utc_now
from therapy_platform.platform.database import default_engine
from therapy_platform.platform.retention import (
    RetentionPeriods,
    RuleResult,
    plan,
    rules_for,
)
from therapy_platform.platform.settings import EnvModel

_NAME = re.compile(r"^[a-z][a-z_]*$")


@dataclass(frozen=True)
class SqlRule:
    table: str
    where: str  # over the table aliased `t`; `:cutoff` is the rule's cut-off
    set: str | None = None  # an UPDATE's SET clause (clear); None: delete the rows
    # (table, column) of rows referring to a due row's `id`: deleted first, in this order.
    children: tuple[tuple[str, str], ...] = ()


OUTBOX: Final = SqlRule("outbox", "t.published_at IS NOT NULL AND t.published_at < :cutoff")
IDEMPOTENCY_KEYS: Final = SqlRule("idempotency_keys", "t.created_at < :cutoff")
PROCESSED_EVENTS: Final = SqlRule("processed_events", "t.processed_at < :cutoff")

STATEMENTS: Final[dict[str, SqlRule]] = {
    "published_outbox": OUTBOX,
    "idempotency_keys": IDEMPOTENCY_KEYS,
    "processed_events": PROCESSED_EVENTS,
    # matching_service: a search ended when it was placed or cancelled; updated_at is its last change.
    "ended_searches": SqlRule(
        "searches",
        "t.status IN ('placed', 'cancelled') AND t.updated_at < :cutoff",
        children=(
            ("staff_alerts", "search_id"),
            ("search_exclusions", "search_id"),
            ("bundle_members", "search_id"),
        ),
    ),
    "closed_bundles": SqlRule(
        "bundles",
        "t.status IN ('answered', 'expired', 'discarded') AND t.updated_at < :cutoff"
        " AND NOT EXISTS (SELECT 1 FROM {schema}.bundle_members m WHERE m.bundle_id = t.id)",
        children=(("staff_alerts", "bundle_id"),),
    ),
    # communication_service: what was said is cleared, that something was sent stays (counts, dates).
    "email_bodies": SqlRule(
        "emails",
        "t.status IN ('sent', 'failed') AND t.created_at < :cutoff AND (t.html <> '' OR t.text <> '')",
        set="html = '', text = ''",
    ),
    "reply_bodies": SqlRule(
        "inbound_replies",
        "t.received_at < :cutoff AND (t.text IS NOT NULL OR t.html IS NOT NULL)",
        set="text = NULL, html = NULL",
    ),
    "call_notes": SqlRule(
        "phone_call_tasks",
        "t.completed_at < :cutoff AND t.outcome_notes IS NOT NULL",
        set="outcome_notes = NULL",
    ),
    "reply_reviews": SqlRule("reply_reviews", "t.received_at < :cutoff"),
    # patient_service: parked self-registrations (reason, offset, fingerprint; never content)
    "parked_registrations": SqlRule("parked_registrations", "t.parked_at < :cutoff"),
    # therapist_service: the per-entry report of an import (names of skipped entries); the
    # import's own row with its counts stays.
    "import_reports": SqlRule(
        "directory_import_items",
        "t.import_id IN (SELECT i.id FROM {schema}.directory_imports i WHERE i.started_at < :cutoff)",
    ),
    # scraping_service
    "scraper_runs": SqlRule("runs", "t.started_at < :cutoff"),
    # geocoding_service: entries past their own expiry (+ the grace period)
    "geocode_cache": SqlRule("geocode_cache", "t.expires_at < :cutoff"),
}


def _apply_batch(engine: Engine, schema: str, rule: SqlRule, cutoff: datetime, limit: int) -> int:
    """One batch in one transaction; the number of rows deleted or cleared."""
    where = rule.where.format(schema=schema)
    target = f"{schema}.{rule.table}"
    due = f"SELECT t.ctid FROM {target} AS t WHERE {where} LIMIT :limit FOR UPDATE OF t SKIP LOCKED"
    params = {"cutoff": cutoff, "limit": limit}
    with engine.begin() as connection:
        if rule.set is not None:
            return connection.execute(
                text(f"UPDATE {target} SET {rule.set} WHERE ctid IN ({due})"), params
            ).rowcount
        if not rule.children:
            return connection.execute(text(f"DELETE FROM {target} WHERE ctid IN ({due})"), params).rowcount
        ids = list(
            connection.execute(
                text(
                    f"SELECT t.id FROM {target} AS t WHERE {where} LIMIT :limit FOR UPDATE OF t SKIP LOCKED"
                ),
                params,
            ).scalars()
        )
        if not ids:
            return 0
        for child, column in rule.children:
            connection.execute(text(f"DELETE FROM {schema}.{child} WHERE {column} = ANY(:ids)"), {"ids": ids})
        return connection.execute(text(f"DELETE FROM {target} WHERE id = ANY(:ids)"), {"ids": ids}).rowcount


def apply_rule(
    engine: Engine,
    schema: str,
    rule: SqlRule,
    cutoff: datetime,
    *,
    batch_size: int,
    max_batches: int,
    keep_going: Callable[[], bool] = lambda: True,
) -> tuple[int, bool]:
    """Every due row of `rule`, batch after batch, while `keep_going()` (the function's time
    budget): (rows affected, whether none is left). Each batch commits: a run stopped early has
    kept its progress, the next one goes on."""
    if not _NAME.match(schema):
        raise ValueError(f"not a schema name: {schema!r}")
    affected = 0
    for _ in range(max_batches):
        if not keep_going():
            return affected, False
        done = _apply_batch(engine, schema, rule, cutoff, batch_size)
        affected += done
        if done < batch_size:
            return affected, True
    return affected, False


class RetentionSettings(EnvModel):
    service_schema: str = Field(alias="DB_SCHEMA", pattern=r"^[a-z][a-z_]*$")


@dataclass(frozen=True)
class RetentionJob:
    """One service's retention job; tests build one with their engine and clock."""

    schema: str
    engine: Callable[[], Engine]
    periods: RetentionPeriods = field(default_factory=RetentionPeriods)
    clock: Callable[[], datetime] = utc_now

    def run(
        self,
        *,
        now: datetime | None = None,
        batch_size: int = 500,
        max_batches: int = 200,
        keep_going: Callable[[], bool] = lambda: True,
    ) -> tuple[datetime, tuple[RuleResult, ...]]:
        at = now or self.clock()
        results = []
        for planned in plan(self.schema, self.periods, at):
            affected, complete = apply_rule(
                self.engine(),
                self.schema,
                STATEMENTS[planned.rule.name],
                planned.cutoff,
                batch_size=batch_size,
                max_batches=max_batches,
                keep_going=keep_going,
            )
            results.append(RuleResult(planned.rule.name, planned.cutoff, affected, complete))
        return at, tuple(results)


@cache
def retention_job() -> RetentionJob:
    """The job of the schema in DB_SCHEMA with the periods of RETENTION_*_DAYS (cold start)."""
    settings = RetentionSettings.from_env()
    rules_for(settings.service_schema)  # fails the cold start for a schema without rules
    return RetentionJob(
        schema=settings.service_schema, engine=default_engine, periods=RetentionPeriods.from_env()
    )
