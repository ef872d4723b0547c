"""Ports of the therapist service."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import date
from typing import Any, Protocol

from therapy_platform.platform.ports import UnitOfWork
from therapy_platform.therapists.domain.erasure import TherapistErasure
from therapy_platform.therapists.domain.therapist import Therapist, TherapistAuditEntry, TherapistQuery


class TherapistRepository(Protocol):
    def add(self, therapist: Therapist) -> None: ...

    def get(self, therapist_id: uuid.UUID) -> Therapist | None: ...

    def get_for_update(self, therapist_id: uuid.UUID) -> Therapist | None:
        """Read and lock the row until the unit of work ends (concurrent edits wait)."""
        ...

    def update(self, therapist: Therapist) -> None: ...

    def list(self, query: TherapistQuery, *, today: date) -> tuple[Sequence[Therapist], int]:
        """One page of matching therapists, and how many match in total."""
        ...

    def find_by_directory_id(self, directory_id: str) -> Therapist | None: ...

    def find_by_contact(self, *, email: str, last_name: str, postcode: str) -> Sequence[Therapist]:
        """Therapists with this email (case-insensitive), last name (case-insensitive) and postcode."""
        ...

    def find_by_name(self, *, first_name: str, last_name: str, postcode: str) -> Sequence[Therapist]:
        """Therapists with this first and last name (case-insensitive) and postcode."""
        ...


class TherapistAuditLog(Protocol):
    def add(self, entry: TherapistAuditEntry) -> None: ...

    def entries_of(self, entity_id: uuid.UUID) -> list[dict[str, Any]]:
        """Every audit entry of one therapist, oldest first, as JSON-safe records (an export)."""
        ...


class TherapistErasures(Protocol):
    """Erased therapists (GDPR Art. 17): deleting one's personal data in this service, and what
    is kept afterwards (the id and suppression keys, therapists/domain/erasure.py)."""

    def get(self, therapist_id: uuid.UUID) -> TherapistErasure | None: ...

    def suppressed_keys(self) -> frozenset[str]:
        """Every suppression key of every erased therapist (read once per import)."""
        ...

    def listed_directory_ids(self, therapist_id: uuid.UUID) -> set[str]:
        """The directory ids of the therapist's directory listings."""
        ...

    def erase_personal_data(self, therapist_id: uuid.UUID) -> None:
        """Delete the therapist's record, listings, import-report items, stored idempotent answers
        and outbox rows; keep the audit trail's who/what/when but clear its before/after/reason."""
        ...

    def add(self, erasure: TherapistErasure) -> None: ...


class TherapistUnitOfWork(UnitOfWork, Protocol):
    @property
    def therapists(self) -> TherapistRepository: ...

    @property
    def audit(self) -> TherapistAuditLog: ...

    @property
    def erasures(self) -> TherapistErasures: ...


class TherapistStaging(Protocol):
    """Set-based chunks of bulk writes (platform/bulk_load.ChunkStaging): `begin_keys` reads and
    locks every therapist with one of these ids, directory ids or practice keys (or, without a
    directory id, postcodes), and
    makes the units of work of the shared transaction answer from that (and from the rows staged
    since) and hold their writes; `flush` writes them, one statement per table (ConflictError: the
    database refused a value); `end` returns to savepoints."""

    def begin_keys(
        self,
        *,
        ids: Collection[uuid.UUID] = (),
        directory_ids: Collection[str] = (),
        practice_keys: Collection[str] = (),
        unlisted_postcodes: Collection[str] = (),
    ) -> None:
        """`unlisted_postcodes`: therapists without a directory id there (matched by name)."""
        ...

    def flush(self) -> None: ...

    def end(self) -> None: ...
