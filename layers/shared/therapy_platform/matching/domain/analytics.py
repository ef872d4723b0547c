"""Analytics over the matching service's own data (pure): the queries staff may ask, the raw
counts the SQL adapter answers, the figures derived from them, and their CSV form.

Rules chosen where the domain is silent (docs/analytics.md says the same for staff):
- A period is whole calendar days in Germany (`date_from` 00:00 to the end of `date_to`,
  Europe/Berlin), at most `MAX_PERIOD_DAYS` long. Bundles count in the period they were *sent*
  in; searches (the placement funnel) in the period they *started* in.
- A bundle's size is its number of members; a *placement* of a bundle is a member whose
  acceptance placed the patient (member `accepted` and the search placed with that therapist;
  a later acceptance of a placed patient is a `conflict`, not a placement).
- Response rate = answered / sent; time to answer = answered_at - sent_at in days.
- Therapist preferences describe the patient as the matching read model holds them *now*
  (symptoms, age band, procedures wanted, insurance type, languages) and the distance between
  the patient's and the therapist's located postcodes; an erased patient counts as `unknown`.
- A region is a postcode prefix: the therapist's for bundles and preferences, the patient's
  for the placement funnel.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from therapy_platform.platform.clock import PLATFORM_TIMEZONE
from therapy_platform.platform.validation import FieldRuleError, FieldValidationError

MAX_PERIOD_DAYS: Final = 1100  # three years: enough for trends, bounded for the database
EARLIEST_DAY: Final = date(2000, 1, 1)  # no record of the platform is older
LATEST_DAY: Final = date(2100, 12, 31)
BUNDLE_SIZES_SHOWN: Final = (3, 4, 5, 6)  # always listed (zeros included) so sizes compare
MAX_BUNDLE_SIZE: Final = 6

# Age bands (lower bound inclusive, the last open), the same bands the patient service's
# anonymous statistics use; distance bands those a therapist is told in an inquiry.
AGE_BANDS: Final[tuple[tuple[int, int | None], ...]] = (
    (0, 18),
    (18, 25),
    (25, 35),
    (35, 45),
    (45, 55),
    (55, 65),
    (65, None),
)
DISTANCE_BANDS: Final[tuple[tuple[float, str], ...]] = (
    (5.0, "up to 5 km"),
    (10.0, "5-10 km"),
    (25.0, "10-25 km"),
)
DISTANCE_BEYOND: Final = "more than 25 km"
UNKNOWN: Final = "unknown"

PostcodePrefix = Annotated[str, StringConstraints(pattern=r"^\d{1,5}$")]


class AnalyticsFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


class Dimension(StrEnum):
    """What a therapist's answers are broken down by (each a field of matching's read models)."""

    SYMPTOM = "symptom"
    AGE_BAND = "age_band"
    DISTANCE_BAND = "distance_band"
    PROCEDURE = "procedure"
    INSURANCE_TYPE = "insurance_type"
    LANGUAGE = "language"


class PreferenceGrouping(StrEnum):
    THERAPIST = "therapist"
    REGION = "region"


def age_band_label(low: int, high: int | None) -> str:
    return f"{low}+" if high is None else f"{low}-{high - 1}"


def age_band(age: int | None) -> str:
    if age is None or age < 0:
        return UNKNOWN
    for low, high in AGE_BANDS:
        if high is None or low <= age < high:
            return age_band_label(low, high)
    return UNKNOWN  # unreachable: the last band is open


def distance_band(km: float | None) -> str:
    if km is None:
        return UNKNOWN
    for limit, label in DISTANCE_BANDS:
        if km <= limit:
            return label
    return DISTANCE_BEYOND


# ---------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class Period:
    date_from: date
    date_to: date

    @property
    def start(self) -> datetime:
        """The first instant (UTC) of `date_from` in Germany."""
        return _german_midnight(self.date_from)

    @property
    def end(self) -> datetime:
        """The first instant (UTC) after `date_to` in Germany (exclusive)."""
        return _german_midnight(self.date_to + timedelta(days=1))


def _german_midnight(day: date) -> datetime:
    try:
        zone = ZoneInfo(PLATFORM_TIMEZONE)
    except ZoneInfoNotFoundError:  # a runtime without tz data: UTC days
        return datetime.combine(day, time(), tzinfo=UTC)
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def period(date_from: date, date_to: date) -> Period:
    """The period asked for; 422 naming `from` or `to` when a day lies outside 2000-2100, and
    `to` when the period ends before it starts or is too long."""
    if date_from < EARLIEST_DAY:
        rule = FieldRuleError("too_far_in_past", f"frühestens {EARLIEST_DAY.isoformat()}")
        raise FieldValidationError.for_fields({"from": rule}, location="query")
    if date_to > LATEST_DAY:
        rule = FieldRuleError("too_far_ahead", f"spätestens {LATEST_DAY.isoformat()}")
        raise FieldValidationError.for_fields({"to": rule}, location="query")
    if date_to < date_from:
        rule = FieldRuleError("too_early", "liegt vor dem Beginn des Zeitraums (from)")
        raise FieldValidationError.for_fields({"to": rule}, location="query")
    if (date_to - date_from).days + 1 > MAX_PERIOD_DAYS:
        rule = FieldRuleError("too_large", f"Zeitraum höchstens {MAX_PERIOD_DAYS} Tage")
        raise FieldValidationError.for_fields({"to": rule}, location="query")
    return Period(date_from, date_to)


@dataclass(frozen=True)
class BundleEfficiencyQuery:
    period: Period
    region: str | None = None
    bundle_size: int | None = None


@dataclass(frozen=True)
class PreferenceQuery:
    period: Period
    grouping: PreferenceGrouping = PreferenceGrouping.THERAPIST
    region: str | None = None
    region_digits: int = 2
    therapist_id: uuid.UUID | None = None
    page: int = 1
    limit: int = 50
    learned: bool = False  # add each therapist's learned estimates (reads every answer: slower)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


@dataclass(frozen=True)
class PlacementQuery:
    period: Period
    region: str | None = None
    region_digits: int = 2
    longest: int = 10


# ---------------------------------------------------------------------------- raw counts


@dataclass(frozen=True)
class BundleCounts:
    """What the adapter counts for one bundle size (None: every size) in the period."""

    bundle_size: int | None
    sent: int = 0
    answered: int = 0
    expired: int = 0
    members: int = 0
    accepted: int = 0
    placements: int = 0
    rejected_unsuitable: int = 0
    answer_days_median: float | None = None
    answer_days_p90: float | None = None


@dataclass(frozen=True)
class OutcomeTally:
    """One group's (a therapist's or a region's) answers for one attribute value."""

    group: str  # a therapist id or a region
    dimension: Dimension | None  # None: the group's totals
    value: str
    offered: int
    accepted: int
    rejected_capacity: int
    rejected_unsuitable: int
    rejected_other: int
    no_response: int


