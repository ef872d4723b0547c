"""Contact look-ups between services: how the communication service learns a person's name and
address at the moment it writes or schedules a call, instead of keeping copies fed by events.

Events carry ids only (GDPR Art. 5(1)(c), 25; docs/events.md). The patient and therapist
services own their people's contact data; each answers a `ContactRequest` with a card through
its contacts function (`PatientContactsFunction`, `TherapistContactsFunction`): a direct,
synchronous Lambda invocation (platform/lambda_invoke.py), never the bus or Kafka, so the
schemas stay isolated and nothing personal travels further than the one function that needs it.

A card says `found` (the contact), `erased` (the person was erased: never write to them) or
`unknown` (no such id).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from therapy_platform.contracts.therapy import Gender
from therapy_platform.platform.errors import InternalCallError


class ContactState(StrEnum):
    FOUND = "found"
    ERASED = "erased"
    UNKNOWN = "unknown"


class ContactRequest(BaseModel):
    """What the communication service asks: the contact card of one person."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: uuid.UUID


class PatientContactCard(BaseModel):
    """What letters to a patient need (nothing about health). Fields are set when `found`."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: uuid.UUID
    state: ContactState
    salutation: str | None = None
    gender: Gender = Gender.UNSPECIFIED
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    max_travel_km: int = Field(default=25, ge=1, le=500)
    location_flagged: bool = Field(default=False, description="The address could not be located (now)")


class TherapistContactCard(BaseModel):
    """What letters to and about a therapist need: name and how to get in touch. Fields are
    set when `found`."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: uuid.UUID
    state: ContactState
    salutation: str | None = None
    gender: Gender = Gender.UNSPECIFIED
    title: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    street: str | None = None
    postcode: str | None = None
    city: str | None = None
    phone: str | None = None
    email: str | None = None
    website: str | None = None
    phone_windows: dict[str, list[str]] = Field(default_factory=dict)


Invoke = Callable[[str, Mapping[str, Any]], dict[str, Any]]


def parse_request(event: Mapping[str, Any]) -> ContactRequest | None:
    """The request a contacts function was invoked with (None: malformed)."""
    try:
        return ContactRequest.model_validate(event)
    except ValidationError:
        return None


class InvokedContacts:
    """Asks the owning services' contacts functions for a card (through `invoke`: a Lambda
    invocation when deployed). An error, a malformed card or a card for another id is an
    InternalCallError (the event is retried later), never a guess."""

    def __init__(
        self, invoke: Invoke, *, patient_function: str | None, therapist_function: str | None
    ) -> None:
        self._invoke = invoke
        self._patient_function = patient_function
        self._therapist_function = therapist_function

    def _card[Card: BaseModel](
        self, function: str | None, variable: str, card: type[Card], person_id: uuid.UUID
    ) -> Card:
        if not function:
            raise InternalCallError(f"no contacts function is configured ({variable})")
        answer = self._invoke(function, ContactRequest(id=person_id).model_dump(mode="json"))
        try:
            parsed = card.model_validate(answer)
        except ValidationError:
            raise InternalCallError(f"{function} answered no contact card") from None
        if getattr(parsed, "id", None) != person_id:
            raise InternalCallError(f"{function} answered the card of another person")
        return parsed

    def patient(self, patient_id: uuid.UUID) -> PatientContactCard:
        return self._card(self._patient_function, "PATIENT_CONTACTS_FUNCTION", PatientContactCard, patient_id)

    def therapist(self, therapist_id: uuid.UUID) -> TherapistContactCard:
        return self._card(
            self._therapist_function, "THERAPIST_CONTACTS_FUNCTION", TherapistContactCard, therapist_id
        )
