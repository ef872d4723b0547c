"""patients/domain/statistics.py: what an erasure keeps is anonymous."""

from __future__ import annotations

from datetime import UTC, date, datetime

from hypothesis import given
from hypothesis import strategies as st

from therapy_platform.patients.domain.patient import Patient, PatientDraft
from therapy_platform.patients.domain.statistics import (
    PatientStatistics,
    age_band,
    month_of,
    statistics_row,
)
from therapy_platform.platform.geography.locations import Location

ERASED = datetime(2026, 11, 22, 17, 45, tzinfo=UTC)


def _patient(**fields: object) -> Patient:
    draft = PatientDraft.model_validate(
        {
            "first_name": "Jürgen",
            "last_name": "Weiß",
            "postcode": "01067",
            "symptoms": ["depression"],
            **fields,
        }
    )
    return Patient.register(draft, now=datetime(2025, 3, 14, 9, 0, tzinfo=UTC), location=Location.unknown())


def test_the_row_keeps_coded_facts_months_and_an_age_band_only() -> None:
    patient = _patient(birth_date=date(1991, 11, 2), notes="Anruf nur abends", email="k@example.org")
    row = statistics_row(patient, erased_at=ERASED)
    assert row.registered_month == month_of(patient.created_at) and row.registered_month.day == 1
    assert row.erased_month == date(2026, 11, 1)
    assert row.age_band == "35-44"
    assert row.postcode_region == patient.postcode[:2]
    assert row.final_status == str(patient.status)
    # Nothing that links back or identifies: no id, no exact date, no name, contact or free text.
    assert set(PatientStatistics.model_fields) == {
        "registered_month", "erased_month", "age_band", "gender", "postcode_region", "insurance_type",
        "symptoms", "previous_therapy", "therapy_procedures", "preferred_therapist_gender",
        "open_to_group_therapy", "group_only", "travel_mode", "final_status",
    }  # fmt: skip
    dumped = str(row.model_dump())
    for value in (str(patient.id), patient.last_name, patient.first_name, "k@example.org", "abends", "1991"):
        assert value not in dumped


def test_age_bands_cover_every_age_and_have_no_gaps() -> None:
    on = date(2026, 6, 1)
    assert age_band(None, on) is None
    assert age_band(date(2008, 6, 2), on) == "0-17"  # 17 the day before the 18th birthday
    assert age_band(date(2008, 6, 1), on) == "18-24"
    assert age_band(date(1961, 6, 1), on) == "65+"
    assert age_band(date(2027, 1, 1), on) is None


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2026, 6, 1)))
def test_every_birth_date_gets_exactly_one_band(birth: date) -> None:
    band = age_band(birth, date(2026, 6, 1))
    assert band is not None
    low, _, high = band.rstrip("+").partition("-")
    age = 2026 - birth.year - ((birth.month, birth.day) > (6, 1))
    assert int(low) <= age and (not high or age <= int(high))
