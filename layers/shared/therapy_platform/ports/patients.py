"""Ports of the patient service."""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import Protocol, Self

from therapy_platform.domain.patients import Patient
from therapy_platform.ports.events import Outbox


class PatientRepository(Protocol):
    def add(self, patient: Patient) -> None: ...

    def get(self, patient_id: uuid.UUID) -> Patient | None: ...


class PatientUnitOfWork(Protocol):
    @property
    def patients(self) -> PatientRepository: ...

    @property
    def outbox(self) -> Outbox: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def commit(self) -> None: ...
