"""The matching service's bookkeeping records: a round's run (parameters and summary) and
the audit trail every change writes (who, what, when, before/after)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from pydantic import JsonValue

# A JSON object as the API and the events show it (model_dump(mode="json")).
JsonObject = dict[str, JsonValue]


@dataclass
class RoundRecord:
    id: uuid.UUID
    run_date: date
    started_at: datetime
    trigger: str  # schedule, operator, api
    actor: str
    parameters: JsonObject
    finished_at: datetime | None = None
    summary: JsonObject | None = None


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str  # e.g. search.updated, bundle.sent, member.withdrawn
    entity_type: str  # search, bundle, round
    entity_id: uuid.UUID
    before: JsonObject | None = None
    after: JsonObject | None = None
    reason: str | None = None
