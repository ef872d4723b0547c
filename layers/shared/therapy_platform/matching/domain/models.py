"""Inputs, configuration and reason codes of the matching engine.

The engine is pure: the database side reads its read models and builds these small frozen
values (`TherapistCandidate`, `SearchCandidate`), the engine decides, and the database side
writes what it decided. Plain frozen dataclasses, not pydantic models: a national round
builds 135,000 of them and validation belongs to the services that own the records.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Final

from therapy_platform.contracts.schedule import Weekday, Window
from therapy_platform.contracts.therapy import Gender, TherapyProcedure
from therapy_platform.platform.geography.locations import AreaDensity, Location, TravelMode

Schedule = Mapping[Weekday, tuple[Window, ...]]  # minutes after midnight, as windows_in_minutes gives


class SearchStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    PLACED = "placed"
    CANCELLED = "cancelled"


class TherapistGenderWish(StrEnum):
    """The patient's wish about the therapist's gender (the patient record's values)."""

    MALE = "male"
    FEMALE = "female"
    DIVERSE = "diverse"
    ANY = "any"


@dataclass(frozen=True)
class MatchingConfig:
    min_bundle_size: int = 3  # automatic rounds: fewer candidates, no bundle
    max_bundle_size: int = 6
    staff_min_bundle_size: int = 1  # a bundle staff build for a chosen therapist
    max_open_bundles_per_search: int = 3  # draft or sent bundles a search may be in at once
    cooling_days: int = 28  # after any response: no contact before response date + this
    min_availability_overlap_minutes: int = 60  # soft filter: weekly minutes patient and therapist share

    def __post_init__(self) -> None:
        if not 1 <= self.staff_min_bundle_size <= self.min_bundle_size <= self.max_bundle_size:
            raise ValueError("bundle sizes must satisfy 1 <= staff minimum <= minimum <= maximum")
        if self.max_open_bundles_per_search < 1 or self.cooling_days < 0:
            raise ValueError("open-bundle limit must be >= 1 and cooling days >= 0")


DEFAULT_CONFIG: Final = MatchingConfig()


def solo_practice_key(therapist_id: uuid.UUID) -> str:
    """A therapist without email is a practice of their own."""
    return f"therapist:{therapist_id}"


@dataclass(frozen=True)
class TherapistCandidate:
    """What matching needs of one therapist (from the therapist read model plus open bundles)."""

    id: uuid.UUID
    created_at: datetime
    status: str  # TherapistStatus value: only "active" may receive bundles
    location: Location
    practice_key: str | None = None  # hashed shared address (contracts/practices.py); None: solo
    # Who owns the practice (contracts/practices.py): the last name's length when the practice
    # address carries it, and Prof. 2 / Dr. 1 / other 0. No names or addresses in matching.
    owner_name_rank: int = 0
    title_rank: int = 0
    gender: Gender = Gender.UNSPECIFIED
    next_contact_allowed_on: date | None = None
    has_open_bundle: bool = False  # a draft or sent bundle addressed to this therapist
    procedures: frozenset[TherapyProcedure] = frozenset()
    languages: frozenset[str] = frozenset({"de"})
    preferred_patient_gender: Gender | None = None
    preferred_age_min: int | None = None
    preferred_age_max: int | None = None
    offers_group_therapy: bool = False
    group_only: bool = False
    working_hours: Schedule = field(default_factory=dict)
    symptom_preferences: frozenset[str] = frozenset()
    # Soft: an age band the therapist prefers within the hard range (None: no soft preference).
    preferred_age_band: tuple[int, int] | None = None
    potentially_available: bool = False
    # GDPR Art. 21: the therapist objected to inquiries (therapist events' `contact_opt_out`).
    contact_opt_out: bool = False
    # The two-digit postcode region of the practice (feature flag `automatic_rounds` per region).
    region: str | None = None

    @property
    def practice(self) -> str:
        return self.practice_key or solo_practice_key(self.id)


@dataclass(frozen=True)
class SearchCandidate:
    """What matching needs of one patient search (search row plus the patient read model)."""

    id: uuid.UUID
    patient_id: uuid.UUID
    created_at: datetime  # the start of waiting
    location: Location
    status: str = SearchStatus.ACTIVE
    birth_date: date | None = None
    gender: Gender = Gender.UNSPECIFIED
    preferred_therapist_gender: str = TherapistGenderWish.ANY
    therapy_procedures: frozenset[TherapyProcedure] = frozenset(TherapyProcedure)
    languages: frozenset[str] = frozenset({"de"})
    needs_shared_language: bool = False  # Patient.shared_language_required
    open_to_group_therapy: bool = False
    group_only: bool = False
    max_travel_km: float = 25.0
    travel_mode: TravelMode = TravelMode.TRANSIT
    # A limit in estimated minutes for `travel_mode` (matching/domain/travel.py): only set when
    # the feature flag `travel_time_reach` is on for the search; `max_travel_km` is then the
    # minutes' search radius (reach_bound_km), no limit of its own.
    max_travel_minutes: int | None = None
    travel_area: AreaDensity = AreaDensity.SUBURBAN  # the patient's area class (postcode density)
    region: str | None = None  # the patient's two-digit postcode region (feature flags)
    availability: Schedule = field(default_factory=dict)
    symptoms: frozenset[str] = frozenset()
    patient_excluded_therapist_ids: frozenset[uuid.UUID] = frozenset()
    search_excluded_therapist_ids: frozenset[uuid.UUID] = frozenset()
    contacts_used: int = 0
    contact_budget: int = 0  # total_requested_contacts
    open_bundle_count: int = 0  # draft or sent bundles this search is in
    contacted_practices: frozenset[str] = frozenset()  # practice keys of every earlier bundle


class Reason(StrEnum):
    """Why a therapist, a search or a (therapist, search) pair was left out."""

    # therapist / practice eligibility
    THERAPIST_NOT_ACTIVE = "therapist_not_active"
    IN_COOLING_PERIOD = "in_cooling_period"
    OPEN_BUNDLE = "open_bundle"
    PRACTICE_OPEN_BUNDLE = "practice_open_bundle"
    PRACTICE_IN_COOLING_PERIOD = "practice_in_cooling_period"
    THERAPIST_LOCATION_UNKNOWN = "therapist_location_unknown"
    CONTACT_OPT_OUT = "contact_opt_out"  # the therapist objected to inquiries (GDPR Art. 21)
    PRACTICE_CONTACT_OPT_OUT = "practice_contact_opt_out"  # a colleague sharing the mailbox objected
    NOT_PRACTICE_OWNER = "not_practice_owner"  # a colleague receives the practice's bundle
    TOO_FEW_CANDIDATES = "too_few_candidates"
    # search eligibility
    SEARCH_NOT_ACTIVE = "search_not_active"
    CONTACT_BUDGET_USED = "contact_budget_used"
    OPEN_BUNDLE_LIMIT = "open_bundle_limit"
    PATIENT_LOCATION_UNKNOWN = "patient_location_unknown"
    NO_THERAPIST_IN_REACH = "no_therapist_in_reach"
    NO_MATCHING_THERAPIST = "no_matching_therapist"
    NOT_CHOSEN = "not_chosen"  # matched somewhere but every bundle was filled by longer waiters
    # matched somewhere, but everywhere a soft preference left it out (the one that decided it)
    NOT_CHOSEN_AVAILABILITY = "not_chosen_availability"
    NOT_CHOSEN_SYMPTOM_PREFERENCES = "not_chosen_symptom_preferences"
    NOT_CHOSEN_AGE_BAND = "not_chosen_age_band"
    NOT_CHOSEN_GROUP_PREFERENCE = "not_chosen_group_preference"
    NOT_CHOSEN_LEARNED_PREFERENCES = "not_chosen_learned_preferences"
    # hard constraints per pair
    OUT_OF_REACH = "out_of_reach"
    EXCLUDED_BY_PATIENT = "excluded_by_patient"
    EXCLUDED_BY_SEARCH = "excluded_by_search"
    THERAPIST_GENDER_NOT_WANTED = "therapist_gender_not_wanted"
    PATIENT_GENDER_NOT_WANTED = "patient_gender_not_wanted"
    BIRTH_DATE_UNKNOWN = "birth_date_unknown"
    AGE_OUT_OF_RANGE = "age_out_of_range"
    NO_SHARED_PROCEDURE = "no_shared_procedure"
    GROUP_ONLY_PATIENT = "group_only_patient"  # therapist offers no groups
    GROUP_ONLY_THERAPIST = "group_only_therapist"  # patient not open to groups
    NO_SHARED_LANGUAGE = "no_shared_language"
    ALREADY_SENT_TO_PRACTICE = "already_sent_to_practice"
    # within a round
    SOFT_FILTER = "soft_filter"  # dropped by a kept soft preference (the decision names it)
    BUNDLE_FULL = "bundle_full"  # longer waiters took the places
    SEARCH_LIMIT_REACHED = "search_limit_reached"  # budget / open-bundle limit used up this round
    PATIENT_ALREADY_IN_BUNDLE = "patient_already_in_bundle"  # another search of the same patient
    NOT_IN_SELECTION = "not_in_selection"  # staff bundle limited to chosen searches


class SoftFilter(StrEnum):
    """Soft preferences, most specific first: the order progressive filtering tries them."""

    AVAILABILITY = "availability"
    SYMPTOM_PREFERENCES = "symptom_preferences"
    AGE_BAND = "age_band"
    GROUP_PREFERENCE = "group_preference"
    LEARNED_PREFERENCES = "learned_preferences"
