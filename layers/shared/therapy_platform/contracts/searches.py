"""Payloads the matching service publishes about patient searches (`search.*`, Kafka topic
`search-events`).

A search is one patient's search for a therapy place. Produced by
`matching/use_cases/searches.py` (create, change, contacts, erasure) and
`matching/use_cases/bundles.py` (placement through an accepted bundle). Consumed today by
- the patient service (`functions/patient_search_events`): `search.status_changed`;
- the communication service (`communication/use_cases/events.py`): `search.created`
  ("search started" email), `search.status_changed` (withdrawal notices, "place found");
- anyone on Kafka, through the bridge (`search.updated` has no other consumer today).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import Field

from therapy_platform.contracts.base import EventPayload
from therapy_platform.contracts.bundles import Withdrawal


class SearchStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    PLACED = "placed"
    CANCELLED = "cancelled"


class Exclusion(EventPayload):
    """A therapist never to be contacted for this search (the reason, free text, stays in the
    matching service)."""

    therapist_id: uuid.UUID
    excluded_at: datetime
    excluded_by: str


class SearchSnapshot(EventPayload):
    """Payload of `search.created` and `search.updated`: the search after the change (the
    matching API's view of it, with its contact counts). Produced by the matching service;
    `search.created` is consumed by the communication service, both by Kafka."""

    id: uuid.UUID
    patient_id: uuid.UUID
    status: SearchStatus
    created_at: datetime
    updated_at: datetime
    total_requested_contacts: int
    contacts_used: int = 0
    open_bundles: int = 0
    placed_therapist_id: uuid.UUID | None = None
    placed_at: datetime | None = None
    exclusions: list[Exclusion] = Field(default_factory=list)
    waiting_days: int = 0


class SearchStatusChanged(EventPayload):
    """Payload of `search.status_changed` (`previous_status` null for a new search). Produced by
    the matching service; consumed by the patient service (the patient's status follows), the
    communication service (withdrawal notices, "place found" email) and Kafka."""

    id: uuid.UUID
    patient_id: uuid.UUID
    previous_status: SearchStatus | None
    status: SearchStatus
    placed_therapist_id: uuid.UUID | None = None
    changed_at: datetime
    withdrawals: list[Withdrawal] = Field(
        default_factory=list, description="Pending memberships this change withdrew from open bundles"
    )
