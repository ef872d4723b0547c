"""Time the pure matching round on synthetic data (no database): `python benchmarks/matching_round.py
[therapists] [searches]`. Data from DataGenerator on the real postcode geography."""

from __future__ import annotations

import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta

from datagen import DataGenerator

from therapy_platform.adapters.postcodes import postcode_directory
from therapy_platform.domain.matching import SearchCandidate, TherapistCandidate, plan_round
from therapy_platform.domain.schedule import windows_in_minutes
from therapy_platform.domain.therapy import Gender, TherapyProcedure


def main(therapist_count: int, search_count: int) -> None:
    generator = DataGenerator(seed=7)
    directory = postcode_directory()
    today = date(2026, 3, 2)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    therapists = []
    for n, data in enumerate(generator.therapists(therapist_count), start=1):
        therapists.append(
            TherapistCandidate(
                id=uuid.UUID(int=n),
                last_name=data["last_name"],
                title=data["title"],
                created_at=start,
                status="active",
                location=directory.centroid(data["postcode"]),
                email=data["email"],
                practice_key=data["email"],
                gender=Gender(data["gender"]),
                next_contact_allowed_on=today + timedelta(days=10) if n % 5 == 0 else None,
                procedures=frozenset(TherapyProcedure(p) for p in data["procedures"]),
                languages=frozenset(data["languages"]),
                preferred_patient_gender=Gender(data["preferred_patient_gender"])
                if data["preferred_patient_gender"]
                else None,
                preferred_age_min=data["preferred_age_min"],
                preferred_age_max=data["preferred_age_max"],
                offers_group_therapy=data["offers_group_therapy"],
                group_only=data["group_only"],
                working_hours={d: tuple(w) for d, w in windows_in_minutes(data["working_hours"]).items()},
                symptom_preferences=frozenset(data["symptom_preferences"]),
                potentially_available=data["potentially_available"],
            )
        )
    searches = []
    for n, data in enumerate(generator.patients(search_count), start=1):
        searches.append(
            SearchCandidate(
                id=uuid.UUID(int=10**9 + n),
                patient_id=uuid.UUID(int=2 * 10**9 + n),
                created_at=start + timedelta(minutes=n * 7 % 500_000),
                location=directory.centroid(data["postcode"]),
                birth_date=date.fromisoformat(data["birth_date"]),
                gender=Gender(data["gender"]),
                preferred_therapist_gender=data["preferred_therapist_gender"],
                therapy_procedures=frozenset(TherapyProcedure(p) for p in data["therapy_procedures"]),
                languages=frozenset(data["languages"]),
                needs_shared_language="de" not in data["languages"],
                open_to_group_therapy=data["open_to_group_therapy"],
                group_only=data["group_only"],
                max_travel_km=float(data["max_travel_km"]),
                availability={d: tuple(w) for d, w in windows_in_minutes(data["availability"]).items()},
                symptoms=frozenset(data["symptoms"]),
                contact_budget=6,
            )
        )
    began = time.perf_counter()
    plan = plan_round(therapists, searches, today)
    elapsed = time.perf_counter() - began
    members = sum(len(b.members) for b in plan.bundles)
    print(
        f"{therapist_count} therapists x {search_count} searches: {elapsed:.2f} s, "
        f"{len(plan.bundles)} bundles, {members} members"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3500, int(sys.argv[2]) if len(sys.argv) > 2 else 10000)
