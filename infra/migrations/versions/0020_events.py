"""Minimal events (issue 12 item 1): the read models keep only what matching needs, and the
communication service keeps no contact copies.

- matching_service.patient_profiles: each live row's `data` is cut to the minimal
  `patient.*` payload (contracts/patients.py): names, birth date, street, city, email, phone,
  insurer, notes and the last session dropped; the birth date becomes `birth_month` "YYYY-MM".
- matching_service.therapist_profiles: each live row's `data` is cut to the minimal
  `therapist.*` payload (contracts/therapists.py): names, title, street, city, phone, fax,
  email, website, directory id, block reason and staff-edited fields dropped; in their place
  `reachable_by_email`, `reachable_by_phone`, `from_directory`, the owner ranks and the hashed
  practice key ("p:" + 32 hex digits of SHA-256 over the normalised shared address), computed
  here from the row itself with this migration's own copy of the rules (contracts/practices.py
  at the time of writing: a migration must not change when the code does).
- matching_service.bundles.practice_key: an email-shaped key becomes the same hash.
- the outboxes of the patient, therapist and matching services: rows still there (unpublished
  ones would reach the bus) get the same minimal payloads (names, contacts, notes, reasons out).
- communication_service.patient_contacts / therapist_contacts: dropped (contacts are looked up
  in the owning services, contracts/contacts.py); sent_bundles' member summaries lose the
  insurer.

Downgrade recreates the two contact tables empty (a redelivery of events cannot refill them: the
events no longer carry contacts) and leaves the minimal rows as they are: what was dropped is
gone, which is the point.

Revision ID: 0020_events
Revises: 0019_rights
Create Date: 2026-12-06
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0020_events"
down_revision = "0019_rights"
branch_labels = None
depends_on = None

MATCHING = "matching_service"
COMMUNICATION = "communication_service"

PATIENT_FIELDS = (
    "id", "gender", "birth_month", "postcode", "insurance_type", "symptoms", "previous_therapy",
    "therapy_procedures", "preferred_therapist_gender", "open_to_group_therapy", "group_only",
    "languages", "needs_shared_language", "max_travel_km", "travel_mode", "availability",
    "excluded_therapist_ids", "status", "location", "created_at", "updated_at", "location_flagged",
    "shared_language_required",
)  # fmt: skip
THERAPIST_FIELDS = (
    "id", "gender", "postcode", "from_directory", "reachable_by_email", "reachable_by_phone",
    "statutory_seat", "procedures", "languages", "phone_windows", "working_hours", "preferred_age_min",
    "preferred_age_max", "preferred_patient_gender", "offers_group_therapy", "group_only",
    "symptom_preferences", "potentially_available", "status", "next_contact_allowed_on", "location",
    "location_flagged", "practice_key", "owner_name_rank", "title_rank", "contact_opt_out",
    "created_at", "updated_at",
)  # fmt: skip

_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def _fold(text: str) -> str:
    text = text.casefold().translate(_UMLAUTS)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return _NOT_ALNUM.sub("", text)


def _hashed(address: Any) -> str | None:
    if not isinstance(address, str) or not address.strip():
        return None
    if re.fullmatch(r"p:[0-9a-f]{32}", address):
        return address
    return "p:" + hashlib.sha256(address.strip().lower().encode("utf-8")).hexdigest()[:32]


def _owner_name_rank(last_name: Any, email: Any) -> int:
    name = _fold(str(last_name or ""))
    if not name or not email:
        return 0
    return len(name) if any(name in _fold(part) for part in str(email).split("@")) else 0


def _title_rank(title: Any) -> int:
    folded = str(title or "").casefold()
    if re.search(r"\bprof\b", folded):
        return 2
    if re.search(r"\bdr\b", folded):
        return 1
    return 0


def minimal_patient(data: dict[str, Any]) -> dict[str, Any]:
    if "birth_month" not in data:
        birth = data.get("birth_date")
        data = {**data, "birth_month": str(birth)[:7] if birth else None}
    return {name: data[name] for name in PATIENT_FIELDS if name in data}


def minimal_therapist(data: dict[str, Any]) -> dict[str, Any]:
    email = data.get("email")
    derived = {
        "from_directory": data.get("from_directory", data.get("directory_id") is not None),
        "reachable_by_email": data.get("reachable_by_email", bool(email)),
        "reachable_by_phone": data.get("reachable_by_phone", bool(data.get("phone"))),
        "practice_key": _hashed(data.get("practice_key") or email),
        "owner_name_rank": data.get("owner_name_rank", _owner_name_rank(data.get("last_name"), email)),
        "title_rank": data.get("title_rank", _title_rank(data.get("title"))),
    }
    merged = {**data, **derived}
    return {name: merged[name] for name in THERAPIST_FIELDS if name in merged}


def _rewrite(table: str, minimal: Any) -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.text(f"SELECT id, data FROM {MATCHING}.{table} WHERE data IS NOT NULL"))
    update = sa.text(f"UPDATE {MATCHING}.{table} SET data = CAST(:data AS jsonb) WHERE id = :id")
    batch = [{"id": row.id, "data": json.dumps(minimal(dict(row.data)))} for row in rows]
    for start in range(0, len(batch), 1000):
        connection.execute(update, batch[start : start + 1000])


_BUNDLE_TEXT = ("notes", "discard_reason")


def minimal_bundle_event(event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A matching outbox payload as the minimal contracts say (contracts/bundles.py, searches.py)."""

    def bundle(data: dict[str, Any]) -> dict[str, Any]:
        data = {k: v for k, v in data.items() if k not in _BUNDLE_TEXT}
        if isinstance(data.get("practice_key"), str) and "@" in data["practice_key"]:
            data["practice_key"] = _hashed(data["practice_key"])
        members = []
        for member in data.get("members") or []:
            member = {k: v for k, v in member.items() if k != "notes"}
            if isinstance(member.get("patient"), dict):
                member["patient"] = {k: v for k, v in member["patient"].items() if k != "health_insurer"}
            members.append(member)
        if "members" in data:
            data["members"] = members
        return data

    if event_type == "bundle.response_received" and isinstance(payload.get("bundle"), dict):
        return {**payload, "bundle": bundle(payload["bundle"])}
    if event_type.startswith("bundle."):
        payload = bundle(payload)
        therapist = payload.get("therapist")
        if isinstance(therapist, dict) and "reachable_by_email" not in therapist:
            payload["therapist"] = {
                "id": therapist.get("id"),
                "reachable_by_email": bool(therapist.get("email")),
                "reachable_by_phone": bool(therapist.get("phone")),
                "phone_windows": therapist.get("phone_windows") or {},
                **(
                    {"listed_in_directory": therapist["listed_in_directory"]}
                    if "listed_in_directory" in therapist
                    else {}
                ),
            }
        return payload
    if event_type.startswith("search."):
        payload = {k: v for k, v in payload.items() if k not in ("notes", "status_reason", "reason")}
        if isinstance(payload.get("exclusions"), list):
            payload["exclusions"] = [
                {k: v for k, v in e.items() if k != "reason"}
                for e in payload["exclusions"]
                if isinstance(e, dict)
            ]
        return payload
    return payload


