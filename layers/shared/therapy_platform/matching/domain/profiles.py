"""What the matching service knows of a patient or a therapist from its read models, typed.

The read models keep the producers' event payloads as they came (`patient.*`, `therapist.*`);
this module turns one payload into the few fields the matching service shows or checks outside
a round (summaries for therapists, the addressee of a bundle, the staff selection list,
whether a patient can be searched for). Rounds read their candidates through `candidates.py`.
Lenient like the rest of the read side: a missing field is None or empty, never an error.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from therapy_platform.matching.domain.candidates import latest_birth_date, location_of
from therapy_platform.platform.geography.locations import Location


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _km(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _schedule(value: Any) -> dict[str, list[str]]:
    if not isinstance(value, Mapping):
        return {}
    return {str(day): [str(window) for window in windows or ()] for day, windows in value.items()}


@dataclass(frozen=True)
class PatientProfile:
    """A patient as the matching service may use them: never names, addresses or contacts."""

    id: uuid.UUID
    status: str | None = None
    postcode: str | None = None
    location: Location = field(default_factory=Location.unknown)
    birth_date: date | None = None  # the last day of the birth month the events carry
    gender: str | None = None
    symptoms: tuple[str, ...] = ()
    therapy_procedures: tuple[str, ...] = ()
    insurance_type: str | None = None
    previous_therapy: bool = False
    open_to_group_therapy: bool = False
    group_only: bool = False
    availability: dict[str, list[str]] = field(default_factory=dict)
    max_travel_km: float | None = None  # the patient's limit: the inquiry says whether it holds
    # A limit in minutes (domain/travel.py): the inquiry then claims nothing about reach.
    max_travel_minutes: int | None = None

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> PatientProfile:
        return cls(
            id=uuid.UUID(str(payload["id"])),
            status=_text(payload.get("status")),
            postcode=_text(payload.get("postcode")),
            location=location_of(payload),
            birth_date=latest_birth_date(payload.get("birth_month")),
            gender=_text(payload.get("gender")),
            symptoms=tuple(str(s) for s in payload.get("symptoms") or ()),
            therapy_procedures=tuple(str(p) for p in payload.get("therapy_procedures") or ()),
            insurance_type=_text(payload.get("insurance_type")),
            previous_therapy=bool(payload.get("previous_therapy")),
            open_to_group_therapy=bool(payload.get("open_to_group_therapy")),
            group_only=bool(payload.get("group_only")),
            availability=_schedule(payload.get("availability")),
            max_travel_km=_km(payload.get("max_travel_km")),
            max_travel_minutes=(
                None if payload.get("max_travel_minutes") is None else int(payload["max_travel_minutes"])
            ),
        )

    def readiness_problems(self) -> list[str]:
        """Why the patient cannot be searched for yet (empty: ready). A search needs a located
        patient with symptoms and at least one wanted procedure."""
        problems: list[str] = []
        if not self.location.is_known:
            problems.append("the patient's address could not be located (fix the address first)")
        if not self.symptoms:
            problems.append("the patient has no symptoms recorded")
        if not self.therapy_procedures:
            problems.append("the patient wants no therapy procedure")
        if self.status == "in_therapy":
            problems.append("the patient is in therapy")
        return problems


@dataclass(frozen=True)
class TherapistProfile:
    """A therapist as the matching service knows them: the addressee of a bundle (by id, how it
    can be reached) and a row of the staff selection list. Never names or contact data."""

    id: uuid.UUID
    status: str | None = None
    gender: str | None = None
    reachable_by_email: bool = False
    reachable_by_phone: bool = False
    phone_windows: dict[str, list[str]] = field(default_factory=dict)
    postcode: str | None = None
    location: Location = field(default_factory=Location.unknown)
    # Imported from the 116117 directory (a directory id), else registered by hand: the inquiry
    # names the source of the contact data (GDPR Art. 14).
    listed_in_directory: bool = False

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> TherapistProfile:
        return cls(
            id=uuid.UUID(str(payload["id"])),
            status=_text(payload.get("status")),
            gender=_text(payload.get("gender")),
            reachable_by_email=bool(payload.get("reachable_by_email")),
            reachable_by_phone=bool(payload.get("reachable_by_phone")),
            phone_windows=_schedule(payload.get("phone_windows")),
            postcode=_text(payload.get("postcode")),
            location=location_of(payload),
            listed_in_directory=bool(payload.get("from_directory")),
        )

    @property
    def contactable(self) -> bool:
        return self.status == "active"