@dataclass(frozen=True)
class FunnelCounts:
    region: str | None  # None with month None: every search in the period
    month: str | None
    searches: int
    registered_known: int
    with_first_bundle: int
    with_first_acceptance: int
    placed: int
    contacts_of_placed: int
    step_days: Mapping[str, tuple[float | None, float | None]]  # step -> (median, p90)


@dataclass(frozen=True)
class WaitingRow:
    search_id: uuid.UUID
    region: str | None
    started_at: datetime
    status: str
    contacts_used: int
    open_bundles: int


# ---------------------------------------------------------------------------- answers


def _ratio(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def _days(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


class EfficiencyFigures(BaseModel):
    model_config = ConfigDict(frozen=True)

    bundle_size: int | None = Field(description="Members per bundle; null: every size together")
    bundles_sent: int = Field(ge=0, description="Bundles sent in the period")
    answered: int = Field(ge=0)
    expired: int = Field(ge=0)
    still_open: int = Field(ge=0, description="Sent, neither answered nor expired yet")
    response_rate: float | None = Field(description="answered / sent (null: nothing sent)")
    answer_days_median: float | None = Field(description="Days from sending to the answer, median")
    answer_days_p90: float | None = Field(description="Days from sending to the answer, 90th percentile")
    members: int = Field(ge=0, description="Patients offered in these bundles")
    acceptances: int = Field(ge=0)
    acceptances_per_bundle: float | None
    placements: int = Field(ge=0, description="Acceptances that placed the patient")
    placements_per_bundle: float | None
    rejected_unsuitable: int = Field(ge=0)
    rejected_unsuitable_share: float | None = Field(description="rejected_unsuitable / members")


def efficiency_figures(counts: BundleCounts) -> EfficiencyFigures:
    return EfficiencyFigures(
        bundle_size=counts.bundle_size,
        bundles_sent=counts.sent,
        answered=counts.answered,
        expired=counts.expired,
        still_open=counts.sent - counts.answered - counts.expired,
        response_rate=_ratio(counts.answered, counts.sent),
        answer_days_median=_days(counts.answer_days_median),
        answer_days_p90=_days(counts.answer_days_p90),
        members=counts.members,
        acceptances=counts.accepted,
        acceptances_per_bundle=_ratio(counts.accepted, counts.sent),
        placements=counts.placements,
        placements_per_bundle=_ratio(counts.placements, counts.sent),
        rejected_unsuitable=counts.rejected_unsuitable,
        rejected_unsuitable_share=_ratio(counts.rejected_unsuitable, counts.members),
    )


class BundleEfficiency(BaseModel):
    model_config = ConfigDict(frozen=True)

    date_from: date
    date_to: date
    region: str | None = Field(description="Therapists' postcode prefix; null: everywhere")
    bundle_size: int | None = Field(description="The size asked for; null: every size")
    total: EfficiencyFigures
    by_size: list[EfficiencyFigures] = Field(description="One row per size, 3-6 always listed")


def bundle_efficiency(query: BundleEfficiencyQuery, counts: Iterable[BundleCounts]) -> BundleEfficiency:
    by_size: dict[int, BundleCounts] = {}
    total = BundleCounts(bundle_size=None)
    for row in counts:
        if row.bundle_size is None:
            total = row
        else:
            by_size[row.bundle_size] = row
    shown = {query.bundle_size} if query.bundle_size is not None else {*BUNDLE_SIZES_SHOWN, *by_size}
    return BundleEfficiency(
        date_from=query.period.date_from,
        date_to=query.period.date_to,
        region=query.region,
        bundle_size=query.bundle_size,
        total=efficiency_figures(total),
        by_size=[efficiency_figures(by_size.get(size, BundleCounts(size))) for size in sorted(shown)],
    )


class AnswerCounts(BaseModel):
    model_config = ConfigDict(frozen=True)

    offered: int = Field(ge=0, description="Patients offered (members of bundles sent in the period)")
    accepted: int = Field(ge=0)
    declined: int = Field(ge=0, description="Rejected for any reason")
    declined_capacity: int = Field(ge=0)
    declined_unsuitable: int = Field(ge=0)
    declined_other: int = Field(ge=0)
    no_response: int = Field(ge=0)
    open: int = Field(ge=0, description="No outcome yet (pending, or withdrawn before an answer)")
    acceptance_rate: float | None = Field(description="accepted / (accepted + declined); counts first")


class AttributeCounts(AnswerCounts):
    dimension: Dimension
    value: str = Field(description="A catalogue code, an age or distance band, or `unknown`")


class LearnedEstimate(BaseModel):
    """What the learned-preferences model (matching/domain/preferences.py) holds about one
    therapist and one patient feature, over every answer so far (not only the period's)."""

    model_config = ConfigDict(frozen=True)

    feature: str = Field(
        description="`overall` (the baseline), `symptom:<code>`, `age:<band>`, `km:<band>`, "
        "`procedure:<code>` or `language:shared`"
    )
    accepted: int = Field(ge=0, description="The therapist's acceptances of patients with the feature")
    answered: int = Field(
        ge=0,
        description="Their answers that say something about the patient: accepted, "
        "declined as unsuitable or for other reasons (not for capacity, not unanswered)",
    )
    prior: float = Field(ge=0, le=1, description="The region's rate the estimate is shrunk towards")
    posterior: float = Field(
        ge=0, le=1, description="The therapist's learned acceptance (shrunk: few answers stay near the prior)"
    )


class PreferenceGroup(BaseModel):
    model_config = ConfigDict(frozen=True)

    therapist_id: uuid.UUID | None = Field(description="Set when grouped by therapist")
    region: str | None = Field(description="Set when grouped by region (therapists' postcode prefix)")
    totals: AnswerCounts
    attributes: list[AttributeCounts] = Field(description="By dimension, then value")
    learned: list[LearnedEstimate] = Field(
        default_factory=list,
        description="By therapist only: the learned acceptance per feature (posterior beside the "
        "counts and the prior), `overall` first; empty for a therapist without informative answers",
    )


def _answer_counts(tally: OutcomeTally) -> dict[str, object]:
    declined = tally.rejected_capacity + tally.rejected_unsuitable + tally.rejected_other
    answered = tally.accepted + tally.no_response + declined
    return {
        "offered": tally.offered,
        "accepted": tally.accepted,
        "declined": declined,
        "declined_capacity": tally.rejected_capacity,
        "declined_unsuitable": tally.rejected_unsuitable,
        "declined_other": tally.rejected_other,
        "no_response": tally.no_response,
        "open": max(0, tally.offered - answered),
        "acceptance_rate": _ratio(tally.accepted, tally.accepted + declined),
    }


_DIMENSION_ORDER: Final = {dimension: index for index, dimension in enumerate(Dimension)}


def preference_groups(query: PreferenceQuery, tallies: Iterable[OutcomeTally]) -> list[PreferenceGroup]:
    """One group per therapist (or region) in the order the tallies name them first."""
    totals: dict[str, OutcomeTally] = {}
    attributes: dict[str, list[OutcomeTally]] = {}
    for tally in tallies:
        if tally.dimension is None:
            totals[tally.group] = tally
        else:
            attributes.setdefault(tally.group, []).append(tally)
        attributes.setdefault(tally.group, [])
    by_therapist = query.grouping is PreferenceGrouping.THERAPIST
    groups = []
    for group, rows in attributes.items():
        empty = OutcomeTally(group, None, "", 0, 0, 0, 0, 0, 0)
        ordered = sorted(rows, key=lambda t: (_DIMENSION_ORDER[t.dimension or Dimension.SYMPTOM], t.value))
        groups.append(
            PreferenceGroup(
                therapist_id=uuid.UUID(group) if by_therapist else None,
                region=None if by_therapist else group,
                totals=AnswerCounts.model_validate(_answer_counts(totals.get(group, empty))),
                attributes=[
                    AttributeCounts.model_validate(
                        {"dimension": t.dimension, "value": t.value, **_answer_counts(t)}
                    )
                    for t in ordered
                ],
            )
        )
    return groups


FUNNEL_STEPS: Final = (
    "registration_to_search",
    "search_to_first_bundle",
    "first_bundle_to_first_acceptance",
    "first_acceptance_to_placement",
    "search_to_placement",
)


class StepDays(BaseModel):
    model_config = ConfigDict(frozen=True)

    step: str = Field(description="From one stage of the funnel to the next")
    median: float | None
    p90: float | None


class FunnelFigures(BaseModel):
    model_config = ConfigDict(frozen=True)

    region: str | None = Field(description="Patients' postcode prefix; null in the total row")
    month: str | None = Field(description='Month the searches started, "YYYY-MM"; null in the total row')
    searches_started: int = Field(ge=0)
    registration_known: int = Field(ge=0, description="Searches whose patient's registration is known")
    reached_first_bundle: int = Field(ge=0)
    reached_first_acceptance: int = Field(ge=0)
    placed: int = Field(ge=0)
    placement_rate: float | None = Field(description="placed / searches started")
    contacts_per_placement: float | None = Field(
        description="Bundles that listed the placed searches, per placement"
    )
    days: list[StepDays]


class WaitingSearch(BaseModel):
    model_config = ConfigDict(frozen=True)

    search_id: uuid.UUID
    region: str | None
    status: str
    started_at: datetime
    waiting_days: int = Field(ge=0)
    contacts_used: int = Field(ge=0)
    open_bundles: int = Field(ge=0)


class Placements(BaseModel):
    model_config = ConfigDict(frozen=True)

    date_from: date
    date_to: date
    region: str | None
    region_digits: int
    total: FunnelFigures
    by_region_month: list[FunnelFigures]
    waiting_longest: list[WaitingSearch] = Field(
        description="Unfinished searches waiting longest (any start date), longest first"
    )


def funnel_figures(counts: FunnelCounts) -> FunnelFigures:
    return FunnelFigures(
        region=counts.region,
        month=counts.month,
        searches_started=counts.searches,
        registration_known=counts.registered_known,
        reached_first_bundle=counts.with_first_bundle,
        reached_first_acceptance=counts.with_first_acceptance,
        placed=counts.placed,
        placement_rate=_ratio(counts.placed, counts.searches),
        contacts_per_placement=_ratio(counts.contacts_of_placed, counts.placed),
        days=[
            StepDays(
                step=step,
                median=_days(counts.step_days.get(step, (None, None))[0]),
                p90=_days(counts.step_days.get(step, (None, None))[1]),
            )
            for step in FUNNEL_STEPS
        ],
    )


def placements(
    query: PlacementQuery, funnel: Iterable[FunnelCounts], waiting: Sequence[WaitingRow], *, now: datetime
) -> Placements:
    rows = list(funnel)
    total = next((r for r in rows if r.region is None and r.month is None), None)
    grouped = sorted((r for r in rows if r is not total), key=lambda r: (r.region or "", r.month or ""))
    return Placements(
        date_from=query.period.date_from,
        date_to=query.period.date_to,
        region=query.region,
        region_digits=query.region_digits,
        total=funnel_figures(total or FunnelCounts(None, None, 0, 0, 0, 0, 0, 0, {})),
        by_region_month=[funnel_figures(r) for r in grouped],
        waiting_longest=[
            WaitingSearch(
                search_id=w.search_id,
                region=w.region,
                status=w.status,
                started_at=w.started_at,
                waiting_days=max(0, (now - w.started_at).days),
                contacts_used=w.contacts_used,
                open_bundles=w.open_bundles,
            )
            for w in waiting
        ],
    )


# ---------------------------------------------------------------------------- CSV


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = str(value)
    # A spreadsheet would run a cell starting with these as a formula (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def to_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """RFC 4180 text with a header row (CRLF line ends, quoted where needed)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return out.getvalue()


_EFFICIENCY_COLUMNS: Final = tuple(EfficiencyFigures.model_fields)


def bundle_efficiency_csv(answer: BundleEfficiency) -> str:
    rows = [answer.total, *answer.by_size]
    header = ("date_from", "date_to", "region", *_EFFICIENCY_COLUMNS)
    return to_csv(
        header,
        (
            [answer.date_from, answer.date_to, answer.region, *(getattr(r, c) for c in _EFFICIENCY_COLUMNS)]
            for r in rows
        ),
    )


_ANSWER_COLUMNS: Final = tuple(AnswerCounts.model_fields)
_LEARNED_COLUMNS: Final = ("informative_answers", "prior", "posterior")


def preferences_csv(groups: Sequence[PreferenceGroup]) -> str:
    """One row per group and attribute value, the group's totals first (dimension `all`), then
    per learned feature a row with dimension `learned` (its acceptances, informative answers,
    prior and posterior; the other count columns empty)."""
    header = ("therapist_id", "region", "dimension", "value", *_ANSWER_COLUMNS, *_LEARNED_COLUMNS)
    rows: list[list[object]] = []
    for group in groups:
        rows.append(
            [
                group.therapist_id,
                group.region,
                "all",
                "",
                *(getattr(group.totals, c) for c in _ANSWER_COLUMNS),
            ]
        )
        rows.extend(
            [
                group.therapist_id,
                group.region,
                a.dimension.value,
                a.value,
                *(getattr(a, c) for c in _ANSWER_COLUMNS),
            ]
            for a in group.attributes
        )
        rows.extend(
            [
                group.therapist_id,
                group.region,
                "learned",
                e.feature,
                *(e.accepted if c == "accepted" else None for c in _ANSWER_COLUMNS),
                e.answered,
                e.prior,
                e.posterior,
            ]
            for e in group.learned
        )
    return to_csv(header, rows)


def placements_csv(answer: Placements) -> str:
    """The funnel, one row per region and month after the total row (waiting searches are in
    the JSON answer only)."""
    counts = (
        "searches_started",
        "registration_known",
        "reached_first_bundle",
        "reached_first_acceptance",
        "placed",
        "placement_rate",
        "contacts_per_placement",
    )
    steps = [f"{step}_{kind}" for step in FUNNEL_STEPS for kind in ("median_days", "p90_days")]
    header = ("region", "month", *counts, *steps)
    rows = []
    for figures in [answer.total, *answer.by_region_month]:
        days = [value for step in figures.days for value in (step.median, step.p90)]
        rows.append([figures.region, figures.month, *(getattr(figures, c) for c in counts), *days])
    return to_csv(header, rows)
