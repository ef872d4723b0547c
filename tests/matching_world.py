"""Builds small worlds for the matching service's integration tests: therapists and patients
written into the matching read models exactly as their events would (the producers' public
models, JSON mode), searches created through the use case."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text

from therapy_platform.matching.adapters.unit_of_work import SqlMatchingUnitOfWork
from therapy_platform.matching.domain.read_models import ProfileChange, ProfileKind
from therapy_platform.matching.domain.searches import PatientSearch, SearchDraft
from therapy_platform.matching.use_cases import searches as search_cases
from therapy_platform.patients.domain.patient import Patient
from therapy_platform.platform.geography.postcodes import postcode_directory
from therapy_platform.therapists.domain.therapist import Therapist

NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # a Monday morning
MATCHING_TABLES = (
    "audit_log",
    "staff_alerts",
    "therapist_cooling",
    "bundle_members",
    "bundles",
    "rounds",
    "search_exclusions",
    "searches",
    "patient_profiles",
    "therapist_profiles",
    "processed_events",
    "outbox",
)
_names = itertools.count(1)


def reset_matching(admin_engine: Engine) -> None:
    with admin_engine.begin() as connection:
        tables = ", ".join(f"matching_service.{name}" for name in MATCHING_TABLES)
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@dataclass
class World:
    engine: Engine  # the matching service's own role
    now: datetime = NOW

    def uow(self) -> SqlMatchingUnitOfWork:
        return SqlMatchingUnitOfWork(self.engine)

    def _write(self, kind: ProfileKind, data: dict[str, Any], at: datetime) -> None:
        change = ProfileChange(kind, data["id"], str(uuid.uuid4()), at, data)
        with self.uow() as uow:
            assert uow.profiles.apply(change)
            uow.commit()

    def therapist(self, postcode: str = "10115", **overrides: Any) -> Therapist:
        n = next(_names)
        location = postcode_directory().centroid(postcode)
        values: dict[str, Any] = {
            "id": uuid.uuid4(),
            "gender": "female",
            "first_name": "Anna",
            "last_name": f"Therapeutin{n}",
            "postcode": postcode,
            "city": "Berlin",
            "email": f"praxis{n}@example.org",
            "statutory_seat": True,
            "procedures": ["VT", "TP"],
            "languages": ["de"],
            "directory_id": None,
            "status": "active",
            "block_reason": None,
            "next_contact_allowed_on": None,
            "staff_edited_fields": [],
            "location": location,
            "location_flagged": not location.is_known,
            "created_at": self.now - timedelta(days=400 - n),
            "updated_at": self.now - timedelta(days=1),
        }
        values.update(overrides)
        email = values.get("email")
        values.setdefault("practice_key", email.strip().lower() if email else None)
        if "practice_key" not in overrides:
            values["practice_key"] = email.strip().lower() if email else None
        therapist = Therapist.model_validate(values)
        # As the therapist service publishes it (contracts/therapists.py): the minimal payload.
        self._write(ProfileKind.THERAPIST, therapist.event_payload(), self.now - timedelta(hours=1))
        return therapist

    def patient(self, postcode: str = "10117", **overrides: Any) -> Patient:
        n = next(_names)
        location = postcode_directory().centroid(postcode)
        values: dict[str, Any] = {
            "id": uuid.uuid4(),
            "gender": "female",
            "first_name": "Petra",
            "last_name": f"Patientin{n}",
            "birth_date": date(1990, 1, 1),
            "postcode": postcode,
            "city": "Berlin",
            "health_insurer": "AOK Nordost",
            "symptoms": ["depression"],
            "status": "open",
            "location": location,
            "created_at": self.now - timedelta(days=100),
            "updated_at": self.now - timedelta(days=100),
        }
        values.update(overrides)
        patient = Patient.model_validate(values)
        # As the patient service publishes it (contracts/patients.py): the minimal payload.
        self._write(ProfileKind.PATIENT, patient.event_payload(), self.now - timedelta(hours=1))
        return patient

    def search(
        self, patient: Patient | None = None, *, waited_days: int = 30, budget: int = 10, **kw: Any
    ) -> PatientSearch:
        patient = patient or self.patient(**kw)
        created = self.now - timedelta(days=waited_days, seconds=next(_names))
        result = search_cases.create_search(
            self.uow(),
            SearchDraft(patient_id=patient.id, total_requested_contacts=budget),
            actor="test",
            now=created,
        )
        return result.value
