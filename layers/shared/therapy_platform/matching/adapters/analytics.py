"""Analytics queries over the matching service's own schema (`matching_service` only: bundles,
members, searches and the read models of patients and therapists). Plain SQL, set-based, one
round trip per figure set; medians and 90th percentiles with `percentile_cont`. What the
figures mean and how the rows are counted: `matching/domain/analytics.py`, docs/analytics.md.

Every value that varies is a bound parameter; the only text put together here are fixed
fragments chosen by the query's shape and the bands of the domain module (numbers).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, Final

from sqlalchemy import Connection, Engine, text

from therapy_platform.matching.adapters.preference_answers import read_answers
from therapy_platform.matching.domain.analytics import (
    AGE_BANDS,
    DISTANCE_BANDS,
    DISTANCE_BEYOND,
    FUNNEL_STEPS,
    UNKNOWN,
    BundleCounts,
    BundleEfficiencyQuery,
    Dimension,
    FunnelCounts,
    OutcomeTally,
    PlacementQuery,
    PreferenceGrouping,
    PreferenceQuery,
    WaitingRow,
    age_band_label,
)
from therapy_platform.matching.domain.preferences import PresentedAnswers
from therapy_platform.platform.clock import PLATFORM_TIMEZONE

S: Final = "matching_service"
# Bundles that reached a therapist (drafts and discarded ones never did).
_REACHED: Final = "b.status IN ('sent', 'answered', 'expired') AND b.sent_at >= :start AND b.sent_at < :end"
_WORK_MEM: Final = "64MB"  # per sort/hash node of this one read-only transaction
_EARTH_RADIUS_KM: Final = 6371.0088  # mean radius: great-circle distance, as the bands need


def _age_band_case(age: str) -> str:
    arms = []
    for low, high in AGE_BANDS:
        label = age_band_label(low, high)
        condition = f"{age} >= {low}" if high is None else f"{age} >= {low} AND {age} < {high}"
        arms.append(f"WHEN {condition} THEN '{label}'")
    return f"CASE WHEN {age} IS NULL THEN '{UNKNOWN}' {' '.join(arms)} ELSE '{UNKNOWN}' END"


def _distance_band_case(km: str) -> str:
    arms = " ".join(f"WHEN {km} <= {limit} THEN '{label}'" for limit, label in DISTANCE_BANDS)
    return f"CASE WHEN {km} IS NULL THEN '{UNKNOWN}' {arms} ELSE '{DISTANCE_BEYOND}' END"


def _km() -> str:
    """Great-circle km between (plat, plon) and (tlat, tlon); NULL when either is unknown."""
    return (
        f"2 * {_EARTH_RADIUS_KM} * asin(least(1, sqrt("
        "power(sin(radians(plat - tlat) / 2), 2) + "
        "cos(radians(plat)) * cos(radians(tlat)) * power(sin(radians(plon - tlon) / 2), 2))))"
    )


_SENT_ON: Final = f"(b.sent_at AT TIME ZONE '{PLATFORM_TIMEZONE}')::date"


def _array_values(column: str) -> str:
    return (
        f"LEFT JOIN LATERAL jsonb_array_elements_text(CASE WHEN jsonb_typeof({column}) = 'array' "
        f"THEN {column} END) AS v(value) ON true"
    )


_COUNTS: Final = """count(*) AS offered,
       count(*) FILTER (WHERE outcome = 'accepted') AS accepted,
       count(*) FILTER (WHERE outcome = 'rejected_capacity') AS rejected_capacity,
       count(*) FILTER (WHERE outcome = 'rejected_unsuitable') AS rejected_unsuitable,
       count(*) FILTER (WHERE outcome = 'rejected_other') AS rejected_other,
       count(*) FILTER (WHERE outcome = 'no_response') AS no_response"""

_OUTCOMES: Final = ("accepted", "rejected_capacity", "rejected_unsuitable", "rejected_other", "no_response")
_SUMS: Final = ", ".join(
    ["sum(offered)::bigint AS offered", *(f"sum({name})::bigint AS {name}" for name in _OUTCOMES)]
)


def _per_patient(dimension: Dimension, value: str, lateral: str = "") -> str:
    """One dimension read from the patient: the per-patient counts summed by its value."""
    return (
        f"SELECT grp, '{dimension.value}' AS dimension, COALESCE({value}, '{UNKNOWN}') AS value, {_SUMS} "
        f"FROM per_patient LEFT JOIN patients ON patients.id = per_patient.patient_id {lateral} "
        "GROUP BY 1, 2, 3"
    )


# Symptoms, procedures, languages and insurance depend on the patient only: counted once per
# (group, patient) and summed, instead of once per bundle membership.
_FACTS: Final = "\nUNION ALL\n".join(
    [
        _per_patient(Dimension.SYMPTOM, "v.value", _array_values("symptoms")),
        _per_patient(Dimension.PROCEDURE, "v.value", _array_values("procedures")),
        _per_patient(Dimension.LANGUAGE, "v.value", _array_values("languages")),
        _per_patient(Dimension.INSURANCE_TYPE, "insurance_type"),
        f"SELECT grp, '{Dimension.AGE_BAND.value}', age_band, {_COUNTS} FROM banded GROUP BY 1, 2, 3",
        f"SELECT grp, '{Dimension.DISTANCE_BAND.value}', distance_band, {_COUNTS} "
        "FROM banded GROUP BY 1, 2, 3",
        f"SELECT grp, NULL, '', {_SUMS} FROM per_patient GROUP BY 1",
    ]
)


class SqlAnalytics:
    """The `AnalyticsQueries` port over PostgreSQL; one read-only transaction per answer."""

    def __init__(self, engine: Callable[[], Engine]) -> None:
        self._engine = engine

    def _read(self, work: Callable[[Connection], Any]) -> Any:
        with self._engine().connect() as connection, connection.begin():
            connection.execute(text("SET TRANSACTION READ ONLY"))
            # Aggregates over a year of members hash in memory rather than sort on disk.
            connection.execute(text(f"SET LOCAL work_mem = '{_WORK_MEM}'"))
            return work(connection)

    # ------------------------------------------------------------------ bundle efficiency

    def bundle_counts(self, query: BundleEfficiencyQuery) -> list[BundleCounts]:
        region = (
            f"AND EXISTS (SELECT 1 FROM {S}.therapist_profiles t WHERE t.id = b.therapist_id "
            "AND t.data ->> 'postcode' LIKE :prefix)"
            if query.region
            else ""
        )
        size = "WHERE size = :size" if query.bundle_size is not None else ""
        sql = text(f"""
