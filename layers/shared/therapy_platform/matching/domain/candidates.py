"""Turning the matching service's read models (the patient/therapist event payloads it keeps)
plus its own bookkeeping into the engine's candidates. Pure: the round-input reader hands in
the JSON subset of each profile it read (national scale: no model per row in between).

A read model is the producer's minimal event payload (`contracts.patients.PatientSnapshot`,
`contracts.therapists.TherapistSnapshot`), so this is the one place that knows those field
names on the matching side."""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any, Final

from therapy_platform.contracts.schedule import Weekday, parse_window
from therapy_platform.contracts.therapy import Gender, TherapyProcedure
from therapy_platform.matching.domain.models import (
    SearchCandidate,
    TherapistCandidate,
    TherapistGenderWish,
    solo_practice_key,
)
from therapy_platform.platform.feature_flags import region_of
from therapy_platform.platform.geography.locations import AreaDensity, Location, LocationPrecision, TravelMode
from therapy_platform.platform.geography.postcodes import area_density_of

Profile = Mapping[str, Any]
# Dictionary lookups instead of Enum(value) calls: a national round converts half a million values.
_WEEKDAYS: Final = {day.value: day for day in Weekday}
_GENDERS: Final = {gender.value: gender for gender in Gender}
_TRAVEL_MODES: Final = {mode.value: mode for mode in TravelMode}
_NO_IDS: Final[frozenset[uuid.UUID]] = frozenset()
# About a thousand distinct postcodes per region, each matched against the pattern once.
_region_of: Final = lru_cache(maxsize=65_536)(region_of)


def location_of(profile: Profile) -> Location:
    raw = profile.get("location") or {}
    latitude, longitude = raw.get("latitude"), raw.get("longitude")
    if latitude is None or longitude is None:
        return Location.unknown()
    return _location(float(latitude), float(longitude), raw.get("precision") or LocationPrecision.POSTCODE)


@lru_cache(maxsize=65_536)
def _location(latitude: float, longitude: float, precision: str) -> Location:
    # Most records sit on a postcode centroid, so one Location per distinct point serves many;
    # validated by the producer, so constructed without validation (a national round saves seconds).
    return Location.model_construct(
        latitude=latitude, longitude=longitude, precision=LocationPrecision(precision)
    )


@lru_cache(maxsize=4096)
def _frozen(values: tuple[str, ...]) -> frozenset[str]:
    """Shared frozensets for the few distinct language / symptom lists."""
    return frozenset(values)


@lru_cache(maxsize=64)
def _procedures(values: tuple[str, ...]) -> frozenset[TherapyProcedure]:
    return frozenset(TherapyProcedure(p) for p in values)


def _date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def latest_birth_date(birth_month: Any) -> date | None:
    """The last day of a "YYYY-MM" birth month: the events carry the month only, and the last
    day never makes a patient older than they are (an age rule is never passed too early)."""
    if not birth_month:
        return None
    return _month_end(str(birth_month))


@lru_cache(maxsize=4096)
def _month_end(birth_month: str) -> date:
    # About a thousand distinct months among 100,000 patients: each parsed once.
    year, month = (int(part) for part in birth_month.split("-")[:2])
    return date(year, month, calendar.monthrange(year, month)[1])


def _datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _schedule(raw: Mapping[str, list[str]] | None) -> Mapping[Any, tuple[tuple[int, int], ...]]:
    """A stored weekly schedule as minutes. The producer validated it; here each day's list of
    window strings is parsed once per distinct list (they repeat a lot across 100,000 records)."""
    if not raw:
        return {}
    parsed = {}
    for day, windows in raw.items():
        if windows:
            parsed[_WEEKDAYS[day]] = _day_windows(tuple(windows))
    return parsed


