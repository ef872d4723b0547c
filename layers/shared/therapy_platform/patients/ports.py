"""Ports of the patient service."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Final, Protocol

from therapy_platform.patients.domain.patient import Patient, PatientQuery
from therapy_platform.patients.domain.registration import ParkedRegistration
from therapy_platform.patients.domain.statistics import PatientStatistics
from therapy_platform.platform.ports import ProcessedEvents, UnitOfWork

# Field-level encryption (docs/privacy.md#encryption): the patient fields no query filters, sorts
# or matches on, sealed by the repository before they reach PostgreSQL (and in the audit log's
# before/after values), opened when read. Names, birth date, postcode and insurer stay readable
# because search, sorting, duplicate detection and matching need them; email is found by
# duplicate detection only among rows already narrowed by last name and birth date.
ENCRYPTED_FIELDS: Final = frozenset({"email", "phone", "street", "notes"})


class FieldDecryptionError(Exception):
    """A sealed field could not be opened (tampered, moved to another record, key refused). The
    message names the field and the reason, never a value."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"cannot decrypt patient field {field!r}: {reason}")
        self.field = field


class FieldCipher(Protocol):
    """Seals and opens one field value of one record (the record id is bound to the value)."""

    def encrypt(self, value: str, *, field: str, record_id: uuid.UUID) -> str: ...

    def decrypt(self, stored: str, *, field: str, record_id: uuid.UUID) -> str:
        """The value; a stored value that was never sealed (legacy plaintext) comes back as it
        is. Raises FieldDecryptionError."""
        ...

    def prefetch(self, stored: Iterable[str]) -> None:
        """Get ready to open these values (a page of rows) at once: unwrap their data keys
        concurrently instead of one by one. Best effort: a failure shows when a value is opened."""
        ...


class PatientRepository(Protocol):
    def add(self, patient: Patient) -> None: ...

    def get(self, patient_id: uuid.UUID, *, for_update: bool = False) -> Patient | None:
        """The patient, or None when the id is unknown or the patient was erased. With
        `for_update` the row stays locked until the transaction ends."""
        ...

    def erased_at(self, patient_id: uuid.UUID) -> datetime | None:
        """When the patient's personal data was erased (None: never, or unknown id)."""
        ...

    def update(self, patient: Patient) -> None: ...

    def erase(self, patient_id: uuid.UUID, *, erased_at: datetime, statistics: PatientStatistics) -> None:
        """Reduce the record to its tombstone (`STATISTICS_FIELDS`: id and erasure time), add the
        anonymous `statistics` row (no id) and drop the patient's earlier outbox events, which
        carry personal data."""
        ...

    def search(self, query: PatientQuery) -> tuple[list[Patient], int]:
        """One page of non-erased patients matching the query, and how many match in total."""
        ...

    def find_by_identity(self, *, email: str, last_name: str, birth_date: date) -> list[Patient]:
        """Non-erased patients with this email and last name (case-insensitive) and birth date."""
        ...


class PatientAuditAction(StrEnum):
    CREATE = "create"
    READ = "read"
    LIST = "list"
    UPDATE = "update"
    ERASE = "erase"
    EXPORT = "export"  # a personal-data export (GDPR Art. 15/20) was handed out


@dataclass(frozen=True)
class PatientAuditEntry:
    """One access to one patient record: who, what, when, and for changes the values before
    and after (changed fields only)."""

    actor: str
    action: PatientAuditAction
    entity_id: uuid.UUID
    at: datetime
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    reason: str | None = None
    entity_type: str = field(default="patient")


class PatientAuditLog(Protocol):
    def record(self, entries: Sequence[PatientAuditEntry]) -> None: ...

    def redact(self, entity_id: uuid.UUID) -> None:
        """Blank the recorded values of one entity (erasure): who, what and when remain, and
        which fields changed, but no value."""
        ...

    def entries_of(self, entity_id: uuid.UUID) -> list[dict[str, Any]]:
        """Every audit entry of one entity, oldest first, as JSON-safe records (an export)."""
        ...


class PatientUnitOfWork(UnitOfWork, Protocol):
    @property
    def patients(self) -> PatientRepository: ...

    @property
    def audit(self) -> PatientAuditLog: ...

    @property
    def processed_events(self) -> ProcessedEvents:
        """The events the service's consumers have handled (claimed in this transaction)."""
        ...


class ParkedRegistrations(Protocol):
    """Self-registrations that did not become a patient, for staff (adapters/parked_registrations.py)."""

    def park(self, parked: ParkedRegistration) -> bool:
        """Stores it; False when the same record (topic, partition, offset) was parked before."""
        ...

    def recent(self, *, limit: int, offset: int) -> tuple[list[ParkedRegistration], int]:
        """Newest first, and how many there are."""
        ...


class PatientStaging(Protocol):
    """Set-based chunks of the bulk load (platform/bulk_load.ChunkStaging): `begin_identities`
    reads and locks every live patient with one of these (last name, birth date) pairs (last
    names compared case-insensitively) and makes the units of work of the shared transaction
    answer from that (and from the rows staged since) and hold their writes; `flush` writes
    them, one statement per table (ConflictError: the database refused a value); `end` returns
    to savepoints."""

    def begin_identities(self, identities: Collection[tuple[str, date]]) -> None: ...

    def flush(self) -> None: ...

    def end(self) -> None: ...
