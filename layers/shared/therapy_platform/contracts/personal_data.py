"""The personal-data export between services (GDPR Art. 15 access, Art. 20 portability).

A person's data lives in several services' schemas, and no service may read another's. So the
service that owns the person (patients for a patient, therapists for a therapist) answers the
export route and asks every other service for its own part: it invokes each service's
personal-data function (`MatchingPersonalDataFunction`, `CommunicationPersonalDataFunction`)
with a `PersonalDataRequest` and gets a `PersonalDataPart` back. These travel only between
functions of the platform (a direct, synchronous Lambda invocation), never on the bus or Kafka.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from therapy_platform.platform.errors import InternalCallError


class DataSubject(StrEnum):
    """Whose data: the kinds of people the platform holds data about."""

    PATIENT = "patient"
    THERAPIST = "therapist"


class PersonalDataRequest(BaseModel):
    """What the owning service asks of every other service."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subject: DataSubject
    subject_id: uuid.UUID
    request_id: uuid.UUID = Field(description="The export's id: every part names it, so parts cannot mix")


class PersonalDataPart(BaseModel):
    """One service's part: every record it holds about the person, table by table, each record
    with all its columns (JSON-safe values), in a stable order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service: str = Field(description="The service that answered, e.g. `matching`")
    request_id: uuid.UUID
    subject: DataSubject
    subject_id: uuid.UUID
    records: dict[str, list[dict[str, Any]]] = Field(
        description="Table (or record kind) -> the records; a kind with no record is listed empty"
    )


class PersonalDataExport(BaseModel):
    """The whole export the route answers: the owning service's part first, then the others'."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: uuid.UUID
    subject: DataSubject
    subject_id: uuid.UUID
    exported_at: datetime
    parts: list[PersonalDataPart]


class PersonalDataReader(Protocol):
    """A service's port to everything it holds about one person (its adapter reads its own
    schema only)."""

    def records_of(self, subject: DataSubject, subject_id: uuid.UUID) -> dict[str, list[dict[str, Any]]]: ...


def answer_part(service: str, reader: PersonalDataReader, request: PersonalDataRequest) -> PersonalDataPart:
    """The one thing a service's personal-data function does: its part for the request."""
    return PersonalDataPart(
        service=service,
        request_id=request.request_id,
        subject=request.subject,
        subject_id=request.subject_id,
        records=reader.records_of(request.subject, request.subject_id),
    )


class PersonalDataParts(Protocol):
    """The owning service's port to the other services' parts."""

    def collect(self, request: PersonalDataRequest) -> list[PersonalDataPart]: ...


Invoke = Callable[[str, Mapping[str, Any]], dict[str, Any]]


class InvokedParts:
    """Asks each named function for its part (through `invoke`: a Lambda invocation when
    deployed, platform/lambda_invoke.py). Every function must answer a part for THIS request:
    an error, a malformed part or one for another request fails the whole export (a partial
    export would look complete). No function configured is a deployment error, said loudly."""

    def __init__(self, invoke: Invoke, function_names: Sequence[str]) -> None:
        self._invoke = invoke
        self._function_names = tuple(function_names)

    def collect(self, request: PersonalDataRequest) -> list[PersonalDataPart]:
        if not self._function_names:
            raise InternalCallError("no personal-data function is configured (PERSONAL_DATA_FUNCTIONS)")
        parts = []
        for name in self._function_names:
            answer = self._invoke(name, request.model_dump(mode="json"))
            try:
                part = PersonalDataPart.model_validate(answer)
            except ValidationError:
                raise InternalCallError(f"{name} answered no personal-data part") from None
            if (part.request_id, part.subject, part.subject_id) != (
                request.request_id,
                request.subject,
                request.subject_id,
            ):
                raise InternalCallError(f"{name} answered a part of another request")
            parts.append(part)
        return parts


class NoOtherServices:
    """The parts of a service built without the other services' personal-data functions (bulk
    loads, tools): an export fails loudly instead of answering an incomplete document."""

    def collect(self, request: PersonalDataRequest) -> list[PersonalDataPart]:
        raise InternalCallError("this service was built without the other services' personal-data functions")