@lru_cache(maxsize=65_536)
def _day_windows(windows: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    return tuple(sorted(parse_window(window) for window in windows))


def _gender(value: Any) -> Gender:
    return _GENDERS.get(value, Gender.UNSPECIFIED)


@dataclass(frozen=True)
class TherapistState:
    """What matching itself knows about a therapist beyond the read model."""

    has_open_bundle: bool = False
    # A cooling period matching started after the read model's last update (None: none newer).
    cooling_until: date | None = None


def effective_practice_key(therapist_id: uuid.UUID, practice_key: str | None) -> str:
    return practice_key or solo_practice_key(therapist_id)


def therapist_candidate(profile: Profile, state: TherapistState = TherapistState()) -> TherapistCandidate:
    therapist_id = uuid.UUID(str(profile["id"]))
    cooling = _date(profile.get("next_contact_allowed_on"))
    if state.cooling_until is not None:
        cooling = state.cooling_until
    preferred_gender = profile.get("preferred_patient_gender")
    return TherapistCandidate(
        id=therapist_id,
        created_at=_datetime(profile["created_at"]),
        status=str(profile.get("status") or "inactive"),
        location=location_of(profile),
        practice_key=profile.get("practice_key"),
        owner_name_rank=int(profile.get("owner_name_rank") or 0),
        title_rank=int(profile.get("title_rank") or 0),
        gender=_gender(profile.get("gender")),
        next_contact_allowed_on=cooling,
        has_open_bundle=state.has_open_bundle,
        procedures=_procedures(tuple(profile.get("procedures") or ())),
        languages=_frozen(tuple(profile.get("languages") or ("de",))),
        preferred_patient_gender=_gender(preferred_gender) if preferred_gender else None,
        preferred_age_min=profile.get("preferred_age_min"),
        preferred_age_max=profile.get("preferred_age_max"),
        offers_group_therapy=bool(profile.get("offers_group_therapy")),
        group_only=bool(profile.get("group_only")),
        working_hours=_schedule(profile.get("working_hours")),
        symptom_preferences=_frozen(tuple(profile.get("symptom_preferences") or ())),
        potentially_available=bool(profile.get("potentially_available")),
        contact_opt_out=bool(profile.get("contact_opt_out")),
        region=_region_of(profile.get("postcode")),
    )


@dataclass(frozen=True)
class SearchState:
    """A search row and its bookkeeping (from the matching service's own tables)."""

    id: uuid.UUID
    patient_id: uuid.UUID
    status: str
    created_at: datetime
    contact_budget: int
    contacts_used: int = 0
    open_bundle_count: int = 0
    contacted_practices: frozenset[str] = frozenset()
    excluded_therapist_ids: frozenset[uuid.UUID] = frozenset()


def _minutes(value: Any) -> int | None:
    return None if value is None else int(value)


def search_candidate(search: SearchState, patient: Profile) -> SearchCandidate:
    """The engine's view of one search. The patient's minutes limit is carried as given; a
    round applies the feature flag `travel_time_reach` to it (domain/travel.py)."""
    wish = patient.get("preferred_therapist_gender") or TherapistGenderWish.ANY
    shared = patient.get("shared_language_required")
    languages = _frozen(tuple(patient.get("languages") or ("de",)))
    if shared is None:
        shared = patient.get("needs_shared_language")
    if shared is None:
        shared = "de" not in languages
    location = location_of(patient)
    max_minutes = _minutes(patient.get("max_travel_minutes"))
    mode = patient.get("travel_mode") or TravelMode.TRANSIT
    excluded = patient.get("excluded_therapist_ids")
    return SearchCandidate(
        id=search.id,
        patient_id=search.patient_id,
        created_at=search.created_at,
        location=location,
        status=search.status,
        birth_date=latest_birth_date(patient.get("birth_month")),
        gender=_gender(patient.get("gender")),
        preferred_therapist_gender=str(wish),
        therapy_procedures=_procedures(tuple(patient.get("therapy_procedures") or list(TherapyProcedure))),
        languages=languages,
        needs_shared_language=bool(shared),
        open_to_group_therapy=bool(patient.get("open_to_group_therapy")),
        group_only=bool(patient.get("group_only")),
        max_travel_km=float(patient.get("max_travel_km") or 25),
        travel_mode=_TRAVEL_MODES.get(mode) or TravelMode(mode),
        max_travel_minutes=max_minutes,
        # Only a minutes limit needs the area (a national round classifies few points).
        travel_area=area_density_of(location) if max_minutes is not None else AreaDensity.SUBURBAN,
        region=_region_of(patient.get("postcode")),
        availability=_schedule(patient.get("availability")),
        symptoms=_frozen(tuple(patient.get("symptoms") or ())),
        patient_excluded_therapist_ids=frozenset(uuid.UUID(str(t)) for t in excluded)
        if excluded
        else _NO_IDS,
        search_excluded_therapist_ids=search.excluded_therapist_ids,
        contacts_used=search.contacts_used,
        contact_budget=search.contact_budget,
        open_bundle_count=search.open_bundle_count,
        contacted_practices=search.contacted_practices,
    )
