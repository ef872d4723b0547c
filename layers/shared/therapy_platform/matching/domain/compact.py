"""Compact forms of the candidates, so that a national round decides millions of (practice,
search) pairs in seconds. Every answer here is the answer of the rules in `rules.py`
(`hard_constraint_failure`, `soft_filters_for`), computed in bulk:

- Practices are numbered in grid order (row, column, practice index), so the practices of
  the cells a search's radius may touch are one contiguous run of numbers per grid row, in
  the order the cells are visited.
- Each hard constraint except distance becomes a bit mask over that numbering: which owners
  pass it for one value of the search's side (a wished gender, an age, a set of procedures).
  A mask is computed once per value by evaluating the rule's own expression once per
  *distinct* owner value (owners share few genders, age ranges, procedure sets), so the
  result is exact; the masks of one search are ANDed once per combination of values.
- Distance: points as unit vectors. The chord between two points decides every pair that
  `within_reach` decides from its spherical distance alone (clearly out, or clearly in
  without a travel-time limit); only pairs near the limit (and every pair with a minutes
  limit) go to `within_reach` itself.
- Weekly schedules become one bit per quarter hour (or per minute when a window does not fall
  on quarter hours), so the availability overlap is the popcount of an AND.
"""

from __future__ import annotations

import math
import uuid
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from datetime import date
from itertools import islice
from operator import truth
from typing import Any, Final

from therapy_platform.contracts.schedule import MINUTES_PER_DAY, Weekday, overlap_minutes, total_minutes
from therapy_platform.matching.domain.models import (
    MatchingConfig,
    Reason,
    Schedule,
    SearchCandidate,
    SoftFilter,
    TherapistCandidate,
    TherapistGenderWish,
)
from therapy_platform.matching.domain.rules import LearnedPreference, Practice, age_on, in_reach
from therapy_platform.platform.geography.locations import MEAN_EARTH_RADIUS_KM, spherical_reach_limits

# ------------------------------------------------------------------------------------ grid

CELL_LAT_DEG: Final = 0.2  # about 22 km
CELL_LON_DEG: Final = 0.3  # about 21 km at 51 degrees north
_KM_PER_DEG_LAT_MIN = 110.5  # a degree of latitude is at least this long anywhere
_KM_PER_DEG_LON_EQUATOR = 111.33
_REACH_MARGIN = 1.01  # the grid only preselects; the exact distance check follows


def grid_cell(latitude: float, longitude: float) -> tuple[int, int]:
    return math.floor(latitude / CELL_LAT_DEG), math.floor(longitude / CELL_LON_DEG)


def grid_window(latitude: float, longitude: float, radius_km: float) -> tuple[int, int, int, int]:
    """Rows and columns (first row, last row, first column, last column) of every cell a
    circle of `radius_km` around the point may touch: a superset of what is in reach."""
    radius_km = radius_km * _REACH_MARGIN + 0.1
    dlat = radius_km / _KM_PER_DEG_LAT_MIN
    widest = min(89.0, max(abs(latitude - dlat), abs(latitude + dlat)))
    dlon = radius_km / (_KM_PER_DEG_LON_EQUATOR * math.cos(math.radians(widest)))
    row_low, col_low = grid_cell(latitude - dlat, longitude - min(dlon, 180.0))
    row_high, col_high = grid_cell(latitude + dlat, longitude + min(dlon, 180.0))
    return row_low, row_high, col_low, col_high


# ------------------------------------------------------------------------------- distance

_ROUNDING = 1e-9  # relative slack between chord and haversine rounding (both are ~1e-15 exact)
_WGS84_A_KM = 6378.137
_WGS84_E2 = (1 / 298.257223563) * (2 - 1 / 298.257223563)
# `approx_geodesic_km` is within 3e-6 of the geodesic up to 400 km and |latitude| 75 (5e-8 below
# 50 km; tests/unit/test_matching_compact.py measures it); a pair it puts this close to the
# limit goes to the geodesic itself.
_APPROX_BAND = 1e-4
_APPROX_MAX_KM = 400.0
_APPROX_MAX_LATITUDE = 75.0


