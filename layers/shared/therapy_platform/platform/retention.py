"""Retention (GDPR Art. 5(1)(e), storage limitation): how long each service keeps what, as pure
rules. The clock is passed in; the SQL that applies a rule lives in `retention_sql.py`.

Every period is configurable through an environment variable (`RETENTION_*_DAYS`, the template
sets them from parameters) and has a documented default (docs/privacy.md#retention). A rule
names its period, so a cut-off is always `now - period`: a row whose instant lies before the
cut-off is erased (or its free text cleared) by the service's scheduled retention job. Applying a
rule twice changes nothing the second time (idempotent).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from pydantic import Field

from therapy_platform.platform.settings import EnvModel

Action = Literal["delete", "clear"]


class RetentionPeriods(EnvModel):
    """Days each kind of record is kept after the instant its rule counts from."""

    # matching: a search that ended (placed or cancelled), with its bundle memberships, exclusions
    # and alerts; bundles whose members are all gone.
    ended_searches_days: int = Field(default=730, ge=30, le=3650, alias="RETENTION_ENDED_SEARCHES_DAYS")
    # communication: bodies of sent or failed emails, of stored replies, call notes.
    email_bodies_days: int = Field(default=365, ge=30, le=3650, alias="RETENTION_EMAIL_BODIES_DAYS")
    # staff review lists: replies nobody could assign (communication), self-registrations that
    # became no patient (patients' parked_registrations).
    reply_reviews_days: int = Field(default=90, ge=7, le=3650, alias="RETENTION_REPLY_REVIEWS_DAYS")
    # every service: published outbox rows (the relay purges them after OUTBOX_RETENTION_DAYS
    # already; this is the backstop for a relay that was configured longer or did not run).
    published_outbox_days: int = Field(default=30, ge=1, le=3650, alias="RETENTION_PUBLISHED_OUTBOX_DAYS")
    # every consuming service: the eventIds of handled events (idempotency of redeliveries, which
    # SQS and the Kafka bridge stop within days).
    processed_events_days: int = Field(default=90, ge=14, le=3650, alias="RETENTION_PROCESSED_EVENTS_DAYS")
    # every API service: Idempotency-Key answers (honoured for 24 hours, platform/idempotency.py).
    idempotency_keys_days: int = Field(default=7, ge=2, le=3650, alias="RETENTION_IDEMPOTENCY_KEYS_DAYS")
    # therapists: per-entry reports of directory imports (names of skipped entries).
    import_reports_days: int = Field(default=90, ge=7, le=3650, alias="RETENTION_IMPORT_REPORTS_DAYS")
    # directory: scraper runs (counts and errors).
    scraper_runs_days: int = Field(default=365, ge=7, le=3650, alias="RETENTION_SCRAPER_RUNS_DAYS")
    # geocoding: cache entries past their own expiry (kept this much longer, then deleted).
    geocode_cache_grace_days: int = Field(default=0, ge=0, le=365, alias="RETENTION_GEOCODE_CACHE_GRACE_DAYS")

    def days(self, period: str) -> int:
        value = getattr(self, period)
        assert isinstance(value, int), period
        return value


@dataclass(frozen=True)
class RetentionRule:
    """One kind of record a service stops keeping: `period` names a field of RetentionPeriods."""

    name: str
    period: str
    action: Action
    what: str  # for the docs and the run's report: never any content

    def __post_init__(self) -> None:
        if self.period not in RetentionPeriods.model_fields:
            raise ValueError(f"unknown retention period {self.period!r}")


def _common(schema_has_consumers: bool) -> tuple[RetentionRule, ...]:
    rules = [
        RetentionRule("published_outbox", "published_outbox_days", "delete", "published outbox rows"),
        RetentionRule("idempotency_keys", "idempotency_keys_days", "delete", "Idempotency-Key answers"),
    ]
    if schema_has_consumers:
        rules.append(RetentionRule("processed_events", "processed_events_days", "delete", "handled eventIds"))
    return tuple(rules)


# The rules each service's job applies, by the schema it owns (the job reaches only that schema).
RULES: Final[dict[str, tuple[RetentionRule, ...]]] = {
    "patient_service": (
        # A staff review list like the unassigned replies (no content kept: docs/registration-intake.md).
        RetentionRule(
            "parked_registrations", "reply_reviews_days", "delete", "parked self-registrations (review list)"
        ),
        *_common(schema_has_consumers=True),
    ),
    "therapist_service": (
        RetentionRule("published_outbox", "published_outbox_days", "delete", "published outbox rows"),
        RetentionRule("idempotency_keys", "idempotency_keys_days", "delete", "Idempotency-Key answers"),
        RetentionRule(
            "import_reports", "import_reports_days", "delete", "per-entry directory import reports"
        ),
    ),
    "matching_service": (
        RetentionRule(
            "ended_searches", "ended_searches_days", "delete", "searches ended (placed, cancelled)"
        ),
        RetentionRule("closed_bundles", "ended_searches_days", "delete", "closed bundles without members"),
        *_common(schema_has_consumers=True),
    ),
    "communication_service": (
        RetentionRule("email_bodies", "email_bodies_days", "clear", "bodies of sent or failed emails"),
        RetentionRule("reply_bodies", "email_bodies_days", "clear", "bodies of stored replies"),
        RetentionRule("call_notes", "email_bodies_days", "clear", "notes of completed phone calls"),
        RetentionRule("reply_reviews", "reply_reviews_days", "delete", "unassigned replies (review list)"),
        *_common(schema_has_consumers=True),
    ),
    "scraping_service": (
        RetentionRule("scraper_runs", "scraper_runs_days", "delete", "directory scraper runs"),
    ),
    "geocoding_service": (
        RetentionRule(
            "geocode_cache", "geocode_cache_grace_days", "delete", "expired geocoding cache entries"
        ),
    ),
}


def rules_for(schema: str) -> tuple[RetentionRule, ...]:
    try:
        return RULES[schema]
    except KeyError:
        raise ValueError(f"no retention rules for schema {schema!r}") from None


def cutoff(now: datetime, days: int) -> datetime:
    """The instant before which a record governed by a `days` period is no longer kept."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if days < 0:
        raise ValueError("a retention period cannot be negative")
    return now.astimezone(UTC) - timedelta(days=days)


@dataclass(frozen=True)
class PlannedRule:
    rule: RetentionRule
    cutoff: datetime


def plan(schema: str, periods: RetentionPeriods, now: datetime) -> tuple[PlannedRule, ...]:
    """Every rule of the schema's service with its cut-off at `now` (the injected clock)."""
    return tuple(PlannedRule(rule, cutoff(now, periods.days(rule.period))) for rule in rules_for(schema))


@dataclass(frozen=True)
class RuleResult:
    """What a run did for one rule: counts only, never content."""

    rule: str
    cutoff: datetime
    affected: int
    complete: bool  # False: the batch limit stopped it; the next run goes on

    def as_json(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "cutoff": self.cutoff.isoformat(),
            "affected": self.affected,
            "complete": self.complete,
        }


def report(schema: str, now: datetime, results: tuple[RuleResult, ...]) -> dict[str, object]:
    return {
        "schema": schema,
        "now": now.isoformat(),
        "affected": sum(result.affected for result in results),
        "complete": all(result.complete for result in results),
        "rules": [result.as_json() for result in results],
    }
