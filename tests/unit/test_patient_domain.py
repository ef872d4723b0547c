from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from therapy_platform.domain.patients import Patient, PatientDraft, PatientStatus

VALID = {"first_name": "Jürgen", "last_name": "Weiß", "postcode": "01067"}


def test_postcode_keeps_leading_zeros_and_names_keep_umlauts() -> None:
    draft = PatientDraft.model_validate(VALID)
    assert draft.postcode == "01067"
    assert draft.last_name == "Weiß"


@given(st.from_regex(r"^\d{5}$", fullmatch=True))
def test_any_five_digit_postcode_is_accepted(postcode: str) -> None:
    assert PatientDraft.model_validate({**VALID, "postcode": postcode}).postcode == postcode


@given(st.text().filter(lambda text: not (len(text) == 5 and text.isascii() and text.isdigit())))
def test_anything_else_is_not_a_postcode(postcode: str) -> None:
    with pytest.raises(ValidationError) as error:
        PatientDraft.model_validate({**VALID, "postcode": postcode})
    assert error.value.errors()[0]["loc"] == ("postcode",)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("birth_date", (datetime.now(UTC).date() + timedelta(days=1)).isoformat()),
        ("birth_date", "1890-01-01"),
        ("email", "not-an-email"),
        ("phone", "call me"),
        ("first_name", "   "),
        ("unexpected", "x"),
    ],
)
def test_implausible_fields_are_rejected_by_name(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as error:
        PatientDraft.model_validate({**VALID, field: value})
    assert {entry["loc"][0] for entry in error.value.errors()} == {field}


def test_registering_a_patient_starts_it_open_with_timestamps() -> None:
    now = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
    patient = Patient.register(PatientDraft.model_validate({**VALID, "birth_date": "1980-02-29"}), now=now)
    assert patient.status is PatientStatus.OPEN
    assert patient.created_at == patient.updated_at == now
    assert patient.birth_date == date(1980, 2, 29)
    assert patient.event_payload()["id"] == str(patient.id)
