"""Therapist rules: field validation naming every offending field, time windows, languages,
the import row's spreadsheet forms, cooling-period dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from therapy_platform.contracts.languages import ISO_639_1
from therapy_platform.contracts.schedule import format_window, parse_window
from therapy_platform.platform.clock import platform_today
from therapy_platform.platform.geography.locations import Location
from therapy_platform.therapists.domain.therapist import (
    MAX_COOLING_DAYS,
    Therapist,
    TherapistDraft,
    TherapistImportRow,
    TherapistPatch,
    TherapistValidationError,
    check_cooling_date,
    practice_key,
)

VALID: dict[str, Any] = {"first_name": "Jürgen", "last_name": "Weiß", "postcode": "01067"}
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def _error_fields(error: ValidationError) -> set[str]:
    return {".".join(str(part) for part in entry["loc"]) for entry in error.errors()}


def test_defaults_and_normalisation() -> None:
    draft = TherapistDraft.model_validate(
        {
            **VALID,
            "procedures": ["vt", "TP", "VT"],
            "languages": ["EN", "de", "en"],
            "website": "www.praxis-weiss.de",
            "gender": "Female",
            "symptom_preferences": ["trauma", "anxiety", "trauma"],
            "working_hours": {"fri": ["14:00 - 18:00"], "mon": ["13:00-17:00", "08:00-12:00"], "sun": []},
        }
    )
    assert draft.postcode == "01067" and draft.last_name == "Weiß"
    assert draft.procedures == ["TP", "VT"]
    assert draft.languages == ["de", "en"]
    assert draft.website == "https://www.praxis-weiss.de"
    assert draft.gender == "female"
    assert draft.symptom_preferences == ["anxiety", "trauma"]
    # Days in week order, windows sorted and normalised, empty days dropped.
    assert list(draft.working_hours) == ["mon", "fri"]
    assert draft.working_hours["mon"] == ["08:00-12:00", "13:00-17:00"]  # type: ignore[index]
    assert draft.working_hours["fri"] == ["14:00-18:00"]  # type: ignore[index]
    assert TherapistDraft.model_validate(VALID).languages == ["de"]


def test_every_offending_field_is_named_at_once() -> None:
    bad = {
        "first_name": "  ",
        "postcode": "1234",
        "email": "no-at-sign",
        "phone": "call me",
        "procedures": ["VT", "XX"],
        "languages": ["de", "klingon"],
        "phone_windows": {"mon": ["09:00-08:00"], "someday": ["08:00-09:00"]},
        "working_hours": {"tue": ["08:00-12:00", "11:00-13:00"]},
        "preferred_age_min": -1,
        "preferred_age_max": 121,
        "favourite_colour": "blue",
    }
    with pytest.raises(ValidationError) as error:
        TherapistDraft.model_validate(bad)
    assert _error_fields(error.value) == {
        "first_name",
        "last_name",
        "postcode",
        "email",
        "phone",
        "procedures.1",
        "languages.1",
        "phone_windows.mon.0",
        "phone_windows.someday.[key]",
        "working_hours.tue",
        "preferred_age_min",
        "preferred_age_max",
        "favourite_colour",
    }


@pytest.mark.parametrize(
    ("values", "fields"),
    [
        ({"preferred_age_min": 60, "preferred_age_max": 18}, {"preferred_age_min", "preferred_age_max"}),
        ({"group_only": True, "offers_group_therapy": False}, {"group_only", "offers_group_therapy"}),
        ({"group_only": True}, {"group_only", "offers_group_therapy"}),
    ],
)
def test_rules_across_fields_name_every_field_involved(values: dict[str, Any], fields: set[str]) -> None:
    with pytest.raises(ValidationError) as error:
        TherapistDraft.model_validate({**VALID, **values})
    assert _error_fields(error.value) == fields


def test_age_range_bounds_are_inclusive() -> None:
    draft = TherapistDraft.model_validate({**VALID, "preferred_age_min": 0, "preferred_age_max": 120})
    assert (draft.preferred_age_min, draft.preferred_age_max) == (0, 120)
    same = TherapistDraft.model_validate({**VALID, "preferred_age_min": 30, "preferred_age_max": 30})
    assert same.preferred_age_min == same.preferred_age_max == 30


def test_languages_are_checked_against_iso_639_1() -> None:
    assert len(ISO_639_1) == 183
    assert {"de", "en", "tr", "ar", "uk", "ru", "fa"} <= ISO_639_1
    for code in ("xx", "deu", "d", "", "zz"):
        with pytest.raises(ValidationError) as error:
            TherapistDraft.model_validate({**VALID, "languages": [code]})
        assert _error_fields(error.value) == {"languages.0"}


# ------------------------------------------------------------------------------ time windows

MINUTE = st.integers(min_value=0, max_value=23 * 60 + 59)


@st.composite
def spans(draw: st.DrawFn) -> tuple[int, int]:
    start = draw(st.integers(min_value=0, max_value=23 * 60 + 58))
    end = draw(st.integers(min_value=start + 1, max_value=23 * 60 + 59))
    return start, end


@given(spans())
def test_a_well_formed_window_round_trips(span: tuple[int, int]) -> None:
    text = format_window(*span)
    assert parse_window(text) == span
    assert TherapistDraft.model_validate({**VALID, "phone_windows": {"wed": [text]}}).phone_windows == {
        "wed": [text]
    }


@given(MINUTE, MINUTE)
def test_a_window_must_start_before_it_ends(start: int, end: int) -> None:
    assume(start >= end)
    text = format_window(start, end)
    with pytest.raises(ValidationError) as error:
        TherapistDraft.model_validate({**VALID, "working_hours": {"thu": [text]}})
    assert _error_fields(error.value) == {"working_hours.thu.0"}
    assert "start before it ends" in str(error.value)


@given(st.text(max_size=15))
def test_text_that_is_not_hh_mm_hh_mm_is_rejected(text: str) -> None:
    try:
        start, end = parse_window(text)
    except ValueError:
        with pytest.raises(ValidationError) as error:
            TherapistDraft.model_validate({**VALID, "phone_windows": {"mon": [text]}})
        assert _error_fields(error.value) == {"phone_windows.mon.0"}
    else:  # the generator hit a real window: it must be one (a window may end at 24:00)
        assert 0 <= start < end <= 24 * 60


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


@given(st.lists(spans(), max_size=6))
def test_a_day_is_valid_exactly_when_no_two_windows_overlap(day: list[tuple[int, int]]) -> None:
    expected_valid = not any(_overlap(a, b) for i, a in enumerate(day) for b in day[i + 1 :])
    texts = [format_window(*span) for span in day]
    try:
        draft = TherapistDraft.model_validate({**VALID, "phone_windows": {"fri": texts}})
    except ValidationError as error:
        assert not expected_valid
        assert _error_fields(error) == {"phone_windows.fri"}
        assert "overlap" in str(error)
    else:
        assert expected_valid
        stored = draft.phone_windows.get("fri", [])  # type: ignore[call-overload]
        assert stored == sorted(texts)  # HH:MM sorts like minutes


@given(
    st.dictionaries(
        st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]), st.lists(spans(), max_size=1)
    )
)
def test_days_come_back_in_week_order(schedule: dict[str, list[tuple[int, int]]]) -> None:
    texts = {day: [format_window(*span) for span in windows] for day, windows in schedule.items()}
    draft = TherapistDraft.model_validate({**VALID, "working_hours": texts})
    order = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    assert list(draft.working_hours) == [day for day in order if texts.get(day)]


# ------------------------------------------------------------------------------ derived values


def test_practice_key_is_the_lowercased_email() -> None:
    assert practice_key("  Praxis@Beispiel.DE ") == "praxis@beispiel.de"
    assert practice_key(None) is None and practice_key("  ") is None


def test_created_therapist_is_active_located_and_remembers_staff_fields() -> None:
    draft = TherapistDraft.model_validate({**VALID, "email": "Info@Praxis.de"})
    therapist = Therapist.create(draft, location=Location.unknown(), now=NOW, staff_edited_fields=["email"])
    assert therapist.status == "active" and therapist.block_reason is None
    assert therapist.location_flagged and therapist.practice_key == "info@praxis.de"
    assert therapist.staff_edited_fields == ["email"]
    assert therapist.event_payload()["id"] == str(therapist.id)


def test_with_fields_reports_changes_and_records_staff_edits_only_for_staff() -> None:
    therapist = Therapist.create(TherapistDraft.model_validate(VALID), location=Location.unknown(), now=NOW)
    later = NOW + timedelta(hours=1)
    changed_draft = TherapistDraft.model_validate({**VALID, "city": "Dresden"})
    by_import, changed = therapist.with_fields(
        changed_draft, location=therapist.location, now=later, by_staff=False
    )
    assert changed == ["city"] and by_import.staff_edited_fields == [] and by_import.updated_at == later
    by_staff, _ = therapist.with_fields(changed_draft, location=therapist.location, now=later, by_staff=True)
    assert by_staff.staff_edited_fields == ["city"]
    same, nothing = therapist.with_fields(
        therapist.draft(), location=therapist.location, now=later, by_staff=True
    )
    assert same is therapist and nothing == []


def test_patch_changes_keep_explicit_nulls_and_empty_collections() -> None:
    patch = TherapistPatch.model_validate({"title": None, "languages": None, "city": "Köln"})
    assert patch.changes() == {"title": None, "languages": [], "city": "Köln"}
    assert TherapistPatch.model_validate({}).changes() == {}


# ------------------------------------------------------------------------------ import rows


def test_import_row_reads_spreadsheet_cells() -> None:
    row = TherapistImportRow.model_validate(
        {
            **VALID,
            "directory_id": " 116117-42 ",
            "procedures": "VT; tp",
            "languages": "de, en",
            "phone_windows": '{"mon": ["08:00-09:00"]}',
            "offers_group_therapy": "ja",
            "group_only": "nein",
            "statutory_seat": "true",
            "email": "",
            "fax": "   ",
            "title": None,
        }
    )
    assert row.directory_id == "116117-42"
    assert row.provided() == {
        **VALID,
        "procedures": ["TP", "VT"],
        "languages": ["de", "en"],
        "phone_windows": {"mon": ["08:00-09:00"]},
        "offers_group_therapy": True,
        "group_only": False,
        "statutory_seat": True,
    }


def test_import_row_names_bad_cells() -> None:
    with pytest.raises(ValidationError) as error:
        TherapistImportRow.model_validate(
            {"postcode": "ABCDE", "phone_windows": "{not json", "statutory_seat": "vielleicht", "colour": "x"}
        )
    assert _error_fields(error.value) == {"postcode", "phone_windows", "statutory_seat", "colour"}


def test_validation_error_summary_names_fields() -> None:
    with pytest.raises(ValidationError) as error:
        TherapistDraft.model_validate({"postcode": "1"})
    converted = TherapistValidationError.from_validation_error(error.value)
    assert converted.code == "validation_failed"
    assert converted.message == "invalid or missing fields: first_name, last_name, postcode"
    assert "postcode: hat nicht das erwartete Format" in converted.summary()
    assert "first_name: Pflichtfeld fehlt" in converted.summary()
    assert [(e.field, e.location, e.code) for e in converted.errors] == [
        ("first_name", "body", "missing"),
        ("last_name", "body", "missing"),
        ("postcode", "body", "pattern_mismatch"),
    ]


# ------------------------------------------------------------------------------ cooling period


def test_cooling_dates_from_today_up_to_the_limit_are_accepted() -> None:
    today = date(2026, 11, 22)
    for until in (None, today, today + timedelta(days=28), today + timedelta(days=MAX_COOLING_DAYS)):
        check_cooling_date(until, today=today)


@pytest.mark.parametrize("days", [-1, MAX_COOLING_DAYS + 1])
def test_cooling_dates_in_the_past_or_too_far_ahead_are_rejected(days: int) -> None:
    today = date(2026, 11, 22)
    with pytest.raises(TherapistValidationError) as error:
        check_cooling_date(today + timedelta(days=days), today=today)
    [entry] = error.value.errors
    assert entry.field == "next_contact_allowed_on"
    assert entry.code == ("in_past" if days < 0 else "too_far_ahead")


def test_platform_today_is_the_german_calendar_day() -> None:
    # 23:30 UTC on 22 Nov is already 23 Nov in Berlin.
    assert platform_today(datetime(2026, 11, 22, 23, 30, tzinfo=UTC)) == date(2026, 11, 23)
    assert platform_today(datetime(2026, 11, 22, 12, 0, tzinfo=UTC)) == date(2026, 11, 22)