def _rewrite_outbox(schema: str, prefix: str, minimal: Any) -> None:
    """Rows still in an outbox (unpublished ones would go on the bus; published ones wait for
    their purge) get the minimal payload too."""
    connection = op.get_bind()
    rows = connection.execute(
        sa.text(f"SELECT id, event_type, envelope FROM {schema}.outbox WHERE event_type LIKE :prefix"),
        {"prefix": f"{prefix}%"},
    )
    update = sa.text(f"UPDATE {schema}.outbox SET envelope = CAST(:envelope AS jsonb) WHERE id = :id")
    batch = []
    for row in rows:
        envelope = dict(row.envelope)
        if row.event_type.endswith(".deleted") or not isinstance(envelope.get("payload"), dict):
            continue
        envelope["payload"] = minimal(row.event_type, envelope["payload"])
        batch.append({"id": row.id, "envelope": json.dumps(envelope)})
    for start in range(0, len(batch), 1000):
        connection.execute(update, batch[start : start + 1000])


def upgrade() -> None:
    _rewrite("patient_profiles", minimal_patient)
    _rewrite("therapist_profiles", minimal_therapist)
    _rewrite_outbox("patient_service", "patient.", lambda _, payload: minimal_patient(payload))
    _rewrite_outbox("therapist_service", "therapist.", lambda _, payload: minimal_therapist(payload))
    _rewrite_outbox("matching_service", "bundle.", minimal_bundle_event)
    _rewrite_outbox("matching_service", "search.", minimal_bundle_event)
    op.execute(
        f"UPDATE {MATCHING}.bundles SET practice_key = 'p:' || left(encode(sha256(convert_to("
        "lower(btrim(practice_key)), 'UTF8')), 'hex'), 32)"
        " WHERE practice_key NOT LIKE 'therapist:%' AND practice_key NOT LIKE 'erased:%'"
        " AND practice_key !~ '^p:[0-9a-f]{32}$'"
    )
    # Bundles of therapists erased before this revision (0017_terasure wrote `erased:<id>`).
    op.execute(
        f"UPDATE {MATCHING}.bundles SET practice_key = 'therapist:' || substr(practice_key, 8)"
        " WHERE practice_key LIKE 'erased:%'"
    )
    op.drop_table("patient_contacts", schema=COMMUNICATION)
    op.drop_table("therapist_contacts", schema=COMMUNICATION)
    op.execute(
        f"UPDATE {COMMUNICATION}.sent_bundles SET members = ("
        " SELECT coalesce(jsonb_agg(member #- '{patient,health_insurer}' ORDER BY position), '[]'::jsonb)"
        " FROM jsonb_array_elements(members) WITH ORDINALITY AS listed(member, position))"
        " WHERE members::text LIKE '%health_insurer%'"
    )


def downgrade() -> None:
    for name in ("patient_contacts", "therapist_contacts"):
        op.create_table(
            name,
            sa.Column("id", sa.Uuid, primary_key=True),
            sa.Column("data", JSONB),
            sa.Column("source_event_id", sa.Uuid, nullable=False),
            sa.Column("source_timestamp", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            schema=COMMUNICATION,
        )