WITH reached AS MATERIALIZED (
  SELECT b.id, b.status, b.sent_at, b.answered_at, b.therapist_id FROM {S}.bundles b WHERE {_REACHED} {region}
),
per_bundle AS (  -- the members counted per bundle first (one hash aggregate), then joined
  SELECT m.bundle_id, count(*) AS size,
         count(*) FILTER (WHERE m.outcome = 'accepted') AS accepted,
         count(*) FILTER (WHERE m.outcome = 'rejected_unsuitable') AS unsuitable
    FROM {S}.bundle_members m
   WHERE m.bundle_id IN (SELECT id FROM reached)
   GROUP BY m.bundle_id
),
placed AS (  -- only accepted members can have placed their patient
  SELECT m.bundle_id, count(*) AS placements
    FROM {S}.bundle_members m
    JOIN reached r ON r.id = m.bundle_id
    JOIN {S}.searches s ON s.id = m.search_id
   WHERE m.status = 'accepted' AND s.status = 'placed' AND s.placed_therapist_id = r.therapist_id
   GROUP BY m.bundle_id
),
reached_counts AS (
  SELECT r.status, r.sent_at, r.answered_at, pb.size, pb.accepted, pb.unsuitable,
         COALESCE(p.placements, 0) AS placements
    FROM reached r
    JOIN per_bundle pb ON pb.bundle_id = r.id
    LEFT JOIN placed p ON p.bundle_id = r.id
)
SELECT GROUPING(size) AS total, size, count(*) AS sent,
       count(*) FILTER (WHERE status = 'answered') AS answered,
       count(*) FILTER (WHERE status = 'expired') AS expired,
       COALESCE(sum(size), 0) AS members, COALESCE(sum(accepted), 0) AS accepted,
       COALESCE(sum(placements), 0) AS placements, COALESCE(sum(unsuitable), 0) AS unsuitable,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM answered_at - sent_at) / 86400)
         FILTER (WHERE status = 'answered') AS median_days,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM answered_at - sent_at) / 86400)
         FILTER (WHERE status = 'answered') AS p90_days
  FROM reached_counts {size}
 GROUP BY GROUPING SETS ((size), ())