def unit_vector(latitude: float, longitude: float) -> tuple[float, float, float]:
    phi, lam = math.radians(latitude), math.radians(longitude)
    return math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi)


def _chord(km: float) -> float:
    """Chord (unit sphere) of a great-circle distance of `km` on the mean sphere (inf past half
    a great circle)."""
    half_angle = km / (2 * MEAN_EARTH_RADIUS_KM)
    if half_angle >= math.pi / 2:
        return math.inf
    return 2 * math.sin(half_angle)


def approx_geodesic_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float | None:
    """The geodesic distance from the spherical one scaled by the ellipsoid's radii of
    curvature at the mid-latitude in the direction of the line (None outside the range where
    its error is measured: long lines, high latitudes, across the antimeridian)."""
    if abs(lat1) > _APPROX_MAX_LATITUDE or abs(lat2) > _APPROX_MAX_LATITUDE or abs(lon2 - lon1) > 10.0:
        return None
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    middle = (phi1 + phi2) / 2
    dphi = phi2 - phi1
    east = math.radians(lon2 - lon1) * math.cos(middle)
    half = (
        math.sin(dphi / 2) ** 2
        + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    spherical = 2 * MEAN_EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(half)))
    if spherical > _APPROX_MAX_KM:
        return None
    flat = dphi * dphi + east * east
    if flat == 0:
        return spherical
    w = 1 - _WGS84_E2 * math.sin(middle) ** 2
    prime_vertical = _WGS84_A_KM / math.sqrt(w)
    meridional = _WGS84_A_KM * (1 - _WGS84_E2) / (w * math.sqrt(w))
    scale = math.sqrt((meridional**2 * dphi * dphi + prime_vertical**2 * east * east) / flat)
    return spherical * scale / MEAN_EARTH_RADIUS_KM


def _radii_of_curvature(latitude: float) -> tuple[float, float]:
    """(meridional, prime vertical) radius of curvature of the WGS84 ellipsoid in km."""
    w = 1 - _WGS84_E2 * math.sin(math.radians(latitude)) ** 2
    return _WGS84_A_KM * (1 - _WGS84_E2) / (w * math.sqrt(w)), _WGS84_A_KM / math.sqrt(w)


