"""Rules of the patient record: field validation, cross-field rules, availability windows,
symptom bounds, age plausibility, PATCH semantics and list queries."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from therapy_platform.contracts.languages import LANGUAGE_LABELS
from therapy_platform.contracts.symptoms import MAX_SYMPTOMS, SYMPTOM_LABELS, Symptom, symptom_label
from therapy_platform.patients.domain.patient import (
    MAX_AGE_YEARS,
    MIN_AGE_YEARS,
    STATISTICS_FIELDS,
    Patient,
    PatientDraft,
    PatientPatch,
    PatientQuery,
    PatientReplacement,
    PatientStatus,
    PatientValidationError,
    age_on,
    changed_fields,
    merge_patch,
    today,
)
from therapy_platform.platform.geography.locations import Location, LocationPrecision

VALID: dict[str, Any] = {
    "first_name": "Jürgen",
    "last_name": "Weiß",
    "postcode": "01067",
    "symptoms": ["depression"],
}
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
BERLIN = Location(latitude=52.53, longitude=13.38, precision=LocationPrecision.POSTCODE)


def _errors(data: dict[str, Any], model: type[PatientDraft] | type[PatientPatch] = PatientDraft) -> set[str]:
    with pytest.raises(ValidationError) as error:
        model.model_validate(data)
    return {".".join(str(part) for part in entry["loc"]) for entry in error.value.errors()}


def _patient(**fields: Any) -> Patient:
    return Patient.register(PatientDraft.model_validate({**VALID, **fields}), now=NOW, location=BERLIN)


# --- single fields -----------------------------------------------------------------------------


def test_minimal_draft_gets_documented_defaults() -> None:
    draft = PatientDraft.model_validate(VALID)
    assert draft.postcode == "01067" and draft.last_name == "Weiß"
    assert draft.gender == "unspecified" and draft.insurance_type == "statutory"
    assert draft.therapy_procedures == ["VT", "TP", "AP", "ST"]  # any procedure
    assert draft.languages == ["de"] and draft.needs_shared_language is None
    assert draft.max_travel_km == 25 and draft.travel_mode == "transit"
    assert draft.preferred_therapist_gender == "any"
    assert draft.availability == {} and draft.excluded_therapist_ids == []


@given(st.from_regex(r"^[0-9]{5}$", fullmatch=True))
def test_any_five_digit_postcode_is_accepted(postcode: str) -> None:
    assert PatientDraft.model_validate({**VALID, "postcode": postcode}).postcode == postcode


@given(
    st.text().filter(
        lambda text: not (len(text.strip()) == 5 and text.strip().isascii() and text.strip().isdigit())
    )
)
def test_anything_else_is_not_a_postcode(postcode: str) -> None:
    assert _errors({**VALID, "postcode": postcode}) == {"postcode"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not-an-email"),
        ("phone", "call me"),
        ("phone", "--------"),
        ("first_name", "   "),
        ("first_name", "1234"),
        ("last_name", "Null\x00Byte"),
        ("city", "x" * 101),
        ("street", "12"),
        ("salutation", "Frau 2"),
        ("gender", "other"),
        ("health_insurer", "A"),
        ("health_insurer", "AOK <script>"),
        ("health_insurer", "1234"),
        ("insurance_type", "gkv"),
        ("therapy_procedures", []),
        ("therapy_procedures", ["VT", "VT"]),
        ("therapy_procedures", ["KVT"]),
        ("preferred_therapist_gender", "other"),
        ("max_travel_minutes", 4),
        ("max_travel_minutes", 241),
        ("languages", []),
        ("languages", ["xx"]),
        ("languages", ["de", "DE"]),
        ("max_travel_km", 0),
        ("max_travel_km", 201),
        ("max_travel_km", 2.5),
        ("travel_mode", "bike"),
        ("excluded_therapist_ids", ["not-a-uuid"]),
        ("notes", "x" * 2001),
        ("status", "open"),  # not part of a draft
        ("unexpected", "x"),
    ],
)
def test_invalid_fields_are_rejected_by_name(field: str, value: Any) -> None:
    assert {name.split(".")[0] for name in _errors({**VALID, field: value})} == {field}


def test_every_offending_field_is_named_at_once() -> None:
    names = _errors({"first_name": "", "postcode": "1", "symptoms": [], "email": "x", "max_travel_km": 0})
    assert names == {"first_name", "last_name", "postcode", "symptoms", "email", "max_travel_km"}


def test_insurer_names_are_tidied_and_languages_normalised() -> None:
    draft = PatientDraft.model_validate(
        {**VALID, "health_insurer": "  HEK -  Hanseatische Krankenkasse ", "languages": [" TR", "de"]}
    )
    assert draft.health_insurer == "HEK - Hanseatische Krankenkasse"
    assert draft.languages == ["tr", "de"]
    assert set(LANGUAGE_LABELS) >= {"de", "en", "tr", "ar", "ru", "uk", "pl"}


def test_notes_may_span_lines() -> None:
    assert PatientDraft.model_validate({**VALID, "notes": "Zeile 1\nZeile 2\tmit Tab"}).notes


# --- symptoms ----------------------------------------------------------------------------------


def test_every_symptom_has_a_german_label_and_a_stable_code() -> None:
    assert set(SYMPTOM_LABELS) == set(Symptom)
    assert symptom_label("depression") == "Depression / Niedergeschlagenheit"
    assert all(code.value == code.value.lower() and " " not in code.value for code in Symptom)


@given(st.lists(st.sampled_from(list(Symptom)), max_size=10))
def test_one_to_six_distinct_symptoms_are_accepted(symptoms: list[Symptom]) -> None:
    data = {**VALID, "symptoms": [str(code) for code in symptoms]}
    if 1 <= len(symptoms) <= MAX_SYMPTOMS and len(set(symptoms)) == len(symptoms):
        assert PatientDraft.model_validate(data).symptoms == symptoms
    else:
        assert _errors(data) == {"symptoms"}


@given(st.text(min_size=1, max_size=20).filter(lambda text: text not in set(Symptom)))
def test_codes_outside_the_list_are_refused(code: str) -> None:
    assert _errors({**VALID, "symptoms": ["depression", code]}) == {"symptoms.1"}


def test_symptoms_are_required() -> None:
    assert _errors({key: value for key, value in VALID.items() if key != "symptoms"}) == {"symptoms"}


# --- birth date and previous therapy -----------------------------------------------------------


@given(st.dates(min_value=date(1850, 1, 1), max_value=date(2100, 12, 31)))
def test_birth_date_is_plausible_for_an_adult_patient(birth_date: date) -> None:
    current = today()
    plausible = birth_date <= current and MIN_AGE_YEARS <= age_on(birth_date, current) <= MAX_AGE_YEARS
    data = {**VALID, "birth_date": birth_date.isoformat()}
    if plausible:
        assert PatientDraft.model_validate(data).birth_date == birth_date
    else:
        assert _errors(data) == {"birth_date"}


def test_age_counts_completed_years_including_leap_days() -> None:
    assert age_on(date(2000, 2, 29), date(2018, 2, 28)) == 17
    assert age_on(date(2000, 2, 29), date(2018, 3, 1)) == 18
    assert age_on(date(1990, 6, 15), date(2026, 6, 15)) == 36


def test_eighteenth_birthday_is_the_first_plausible_day() -> None:
    current = today()
    try:
        birthday = current.replace(year=current.year - MIN_AGE_YEARS)
    except ValueError:  # today is 29 February
        birthday = current.replace(year=current.year - MIN_AGE_YEARS, day=28)
    assert PatientDraft.model_validate({**VALID, "birth_date": birthday.isoformat()}).birth_date == birthday
    assert _errors({**VALID, "birth_date": (birthday + timedelta(days=1)).isoformat()}) == {"birth_date"}


def test_last_session_only_with_previous_therapy_and_not_in_the_future() -> None:
    assert _errors({**VALID, "last_therapy_session": "2020-01-01"}) == {"last_therapy_session"}
    future = (today() + timedelta(days=1)).isoformat()
    assert _errors({**VALID, "previous_therapy": True, "last_therapy_session": future}) == {
        "last_therapy_session"
    }
    before_birth = {
        **VALID,
        "birth_date": "1990-01-01",
        "previous_therapy": True,
        "last_therapy_session": "1980-01-01",
    }
    assert _errors(before_birth) == {"last_therapy_session"}
    draft = PatientDraft.model_validate(
        {**VALID, "previous_therapy": True, "last_therapy_session": "2020-01-01"}
    )
    assert draft.last_therapy_session == date(2020, 1, 1)
    # Previous therapy without a known date is fine.
    assert PatientDraft.model_validate({**VALID, "previous_therapy": True}).last_therapy_session is None


# --- group and language rules ------------------------------------------------------------------


def test_group_only_implies_open_to_group() -> None:
    draft = PatientDraft.model_validate({**VALID, "group_only": True})
    assert draft.open_to_group_therapy is True
    assert _errors({**VALID, "group_only": True, "open_to_group_therapy": False}) == {"group_only"}


@pytest.mark.parametrize(
    ("languages", "explicit", "required"),
    [
        (["de"], None, False),
        (["tr", "de"], None, False),
        (["tr"], None, True),
        (["ar", "en"], None, True),
        (["de", "tr"], True, True),
        (["tr"], False, False),
    ],
)
def test_shared_language_is_derived_unless_given(
    languages: list[str], explicit: bool | None, required: bool
) -> None:
    patient = _patient(languages=languages, needs_shared_language=explicit)
    assert patient.shared_language_required is required
    assert patient.event_payload()["shared_language_required"] is required


# --- availability ------------------------------------------------------------------------------

clock = st.integers(min_value=0, max_value=24 * 60)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@given(st.lists(st.tuples(clock, clock), max_size=6))
def test_availability_windows_are_accepted_exactly_when_ordered_and_disjoint(
    pairs: list[tuple[int, int]],
) -> None:
    assume(all(start < 24 * 60 for start, _ in pairs))  # a window cannot start at 24:00
    windows = [f"{_hhmm(start)}-{_hhmm(end)}" for start, end in pairs]
    ordered = sorted(pairs)
    valid = all(start < end for start, end in pairs) and all(
        later[0] >= earlier[1] for earlier, later in pairwise(ordered)
    )
    data = {**VALID, "availability": {"wed": windows}}
    if valid:
        stored = PatientDraft.model_validate(data).availability
        expected = [f"{_hhmm(start)}-{_hhmm(end)}" for start, end in ordered]
        assert stored == ({"wed": expected} if expected else {})
    else:
        assert {name.split(".")[0] + "." + name.split(".")[1] for name in _errors(data)} == {
            "availability.wed"
        }


@given(st.text(max_size=15).filter(lambda text: text.strip() != "" or text == ""))
def test_malformed_windows_are_refused(window: str) -> None:
    import re

    well_formed = re.fullmatch(
        r"(?:[01][0-9]|2[0-3]):[0-5][0-9]\s*-\s*(?:(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00)", window.strip()
    )
    assume(not well_formed)
    assert _errors({**VALID, "availability": {"mon": [window]}}) == {"availability.mon.0"}


def test_availability_is_normalised_and_days_are_checked() -> None:
    draft = PatientDraft.model_validate(
        {**VALID, "availability": {"fri": ["14:00-16:00", "08:00-10:00"], "mon": ["20:00-24:00"], "tue": []}}
    )
    assert draft.model_dump(mode="json")["availability"] == {
        "mon": ["20:00-24:00"],
        "fri": ["08:00-10:00", "14:00-16:00"],
    }
    assert _errors({**VALID, "availability": {"monday": ["08:00-09:00"]}}) == {"availability.monday.[key]"}
    assert _errors({**VALID, "availability": {"mon": ["08:00-09:00", "08:30-09:30"]}}) == {"availability.mon"}
    # Touching windows do not overlap.
    touching = {"mon": ["08:00-09:00", "09:00-10:00"]}
    assert PatientDraft.model_validate({**VALID, "availability": touching}).availability


# --- the stored record, replacement and patch --------------------------------------------------


def test_registering_a_patient_starts_it_open_with_timestamps_and_location() -> None:
    patient = _patient(birth_date="1980-02-29")
    assert patient.status is PatientStatus.OPEN
    assert patient.created_at == patient.updated_at == NOW
    assert patient.birth_date == date(1980, 2, 29)
    payload = patient.event_payload()
    assert payload["id"] == str(patient.id)
    assert payload["location"] == {"latitude": 52.53, "longitude": 13.38, "precision": "postcode"}
    assert payload["location_flagged"] is False


def test_unknown_location_is_flagged() -> None:
    patient = Patient.register(PatientDraft.model_validate(VALID), now=NOW, location=Location.unknown())
    assert patient.location_flagged is True


def test_replacement_keeps_status_unless_given() -> None:
    replacement = PatientReplacement.model_validate({**VALID, "status": "searching"})
    assert replacement.status is PatientStatus.SEARCHING
    assert PatientReplacement.model_validate(VALID).status is None


def test_patch_changes_only_sent_fields_and_null_clears() -> None:
    patient = _patient(city="Dresden", phone="0351 123456", max_travel_km=40, languages=["tr"])
    patch = PatientPatch.model_validate(
        {"city": None, "max_travel_km": None, "languages": None, "gender": "female"}
    )
    draft, status = merge_patch(patient, patch)
    assert status is None
    assert draft.city is None  # cleared
    assert draft.max_travel_km == 25 and draft.languages == ["de"]  # back to the defaults
    assert draft.phone == "0351 123456" and draft.gender == "female"


@pytest.mark.parametrize("field", ["first_name", "last_name", "postcode", "symptoms"])
def test_required_fields_cannot_be_cleared(field: str) -> None:
    assert _errors({field: None}, PatientPatch) == {field}


def test_patch_rejects_unknown_fields_and_invalid_values() -> None:
    assert _errors({"favourite_colour": "blue"}, PatientPatch) == {"favourite_colour"}
    assert _errors({"symptoms": []}, PatientPatch) == {"symptoms"}
    assert _errors({"id": str(uuid.uuid4())}, PatientPatch) == {"id"}


def test_patch_follows_implied_fields() -> None:
    patient = _patient(previous_therapy=True, last_therapy_session="2021-03-01")
    draft, _ = merge_patch(patient, PatientPatch.model_validate({"previous_therapy": False}))
    assert draft.last_therapy_session is None
    draft, _ = merge_patch(patient, PatientPatch.model_validate({"group_only": True}))
    assert draft.open_to_group_therapy is True


def test_patch_checks_the_merged_record_as_a_whole() -> None:
    patient = _patient(group_only=True)
    with pytest.raises(PatientValidationError) as error:
        merge_patch(patient, PatientPatch.model_validate({"open_to_group_therapy": False}))
    assert error.value.code == "validation_failed"
    assert [(entry.field, entry.code) for entry in error.value.errors] == [("group_only", "inconsistent")]
    with pytest.raises(PatientValidationError):
        merge_patch(_patient(), PatientPatch.model_validate({"last_therapy_session": "2020-01-01"}))


def test_a_legacy_record_without_symptoms_must_be_completed_on_change() -> None:
    legacy = _patient().model_copy(update={"symptoms": []})
    with pytest.raises(PatientValidationError) as error:
        merge_patch(legacy, PatientPatch.model_validate({"city": "Leipzig"}))
    assert "symptoms" in error.value.message


def test_changed_fields_lists_only_differences() -> None:
    before = _patient(city="Dresden")
    after = before.model_copy(update={"city": "Leipzig", "updated_at": NOW + timedelta(hours=1)})
    assert changed_fields(before, after) == ({"city": "Dresden"}, {"city": "Leipzig"})
    assert changed_fields(before, before) == ({}, {})


def test_statistics_fields_hold_no_direct_identifier() -> None:
    identifying = {"first_name", "last_name", "birth_date", "street", "postcode", "email", "phone", "city"}
    assert not identifying & set(STATISTICS_FIELDS)


# --- list queries ------------------------------------------------------------------------------


def test_query_defaults_and_bounds() -> None:
    query = PatientQuery()
    assert (query.page, query.limit, query.sort, query.offset) == (1, 50, "-created_at", 0)
    assert PatientQuery(page=3, limit=20).offset == 40
    with pytest.raises(ValidationError):
        PatientQuery(limit=201)
    with pytest.raises(ValidationError):
        PatientQuery(page=0)


def test_created_range_must_be_in_order_and_is_inclusive() -> None:
    with pytest.raises(ValidationError) as error:
        PatientQuery(created_from=date(2026, 5, 2), created_to=date(2026, 5, 1))
    assert error.value.errors()[0]["loc"] == ("created_to",)
    start, end = PatientQuery(created_from=date(2026, 5, 1), created_to=date(2026, 5, 1)).created_bounds()
    assert start == datetime(2026, 5, 1, tzinfo=UTC) and end == datetime(2026, 5, 2, tzinfo=UTC)
    assert PatientQuery(created_to=date.max).created_bounds() == (None, None)


def test_name_search_splits_words() -> None:
    assert PatientQuery(q="  anna   MÜLL ").name_terms == ["anna", "MÜLL"]