""")
        params = {
            "start": query.period.start,
            "end": query.period.end,
            "prefix": f"{query.region}%",
            "size": query.bundle_size,
        }
        rows = self._read(lambda c: c.execute(sql, params).all())
        return [
            BundleCounts(
                bundle_size=None if row.total else int(row.size),
                sent=row.sent,
                answered=row.answered,
                expired=row.expired,
                members=int(row.members),
                accepted=int(row.accepted),
                placements=int(row.placements),
                rejected_unsuitable=int(row.unsuitable),
                answer_days_median=_float(row.median_days),
                answer_days_p90=_float(row.p90_days),
            )
            for row in rows
        ]

    # ------------------------------------------------------------------ therapist preferences

    def preference_tallies(self, query: PreferenceQuery) -> tuple[int, list[OutcomeTally]]:
        """(how many groups in all, the tallies of the asked page's groups)."""
        by_therapist = query.grouping is PreferenceGrouping.THERAPIST
        group = (
            "b.therapist_id::text"
            if by_therapist
            else f"COALESCE(left(t.data ->> 'postcode', :digits), '{UNKNOWN}')"
        )
        conditions = [_REACHED]
        if query.region:
            conditions.append("t.data ->> 'postcode' LIKE :prefix")
        if query.therapist_id is not None:
            conditions.append("b.therapist_id = :therapist_id")
        where = " AND ".join(conditions)
        source = f"{S}.bundles b LEFT JOIN {S}.therapist_profiles t ON t.id = b.therapist_id"
        groups_sql = text(f"""
SELECT grp, count(*) OVER () AS total FROM (
  SELECT DISTINCT {group} AS grp FROM {source} WHERE {where}
) g ORDER BY grp LIMIT :limit OFFSET :offset
""")
        selected = (
            "b.therapist_id = ANY(CAST(:groups AS uuid[]))" if by_therapist else f"{group} = ANY(:groups)"
        )
        tallies_sql = text(f"""
WITH members AS MATERIALIZED (
  SELECT {group} AS grp, m.patient_id, m.outcome, {_SENT_ON} AS sent_on,
         (t.data -> 'location' ->> 'latitude')::float8 AS tlat,
         (t.data -> 'location' ->> 'longitude')::float8 AS tlon
    FROM {source}
    JOIN {S}.bundle_members m ON m.bundle_id = b.id
   WHERE {where} AND {selected}
),
patients AS MATERIALIZED (
  SELECT p.id, p.data -> 'symptoms' AS symptoms, p.data -> 'therapy_procedures' AS procedures,
         p.data -> 'languages' AS languages, p.data ->> 'insurance_type' AS insurance_type,
         COALESCE((p.data ->> 'birth_date')::date,
                  (((p.data ->> 'birth_month') || '-01')::date + interval '1 month - 1 day')::date) AS birth,
         (p.data -> 'location' ->> 'latitude')::float8 AS plat,
         (p.data -> 'location' ->> 'longitude')::float8 AS plon
    FROM {S}.patient_profiles p
   WHERE p.id IN (SELECT patient_id FROM members)
),
per_patient AS (
  SELECT grp, patient_id, {_COUNTS} FROM members GROUP BY grp, patient_id
),
banded AS (
  SELECT grp, outcome, {_age_band_case("age")} AS age_band, {_distance_band_case("km")} AS distance_band
    FROM (SELECT grp, outcome, date_part('year', age(sent_on, birth)) AS age, {_km()} AS km
            FROM members LEFT JOIN patients ON patients.id = members.patient_id
          OFFSET 0) measured  -- a fence: age and km computed once per row, not per CASE arm
)
{_FACTS}
""")
        params: dict[str, Any] = {
            "start": query.period.start,
            "end": query.period.end,
            "prefix": f"{query.region}%",
            "digits": query.region_digits,
            "therapist_id": query.therapist_id,
            "limit": query.limit,
            "offset": query.offset,
        }

        def work(connection: Connection) -> tuple[int, list[OutcomeTally]]:
            page = connection.execute(groups_sql, params).all()
            if not page:
                total = connection.execute(
                    text(f"SELECT count(DISTINCT {group}) FROM {source} WHERE {where}"), params
                ).scalar_one()
                return int(total), []
            groups = [row.grp for row in page]
            rows = connection.execute(tallies_sql, {**params, "groups": groups}).all()
            order = {name: index for index, name in enumerate(groups)}
            rows = sorted(rows, key=lambda r: order[r.grp])
            return int(page[0].total), [
                OutcomeTally(
                    group=row.grp,
                    dimension=None if row.dimension is None else Dimension(row.dimension),
                    value=row.value,
                    offered=row.offered,
                    accepted=row.accepted,
                    rejected_capacity=row.rejected_capacity,
                    rejected_unsuitable=row.rejected_unsuitable,
                    rejected_other=row.rejected_other,
                    no_response=row.no_response,
                )
                for row in rows
            ]

        result: tuple[int, list[OutcomeTally]] = self._read(work)
        return result

    def preference_answers(self) -> list[PresentedAnswers]:
        """Every informative answer, for the learned estimates (adapters/preference_answers.py)."""
        answers: list[PresentedAnswers] = self._read(read_answers)
        return answers

    # ------------------------------------------------------------------ placements

    def funnel(self, query: PlacementQuery) -> list[FunnelCounts]:
        region = "AND p.data ->> 'postcode' LIKE :prefix" if query.region else ""
        steps = {
            "registration_to_search": ("registered_at", "created_at"),
            "search_to_first_bundle": ("created_at", "first_bundle_at"),
            "first_bundle_to_first_acceptance": ("first_bundle_at", "first_accepted_at"),
            "first_acceptance_to_placement": ("first_accepted_at", "placed_at"),
            "search_to_placement": ("created_at", "placed_at"),
        }
        percentiles = ",\n".join(
            f"percentile_cont({q}) WITHIN GROUP (ORDER BY extract(epoch FROM {end} - {start}) / 86400) "
            f"AS {name}_{label}"
            for name, (start, end) in steps.items()
            for q, label in ((0.5, "median"), (0.9, "p90"))
        )
        sql = text(f"""
WITH cohort AS (
  SELECT s.id, s.created_at, CASE WHEN s.status = 'placed' THEN s.placed_at END AS placed_at,
         COALESCE(left(p.data ->> 'postcode', :digits), '{UNKNOWN}') AS region,
         to_char(s.created_at AT TIME ZONE '{PLATFORM_TIMEZONE}', 'YYYY-MM') AS month,
         (p.data ->> 'created_at')::timestamptz AS registered_at
    FROM {S}.searches s
    LEFT JOIN {S}.patient_profiles p ON p.id = s.patient_id
   WHERE s.created_at >= :start AND s.created_at < :end {region}
),
contacts AS (
  SELECT m.search_id, min(b.sent_at) AS first_bundle_at, count(*) AS contacts,
         min(m.responded_at) FILTER (WHERE m.outcome = 'accepted') AS first_accepted_at
    FROM {S}.bundle_members m JOIN {S}.bundles b ON b.id = m.bundle_id
   WHERE b.sent_at IS NOT NULL AND m.search_id IN (SELECT id FROM cohort)
   GROUP BY m.search_id
),
f AS (
  SELECT c.*, k.first_bundle_at, k.first_accepted_at, COALESCE(k.contacts, 0) AS contacts
    FROM cohort c LEFT JOIN contacts k ON k.search_id = c.id
)
SELECT GROUPING(region, month) AS total, region, month, count(*) AS searches,
       count(registered_at) AS registered_known, count(first_bundle_at) AS with_first_bundle,
       count(first_accepted_at) AS with_first_acceptance, count(placed_at) AS placed,
       COALESCE(sum(contacts) FILTER (WHERE placed_at IS NOT NULL), 0) AS contacts_of_placed,
       {percentiles}
  FROM f
 GROUP BY GROUPING SETS ((region, month), ())
""")
        params = {
            "start": query.period.start,
            "end": query.period.end,
            "prefix": f"{query.region}%",
            "digits": query.region_digits,
        }
        rows = self._read(lambda c: c.execute(sql, params).mappings().all())
        return [
            FunnelCounts(
                region=None if row["total"] else row["region"],
                month=None if row["total"] else row["month"],
                searches=row["searches"],
                registered_known=row["registered_known"],
                with_first_bundle=row["with_first_bundle"],
                with_first_acceptance=row["with_first_acceptance"],
                placed=row["placed"],
                contacts_of_placed=int(row["contacts_of_placed"]),
                step_days={
                    step: (_float(row[f"{step}_median"]), _float(row[f"{step}_p90"])) for step in FUNNEL_STEPS
                },
            )
            for row in rows
        ]

    def waiting_longest(self, query: PlacementQuery) -> list[WaitingRow]:
        region = "AND p.data ->> 'postcode' LIKE :prefix" if query.region else ""
        sql = text(f"""
SELECT s.id, left(p.data ->> 'postcode', :digits) AS region, s.created_at, s.status,
       (SELECT count(*) FROM {S}.bundle_members m JOIN {S}.bundles b ON b.id = m.bundle_id
         WHERE m.search_id = s.id AND b.sent_at IS NOT NULL) AS contacts_used,
       (SELECT count(*) FROM {S}.bundle_members m JOIN {S}.bundles b ON b.id = m.bundle_id
         WHERE m.search_id = s.id AND b.status IN ('draft', 'sent') AND m.status = 'pending') AS open_bundles
  FROM {S}.searches s
  LEFT JOIN {S}.patient_profiles p ON p.id = s.patient_id
 WHERE s.status IN ('active', 'paused') {region}
 ORDER BY s.created_at, s.id
 LIMIT :longest
""")
        params = {"prefix": f"{query.region}%", "digits": query.region_digits, "longest": query.longest}
        rows = self._read(lambda c: c.execute(sql, params).all())
        return [
            WaitingRow(
                search_id=row.id if isinstance(row.id, uuid.UUID) else uuid.UUID(str(row.id)),
                region=row.region,
                started_at=row.created_at,
                status=row.status,
                contacts_used=row.contacts_used,
                open_bundles=row.open_bundles,
            )
            for row in rows
        ]


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


__all__: Sequence[str] = ("SqlAnalytics",)