class ReachScreen:
    """`in_reach` for one search and many practices, from the chord between unit vectors.

    Below `surely_in` a pair is in reach and above `surely_out` it is not, exactly as
    `within_reach` decides; `decide` settles what lies between. Why the limits are exact:
    `within_reach` answers from the spherical distance H alone when H is clearly inside or
    outside, and otherwise with "geodesic <= max_km". Along any curve the ellipsoid's length
    element is between M/R and N/R times the sphere's (M <= N: the radii of curvature, R: the
    sphere's radius), so the geodesic G lies between H * M_low / R and H * N_high / R, with M_low
    and N_high taken over the latitudes the two shortest paths can visit (within G of the
    search). Hence H below max_km * R / N_high can only be in reach, H above max_km * R / M_low
    can only be out of reach, whichever way within_reach takes."""

    __slots__ = ("_geodesic_above", "_geodesic_below", "_max_km", "surely_in", "surely_out")

    def __init__(self, search: SearchCandidate) -> None:
        max_km = search.max_travel_km
        self._max_km = max_km
        latitude = search.location.latitude
        if math.isnan(max_km) or max_km < 0 or latitude is None:  # within_reach raises / refuses
            self.surely_in, self.surely_out = -1.0, math.inf
            self._geodesic_above, self._geodesic_below = math.inf, -math.inf
            return
        has_minutes = search.max_travel_minutes is not None
        out_above, in_below = spherical_reach_limits(max_km, has_minutes=has_minutes)
        reach = 1.02 * max_km / 110.5 + 1e-6  # degrees of latitude a path of G <= 1.013 max_km spans
        low, high = max(-90.0, latitude - reach), min(90.0, latitude + reach)
        meridional_low = _radii_of_curvature(0.0 if low <= 0 <= high else min(abs(low), abs(high)))[0]
        prime_vertical_high = _radii_of_curvature(max(abs(low), abs(high)))[1]
        out_km = min(out_above, max_km * MEAN_EARTH_RADIUS_KM / meridional_low * (1 + _ROUNDING))
        self.surely_out = _chord(out_km) * (1 + _ROUNDING) + 1e-12
        out_chord = _chord(out_above)
        self._geodesic_below = out_chord * (1 - _ROUNDING) - 1e-12
        if has_minutes or in_below <= 0:
            self.surely_in = -1.0
            self._geodesic_above = math.inf  # within_reach always needs the geodesic and minutes
        else:
            in_km = max(in_below, max_km * MEAN_EARTH_RADIUS_KM / prime_vertical_high * (1 - _ROUNDING))
            self.surely_in = _chord(in_km) * (1 - _ROUNDING) - 1e-12
            self._geodesic_above = _chord(in_below) * (1 + _ROUNDING) + 1e-12

    def decide(self, chord: float, owner: TherapistCandidate, search: SearchCandidate) -> bool:
        """`in_reach(owner, search)` for a pair whose chord is between the sure limits."""
        if self._geodesic_above < chord < self._geodesic_below:
            # Here within_reach answers "geodesic <= max_km"; a good estimate settles it unless
            # it is very close to the limit.
            a, b = search.location, owner.location
            assert a.latitude is not None and a.longitude is not None  # eligible: known
            assert b.latitude is not None and b.longitude is not None
            estimate = approx_geodesic_km(a.latitude, a.longitude, b.latitude, b.longitude)
            if estimate is not None:
                if estimate < self._max_km * (1 - _APPROX_BAND):
                    return True
                if estimate > self._max_km * (1 + _APPROX_BAND):
                    return False
        return in_reach(owner, search)


# ------------------------------------------------------------------------------ schedules

_QUARTER = 15


_DAY_INDEX: Final = {day: index for index, day in enumerate(Weekday)}


