"""Ports of the therapist service."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any, Protocol

from therapy_platform.platform.ports import UnitOfWork
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


class TherapistUnitOfWork(UnitOfWork, Protocol):
    @property
    def therapists(self) -> TherapistRepository: ...

    @property
    def audit(self) -> TherapistAuditLog: ...
