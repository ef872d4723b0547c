"""What statistics keep of an erased patient: anonymous facts only (GDPR Art. 17, Recital 26).

When a patient is erased, `statistics_row` turns the record into one row of the table
`patient_statistics` that no longer refers to the person:
- no id, no reference, nothing that links back to the patient record, a search, a bundle or
  an email (the row has its own random key, not derived from anything);
- dates coarsened to the month (`registered_month`, `erased_month`), no exact timestamps;
- an age band instead of the birth date (`age_band`, at the erasure), the 2-digit postcode
  region instead of the address;
- coded values only (symptom and procedure codes, enumerations): no free text, no name, no
  contact data, no insurer name.
The patient record itself is reduced to a tombstone (`TOMBSTONE_FIELDS`: its id and when it was
erased), so that a later access can answer 410 Gone and no event resurrects it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Final

from pydantic import BaseModel, ConfigDict

from therapy_platform.patients.domain.patient import Patient

# What the erased patient's own row keeps: the id (410 Gone instead of 404, and no event can
# re-create it) and when it was erased. Every other column is emptied.
TOMBSTONE_FIELDS: Final = ("id", "erased_at")

# Age bands (lower bound inclusive); the last is open. Wide enough that a band with a
# postcode region and a month does not single a person out.
AGE_BANDS: Final = ((0, 18), (18, 25), (25, 35), (35, 45), (45, 55), (55, 65), (65, None))


def age_band(birth_date: date | None, on: date) -> str | None:
    """The band of the age on `on`, e.g. "25-34" or "65+"; None without a birth date."""
    if birth_date is None:
        return None
    age = on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))
    if age < 0:
        return None  # a birth date in the future: no band
    for low, high in AGE_BANDS:
        if high is None:
            return f"{low}+"
        if low <= age < high:
            return f"{low}-{high - 1}"
    return None


def month_of(moment: datetime) -> date:
    """The first day of the moment's month (UTC): the only date statistics keep."""
    return date(moment.year, moment.month, 1)


class PatientStatistics(BaseModel):
    """One anonymous row of `patient_statistics` (no field links back to the person)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    registered_month: date
    erased_month: date
    age_band: str | None
    gender: str
    postcode_region: str
    insurance_type: str
    symptoms: list[str]
    previous_therapy: bool
    therapy_procedures: list[str]
    preferred_therapist_gender: str
    open_to_group_therapy: bool
    group_only: bool
    travel_mode: str
    final_status: str


def statistics_row(patient: Patient, *, erased_at: datetime) -> PatientStatistics:
    """The anonymous row an erasure keeps of this patient."""
    return PatientStatistics(
        registered_month=month_of(patient.created_at),
        erased_month=month_of(erased_at),
        age_band=age_band(patient.birth_date, erased_at.date()),
        gender=str(patient.gender),
        postcode_region=patient.postcode[:2],
        insurance_type=str(patient.insurance_type),
        symptoms=sorted(str(code) for code in patient.symptoms),
        previous_therapy=patient.previous_therapy,
        therapy_procedures=sorted(str(code) for code in patient.therapy_procedures),
        preferred_therapist_gender=str(patient.preferred_therapist_gender),
        open_to_group_therapy=patient.open_to_group_therapy,
        group_only=patient.group_only,
        travel_mode=str(patient.travel_mode),
        final_status=str(patient.status),
    )