def schedule_bits(schedule: Schedule, unit: int) -> int | None:
    """The schedule as one bit per `unit` minutes of the week (bit (day * 1440 + minute) // unit),
    or None when that would not count minutes as `overlap_minutes` does: a window not on the
    unit, outside the day, or overlapping another window of its day. Keys that are no weekday
    count for nothing, as in `overlap_minutes`."""
    bits = 0
    day_length = MINUTES_PER_DAY // unit
    for day, windows in schedule.items():
        index = _DAY_INDEX.get(day)
        if index is None:
            continue
        day_bits = 0
        length = 0
        for start, end in windows:
            if type(start) is not int or type(end) is not int:
                return None
            if start >= end:
                continue  # shares no minute with anything
            if start < 0 or end > MINUTES_PER_DAY or start % unit or end % unit:
                return None
            day_bits |= ((1 << ((end - start) // unit)) - 1) << (start // unit)
            length += (end - start) // unit
        if day_bits.bit_count() != length:
            return None
        bits |= day_bits << (index * day_length)
    return bits


class ScheduleBits:
    """A schedule's quarter-hour and (when needed) minute bits, computed once."""

    __slots__ = ("_minutes", "_minutes_done", "quarters", "schedule")

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.quarters = schedule_bits(schedule, _QUARTER)
        self._minutes: int | None = None
        self._minutes_done = False

    def minutes(self) -> int | None:
        if not self._minutes_done:
            self._minutes = schedule_bits(self.schedule, 1)
            self._minutes_done = True
        return self._minutes


def shared_minutes(a: ScheduleBits, b: ScheduleBits) -> int:
    """total_minutes(overlap_minutes(a, b))."""
    if a.quarters is not None and b.quarters is not None:
        return (a.quarters & b.quarters).bit_count() * _QUARTER
    minutes_a, minutes_b = a.minutes(), b.minutes()
    if minutes_a is not None and minutes_b is not None:
        return (minutes_a & minutes_b).bit_count()
    return total_minutes(overlap_minutes(a.schedule, b.schedule))


# ------------------------------------------------------------------------------- practices


def _mask(positions: Iterable[int], size: int) -> int:
    """An int with exactly the given bits set (built from a digit string: |= per bit would be
    quadratic for 20,000 bits)."""
    digits = bytearray(b"0" * size)
    for position in positions:
        digits[size - 1 - position] = 0x31
    return int(digits, 2) if size else 0


def _grouped(values: Sequence[Hashable]) -> dict[Any, list[int]]:
    groups: dict[Any, list[int]] = {}
    for position, value in enumerate(values):
        groups.setdefault(value, []).append(position)
    return groups


Checks = list[tuple[Reason, int]]  # (reason, mask of the owners that pass), in rule order
_ANY_GENDER = object()


class PracticeIndex:
    """The eligible practices of a round in grid order, with bit masks per hard constraint.

    Slots 0..n-1 are the grid order; `practice_of[slot]` is the index into the practices the
    index was built from, `practices[slot]` the practice itself."""

    def __init__(self, practices: Sequence[Practice]) -> None:
        cells = []
        for practice in practices:
            location = practice.owner.location
            assert location.latitude is not None and location.longitude is not None  # eligible: known
            cells.append(grid_cell(location.latitude, location.longitude))
        order = sorted(range(len(practices)), key=lambda i: (cells[i], i))
        self.size = size = len(order)
        self.practice_of = order
        self.practices = [practices[i] for i in order]
        owners = [p.owner for p in self.practices]
        # per grid row: the occupied columns and the first slot of each, plus the row's end
        self.rows: dict[int, tuple[list[int], list[int]]] = {}
        for slot, index in enumerate(order):
            row, col = cells[index]
            columns, starts = self.rows.setdefault(row, ([], []))
            if not columns or columns[-1] != col:
                columns.append(col)
                starts.append(slot)
        row_end: dict[int, int] = {}
        for slot, index in enumerate(order):
            row_end[cells[index][0]] = slot + 1
        for row, (_columns, starts) in self.rows.items():
            starts.append(row_end[row])
        points = [unit_vector(o.location.latitude or 0.0, o.location.longitude or 0.0) for o in owners]
        self.points = points
        self._slot_of_key = {p.key: slot for slot, p in enumerate(self.practices)}
        self._slots_of_member: dict[uuid.UUID, list[int]] = {}
        for slot, practice in enumerate(self.practices):
            for member in practice.member_ids:
                self._slots_of_member.setdefault(member, []).append(slot)
        self.full = (1 << size) - 1
        self._by_gender = self._masks([o.gender for o in owners])
        self._by_patient_gender = self._masks([o.preferred_patient_gender for o in owners])
        self._by_age_range = self._masks([(o.preferred_age_min, o.preferred_age_max) for o in owners])
        self._by_procedures = self._masks([o.procedures for o in owners])
        self._by_languages = self._masks([o.languages for o in owners])
        self._offers_group = _mask((s for s, o in enumerate(owners) if o.offers_group_therapy), size)
        self._takes_any = _mask((s for s, o in enumerate(owners) if not o.group_only), size)
        self._rule_masks: dict[tuple[str, Hashable], int] = {}
        self._passing: dict[tuple[Hashable, ...], int] = {}

    def _masks(self, values: Sequence[Hashable]) -> dict[Any, int]:
        return {value: _mask(slots, self.size) for value, slots in _grouped(values).items()}

    def runs(self, latitude: float, longitude: float, radius_km: float) -> list[tuple[int, int]]:
        """(first slot, end slot) per grid row of the practices in every cell a circle may touch,
        in the order the cells are visited (rows, then columns)."""
        row_low, row_high, col_low, col_high = grid_window(latitude, longitude, radius_km)
        found = []
        rows = self.rows
        for row in range(row_low, row_high + 1):
            entry = rows.get(row)
            if entry is None:
                continue
            columns, starts = entry
            first, last = bisect_left(columns, col_low), bisect_right(columns, col_high)
            if first < last:
                found.append((starts[first], starts[last]))
        return found

    # Each rule's own expression, evaluated once per distinct owner value, for one value of the
    # search's side; cached per value.

    def _rule_mask(
        self, rule: str, value: Hashable, groups: dict[Any, int], passes: Callable[[Any], bool]
    ) -> int:
        key = (rule, value)
        mask = self._rule_masks.get(key)
        if mask is None:
            mask = 0
            for owner_value, members in groups.items():
                if passes(owner_value):
                    mask |= members
            self._rule_masks[key] = mask
        return mask

    def _excluded_slots(self, search: SearchCandidate) -> list[tuple[Reason, list[int]]]:
        found: list[tuple[Reason, list[int]]] = []
        if search.contacted_practices:
            slot_of_key = self._slot_of_key
            contacted = [slot_of_key[k] for k in search.contacted_practices if k in slot_of_key]
            if contacted:
                found.append((Reason.ALREADY_SENT_TO_PRACTICE, contacted))
        for reason, excluded_ids in (
            (Reason.EXCLUDED_BY_PATIENT, search.patient_excluded_therapist_ids),
            (Reason.EXCLUDED_BY_SEARCH, search.search_excluded_therapist_ids),
        ):
            if excluded_ids:
                excluded = [s for tid in excluded_ids for s in self._slots_of_member.get(tid, ())]
                if excluded:
                    found.append((reason, excluded))
        return found

    def _rule_checks(self, search: SearchCandidate, age: int | None) -> Checks:
        checks: Checks = []
        # The comparisons are written as the rules write them (a failure is `!=`).
        wish = search.preferred_therapist_gender
        if wish != TherapistGenderWish.ANY:
            mask = self._rule_mask("wish", wish, self._by_gender, lambda gender: not gender != wish)  # noqa: SIM202
            checks.append((Reason.THERAPIST_GENDER_NOT_WANTED, mask))
        gender = search.gender
        mask = self._rule_mask(
            "gender",
            gender,
            self._by_patient_gender,
            lambda wanted: wanted is None or not gender != wanted,  # noqa: SIM202
        )
        checks.append((Reason.PATIENT_GENDER_NOT_WANTED, mask))

        def age_passes(age_range: tuple[int | None, int | None]) -> bool:
            low, high = age_range
            if low is None and high is None:
                return True
            if age is None:
                return False
            return not ((low is not None and age < low) or (high is not None and age > high))

        mask = self._rule_mask("age", age, self._by_age_range, age_passes)
        checks.append((Reason.BIRTH_DATE_UNKNOWN if age is None else Reason.AGE_OUT_OF_RANGE, mask))
        wanted = search.therapy_procedures
        mask = self._rule_mask(
            "procedures", wanted, self._by_procedures, lambda offered: not offered.isdisjoint(wanted)
        )
        checks.append((Reason.NO_SHARED_PROCEDURE, mask))
        if search.group_only:
            checks.append((Reason.GROUP_ONLY_PATIENT, self._offers_group))
        if not search.open_to_group_therapy:
            checks.append((Reason.GROUP_ONLY_THERAPIST, self._takes_any))
        if search.needs_shared_language:
            spoken = search.languages
            mask = self._rule_mask(
                "languages", spoken, self._by_languages, lambda known: not known.isdisjoint(spoken)
            )
            checks.append((Reason.NO_SHARED_LANGUAGE, mask))
        return checks

    def checks(self, search: SearchCandidate, age: int | None) -> Checks:
        """Per hard constraint but distance, in `hard_constraint_failure`'s order, the owners
        that pass it for this search (`age`: the search's age today, None without birth date)."""
        exclusions = [
            (reason, self.full & ~_mask(slots, self.size)) for reason, slots in self._excluded_slots(search)
        ]
        return exclusions + self._rule_checks(search, age)

    def rule_key(self, search: SearchCandidate, age: int | None) -> tuple[Hashable, ...]:
        """What the rules but exclusions and distance look at on the search's side: searches
        with equal keys pass for the same owners."""
        return (
            _ANY_GENDER
            if search.preferred_therapist_gender == TherapistGenderWish.ANY
            else search.preferred_therapist_gender,
            search.gender,
            age,
            search.therapy_procedures,
            bool(search.group_only),
            bool(search.open_to_group_therapy),
            search.languages if search.needs_shared_language else None,
        )

    def passing_rules(self, key: tuple[Hashable, ...], search: SearchCandidate, age: int | None) -> int:
        """The owners that pass every hard constraint but exclusions and distance (`key`:
        `rule_key(search, age)`)."""
        mask = self._passing.get(key)
        if mask is None:
            mask = self.full
            for _reason, rule_mask in self._rule_checks(search, age):
                mask &= rule_mask
            self._passing[key] = mask
        return mask

    def excluded(self, search: SearchCandidate) -> list[int]:
        """The slots of practices this search must not go to (contacted before, excluded)."""
        if (
            search.contacted_practices
            or search.patient_excluded_therapist_ids
            or search.search_excluded_therapist_ids
        ):
            return [slot for _reason, slots in self._excluded_slots(search) for slot in slots]
        return []

    def passing(self, search: SearchCandidate, age: int | None) -> int:
        """The owners that pass every hard constraint but distance for this search."""
        mask = self.passing_rules(self.rule_key(search, age), search, age)
        for slot in self.excluded(search):
            if (mask >> slot) & 1:
                mask ^= 1 << slot
        return mask


class Candidates(list[list[int]]):
    """Per practice slot, the positions of the searches that pass every hard constraint, in
    waiting order; per search key, whether it passed somewhere and whether some practice near
    it broke a rule other than distance."""

    def __init__(self, size: int, searches: int) -> None:
        super().__init__([] for _ in range(size))
        self.matched_somewhere = bytearray(searches)
        self.failed_other_than_distance = bytearray(searches)


# ------------------------------------------------------------------------ soft preferences

PositionPredicate = Callable[[int], Any]  # a soft preference over positions in a search table


class BulkPredicate:
    """A soft preference that also answers for many positions at once, in C (`answers`: one
    byte 0/1 per position)."""

    __slots__ = ("_answers", "_one")

    def __init__(self, one: Callable[[int], bool], answers: Callable[[list[int]], bytes]) -> None:
        self._one = one
        self._answers = answers

    def __call__(self, position: int) -> bool:
        return self._one(position)

    def answers(self, positions: list[int]) -> bytes:
        return self._answers(positions)


class SearchTable:
    """The eligible searches of a round by position, with what soft preferences need."""

    def __init__(self, searches: Sequence[SearchCandidate], today: date) -> None:
        self.searches = searches
        self.ages = [None if s.birth_date is None else age_on(s.birth_date, today) for s in searches]
        self.symptoms = [s.symptoms for s in searches]
        self.open_to_groups = bytes(bool(s.open_to_group_therapy) for s in searches)
        self._availability: list[ScheduleBits | None] = [None] * len(searches)
        # Ages as bytes for C-level age-band tests (only when every age fits in 0..253).
        fits = all(age is None or 0 <= age <= 253 for age in self.ages)
        self.age_bytes = bytes(254 if age is None else age for age in self.ages) if fits else None
        self._symptom_codes: dict[Hashable, int] | None = None
        self._symptom_bits: list[int] = []
        self._age_bands: dict[tuple[int, int], bytes] = {}

    def age_band(self, low: int, high: int) -> bytes:
        """Per age byte (see `age_bytes`; 254: no birth date) 1 when inside [low, high]."""
        band = self._age_bands.get((low, high))
        if band is None:
            band = bytes(1 if age <= 253 and low <= age <= high else 0 for age in range(256))
            self._age_bands[(low, high)] = band
        return band

    def symptom_code(self, symptoms: Iterable[Hashable]) -> int:
        """A bit per symptom any search names (equal values share a bit, as in a set)."""
        if self._symptom_codes is None:
            self._symptom_codes = {}
            for named in self.symptoms:
                for symptom in named:
                    self._symptom_codes.setdefault(symptom, len(self._symptom_codes))
            self._symptom_bits = [self.symptom_code(named) for named in self.symptoms]
        codes = self._symptom_codes
        return sum(1 << codes[symptom] for symptom in set(symptoms) if symptom in codes)

    def symptom_bits(self) -> list[int]:
        self.symptom_code(())
        return self._symptom_bits

    def availability(self, position: int) -> ScheduleBits:
        bits = self._availability[position]
        if bits is None:
            bits = self._availability[position] = ScheduleBits(self.searches[position].availability)
        return bits


def soft_filters_by_position(
    owner: TherapistCandidate,
    table: SearchTable,
    config: MatchingConfig,
    learned: LearnedPreference | None = None,
) -> list[tuple[SoftFilter, PositionPredicate]]:
    """`soft_filters_for` over positions in `table`: the same filters, in the same order, with
    the same answers."""
    searches, ages = table.searches, table.ages
    filters: list[tuple[SoftFilter, PositionPredicate]] = []
    if owner.working_hours:
        hours = ScheduleBits(owner.working_hours)
        needed = config.min_availability_overlap_minutes

        def available(position: int) -> bool:
            if not searches[position].availability:
                return True  # a patient who gave no availability can come any time
            return shared_minutes(table.availability(position), hours) >= needed

        filters.append((SoftFilter.AVAILABILITY, available))
    if owner.symptom_preferences:
        # not wanted.isdisjoint(symptoms) as bits: a shared symptom is a shared bit
        wanted = table.symptom_code(owner.symptom_preferences)
        by_position = table.symptom_bits()

        def shares_symptom(position: int) -> bool:
            return bool(by_position[position] & wanted)

        def share_symptoms(positions: list[int]) -> bytes:
            return bytes(map(truth, map(wanted.__and__, map(by_position.__getitem__, positions))))

        filters.append((SoftFilter.SYMPTOM_PREFERENCES, BulkPredicate(shares_symptom, share_symptoms)))
    if owner.preferred_age_band is not None:
        low, high = owner.preferred_age_band

        def in_band(position: int) -> bool:
            age = ages[position]
            return age is not None and low <= age <= high

        age_bytes = table.age_bytes
        if age_bytes is None:
            filters.append((SoftFilter.AGE_BAND, in_band))
        else:
            band = table.age_band(low, high)

            def all_in_band(positions: list[int]) -> bytes:
                return bytes(map(age_bytes.__getitem__, positions)).translate(band)

            filters.append((SoftFilter.AGE_BAND, BulkPredicate(in_band, all_in_band)))
    if owner.offers_group_therapy:
        groups = table.open_to_groups

        def open_to_group(position: int) -> bool:
            return bool(groups[position])

        def all_open_to_group(positions: list[int]) -> bytes:
            return bytes(map(groups.__getitem__, positions))

        filters.append((SoftFilter.GROUP_PREFERENCE, BulkPredicate(open_to_group, all_open_to_group)))
    if learned is not None:
        filters.append((SoftFilter.LEARNED_PREFERENCES, lambda p: learned(owner, searches[p])))
    return filters


_EXPENSIVE: Final = frozenset({SoftFilter.AVAILABILITY, SoftFilter.LEARNED_PREFERENCES})
_TO_DIGITS = bytes.maketrans(b"\x00\x01", b"01")


def _bits(answers: bytes) -> int:
    """Bit i set when the i-th answer (0 or 1) is 1."""
    digits = answers.translate(_TO_DIGITS)[::-1]
    return int(digits, 2) if digits else 0


class _Pool:
    """A practice's candidates, pulled from `source` only as far as they are asked for, with
    the answers of every cheap soft filter as a bit mask over what was pulled and the answers
    of expensive ones (availability, learned) asked once, only where still needed."""

    def __init__(
        self, source: Iterator[int], filters: Sequence[tuple[SoftFilter, PositionPredicate]]
    ) -> None:
        self.items: list[int] = []
        self._source = source
        self._exhausted = False
        self._cheap = [
            (which, predicate) for which, (name, predicate) in enumerate(filters) if name not in _EXPENSIVE
        ]
        self._masks = dict.fromkeys((which for which, _ in self._cheap), 0)
        self._expensive = {
            which: predicate for which, (name, predicate) in enumerate(filters) if name in _EXPENSIVE
        }
        self._answers: dict[int, dict[int, bool]] = {which: {} for which in self._expensive}

    def _grow(self) -> None:
        wanted = max(16, len(self.items))
        chunk = list(islice(self._source, wanted))
        self._exhausted = len(chunk) < wanted
        offset = len(self.items)
        self.items.extend(chunk)
        for which, predicate in self._cheap:
            if isinstance(predicate, BulkPredicate):
                answers = predicate.answers(chunk)
            else:
                answers = bytes(map(truth, map(predicate, chunk)))
            self._masks[which] |= _bits(answers) << offset

    def first(self, checks: Sequence[int], count: int) -> list[int]:
        """Indexes (into `items`) of the first `count` candidates that pass every filter in
        `checks`, or all of them when there are fewer."""
        found: list[int] = []
        if count <= 0:
            return found
        cheap = [self._masks[which] for which in checks if which in self._masks]
        expensive = [
            (self._expensive[which], self._answers[which]) for which in checks if which in self._answers
        ]
        scanned = 0
        while True:
            bits = (1 << len(self.items)) - 1
            for mask in cheap:
                bits &= mask
            bits >>= scanned
            while bits:
                lowest = bits & -bits
                bits ^= lowest
                index = scanned + lowest.bit_length() - 1
                position = self.items[index]
                for predicate, answers in expensive:
                    answer = answers.get(index)
                    if answer is None:
                        answer = answers[index] = bool(predicate(position))
                    if not answer:
                        break
                else:
                    found.append(index)
                    if len(found) >= count:
                        return found
            scanned = len(self.items)
            if self._exhausted:
                return found
            self._grow()
            cheap = [self._masks[which] for which in checks if which in self._masks]


def choose_members(
    candidates: Iterator[int],
    filters: Sequence[tuple[SoftFilter, PositionPredicate]],
    minimum: int,
    take: int,
) -> tuple[list[int], tuple[SoftFilter, ...], tuple[SoftFilter, ...]] | None:
    """What `progressive_filter(candidates, filters, minimum)` keeps first (up to `take`), with
    the applied and skipped filters; None when there are fewer than `minimum` candidates at all.
    Asks only what the answer depends on: whether a filter is kept needs just `minimum`
    candidates that pass it and the filters kept before it, so candidates are pulled from the
    iterator only as far as needed."""
    pool = _Pool(candidates, filters)
    if len(pool.first((), minimum)) < minimum:
        return None
    applied: list[int] = []
    skipped: list[SoftFilter] = []
    for which, (name, _predicate) in enumerate(filters):
        if len(pool.first([*applied, which], minimum)) >= minimum:
            applied.append(which)
        else:
            skipped.append(name)
    kept = [pool.items[index] for index in pool.first(applied, take)]
    return kept, tuple(filters[which][0] for which in applied), tuple(skipped)
