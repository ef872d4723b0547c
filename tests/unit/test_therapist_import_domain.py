"""Pure rules of the therapist service's directory import: reading the entries of a raw file,
normalising them to the product's vocabulary, content hashes, merging into a stored therapist
(staff edits, operational fields and known emails are never touched), and which listings a
complete run must have seen."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from directory_fakes import entry
from therapy_platform.contracts.directory_files import (
    Enrichment,
    Provenanced,
    RawPage,
    RawRun,
    Region,
    SearchPoint,
    read_raw_document,
)
from therapy_platform.contracts.schedule import parse_window
from therapy_platform.platform.geography.locations import Location, LocationPrecision
from therapy_platform.therapists.domain.therapist import Therapist, TherapistDraft, TherapistStatus
from therapy_platform.therapists.imports.domain.entries import (
    DirectoryRecord,
    EntrySkip,
    SkipReason,
    entries_of,
    language_code,
    normalise_entry,
    phone_windows_of,
)
from therapy_platform.therapists.imports.domain.listings import in_scope
from therapy_platform.therapists.imports.domain.merge import DIRECTORY_FIELDS, merged_values

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def record(**overrides: Any) -> DirectoryRecord:
    result = normalise_entry(entry(**overrides), "page 1, entry 1")
    assert isinstance(result, DirectoryRecord), result
    return result


def skip(**overrides: Any) -> EntrySkip:
    result = normalise_entry(entry(**overrides), "page 1, entry 1")
    assert isinstance(result, EntrySkip), result
    return result


# ---------------------------------------------------------------------------------------------
# Reading the entries of a file
# ---------------------------------------------------------------------------------------------


def test_bare_answers_and_run_files_read_alike() -> None:
    answer = {"arztPraxisDatas": [entry()], "moreResults": False}
    bare = read_raw_document(json.dumps(answer))
    listed = read_raw_document(json.dumps([answer, answer]))
    run = RawRun(region=Region.parse("52"), complete=True, pages=[RawPage(answer=answer)])
    stored = read_raw_document(run.to_json_bytes())
    assert bare.region is None and not bare.complete
    assert len(listed.pages) == 2
    assert stored.region == Region.parse("52") and stored.complete
    assert [getattr(e, "position", None) for e in entries_of(stored)] == ["page 1, entry 1"]


def test_a_page_that_is_not_an_answer_is_one_skip() -> None:
    run = RawRun(pages=[RawPage(raw_text="<html>", error="page 0 is not JSON"), RawPage(answer={"x": 1})])
    skips = list(entries_of(run))
    assert [s.reason for s in skips] == [SkipReason.MALFORMED_PAGE, SkipReason.MALFORMED_PAGE]  # type: ignore[union-attr]
    assert skips[0].message == "page 0 is not JSON"  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------
# Listings a complete run must have seen
# ---------------------------------------------------------------------------------------------


def test_scope_of_a_prefix_region_is_its_postcodes_inside_the_circles() -> None:
    region = Region.parse({"prefix": "52", "radius_km": 10})
    points = [SearchPoint(latitude=50.77, longitude=6.08)]
    assert in_scope(region, points, 10, postcode="52062", latitude=50.78, longitude=6.09)
    assert not in_scope(region, points, 10, postcode="53111", latitude=50.78, longitude=6.09)
    assert not in_scope(region, points, 10, postcode="52062", latitude=None, longitude=None)
    # At the edge (beyond 9 km of a 10 km circle) absence proves nothing.
    assert not in_scope(region, points, 10, postcode="52062", latitude=50.77 + 9.5 / 111.32, longitude=6.08)


# ---------------------------------------------------------------------------------------------
# Normalising entries
# ---------------------------------------------------------------------------------------------


def test_a_full_entry_in_the_products_vocabulary() -> None:
    result = record()
    values = result.values
    assert values["first_name"] == "Änne" and values["last_name"] == "Müller-Lüdenscheidt"
    assert (
        values["street"] == "Pontstraße 12" and values["postcode"] == "52062" and values["city"] == "Aachen"
    )
    assert values["gender"] == "female" and values["salutation"] == "Frau" and values["title"] == "Dr. phil."
    assert values["website"] == "https://www.praxis-mueller.example"
    # Only the adult offer gives a procedure; the children's offer does not.
    assert values["procedures"] == ["VT"]
    assert values["languages"] == ["de", "en", "tr"]
    # Phone windows from the telephone blocks only (not consultation hours), weekday from the date.
    assert values["phone_windows"] == {"mon": ["08:00-08:50"], "thu": ["12:00-12:30"]}
    assert values["statutory_seat"] is True
    assert set(result.provenance.values()) == {"directory"}
    assert (result.latitude, result.longitude) == (50.7766, 6.0834)
    TherapistDraft.model_validate(values)  # always storable


@pytest.mark.parametrize(
    ("overrides", "reason", "names"),
    [
        ({"name": None}, SkipReason.MISSING_FIELD, "name"),
        ({"vorname": "  "}, SkipReason.MISSING_FIELD, "vorname"),
        ({"id": None, "plz": ""}, SkipReason.MISSING_FIELD, "id, plz"),
        ({"plz": "5206A"}, SkipReason.INVALID_VALUE, "plz (postcode)"),
        ({"tel": "call me maybe"}, SkipReason.INVALID_VALUE, "tel (phone)"),
        (
            {
                "tsz": [
                    {
                        "datum": "23.11.2026",
                        "typen": [{"typ": "Telefonische Erreichbarkeit", "zeiten": ["25:00-26:00"]}],
                    }
                ]
            },
            SkipReason.INVALID_VALUE,
            "tsz (phone_windows)",
        ),
        (
            {"psy": [{"verfahren": "Verhaltenstherapie", "altersgruppen": ["Kinder und Jugendliche"]}]},
            SkipReason.NOT_FOR_ADULTS,
            "no therapy offer for adults",
        ),
        ({"psy": []}, SkipReason.NOT_FOR_ADULTS, "no therapy offers"),
        ({"psy": "Verhaltenstherapie"}, SkipReason.INVALID_VALUE, "psy"),
    ],
)
def test_entries_that_cannot_be_imported_name_the_reason(
    overrides: dict[str, Any], reason: SkipReason, names: str
) -> None:
    result = skip(**overrides)
    assert result.reason is reason
    assert names in result.message
    assert result.position == "page 1, entry 1"


def test_a_non_object_is_a_malformed_entry() -> None:
    result = normalise_entry("kaputter Eintrag", "page 2, entry 7")
    assert isinstance(result, EntrySkip) and result.reason is SkipReason.MALFORMED_ENTRY


def test_missing_optional_fields_are_simply_absent() -> None:
    result = record(
        tel="", fax=None, email="", web="", titel=None, tsz=None, fs=None, strasse=None, lat=None, lon=None
    )
    assert not {"phone", "fax", "email", "website", "title", "phone_windows", "street"} & set(result.values)
    assert result.values["languages"] == ["de"]
    assert result.latitude is None


def test_mobile_number_when_no_landline_and_no_windows_when_the_directory_says_none() -> None:
    result = record(tel="", handy="0171 1234567", keineSprechzeiten=True)
    assert result.values["phone"] == "0171 1234567"
    assert "phone_windows" not in result.values


def test_unknown_languages_and_offers_are_warnings_not_skips() -> None:
    result = record(
        fs=["Klingonisch", "persisch"],
        psy=[
            {"verfahren": "EMDR", "altersgruppen": ["Erwachsene"]},
            "Analytische Psychotherapie (Erwachsene)",
        ],
    )
    assert result.values["languages"] == ["de", "fa"]
    assert result.values["procedures"] == ["AP"]
    assert any("Klingonisch" in warning for warning in result.warnings)
    assert any("EMDR" in warning for warning in result.warnings)


def test_coordinates_outside_germany_are_dropped_with_a_warning() -> None:
    result = record(lat=0.0, lon=0.0)
    assert result.latitude is None and any("outside Germany" in w for w in result.warnings)


def test_the_website_fills_gaps_and_says_so_but_never_overrides_the_directory() -> None:
    found = Enrichment(
        email=Provenanced(value="Info@Praxis.example", source="https://praxis.example/kontakt"),
        phone_windows=Provenanced(value={"tue": ["08:00-09:00"]}, source="https://praxis.example/"),
    )
    filled = normalise_entry(entry(email="", tsz=None), "p", found)
    assert isinstance(filled, DirectoryRecord)
    assert filled.values["email"] == "Info@Praxis.example"
    assert filled.provenance["email"] == "website:https://praxis.example/kontakt"
    assert filled.values["phone_windows"] == {"tue": ["08:00-09:00"]}
    kept = normalise_entry(entry(), "p", found)
    assert isinstance(kept, DirectoryRecord)
    assert kept.values["email"] == "praxis@mueller.example" and kept.provenance["email"] == "directory"


def test_language_names_map_to_iso_codes() -> None:
    assert [language_code(name) for name in ("Türkisch", " englisch ", "RU", "Gebärdensprache")] == [
        "tr",
        "en",
        "ru",
        None,
    ]


windows = st.tuples(st.integers(0, 23 * 60), st.integers(1, 60 * 4)).map(
    lambda t: (t[0], min(t[0] + t[1], 24 * 60))
)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}" if minutes < 24 * 60 else "24:00"


@settings(max_examples=200)
@given(days=st.lists(st.tuples(st.integers(0, 13), st.lists(windows, min_size=1, max_size=4)), max_size=10))
def test_phone_windows_of_many_dated_days_become_one_valid_week(
    days: list[tuple[int, list[tuple[int, int]]]],
) -> None:
    monday = date(2026, 11, 23)
    tsz = [
        {
            "datum": (monday + timedelta(days=offset)).strftime("%d.%m.%Y"),
            "typen": [
                {
                    "typ": "Telefonische Erreichbarkeit",
                    "zeiten": [f"{_clock(a)}-{_clock(b)}" for a, b in spans],
                }
            ],
        }
        for offset, spans in days
    ]
    week = phone_windows_of(tsz)
    expected: dict[int, set[int]] = {}
    for offset, spans in days:
        for start, end in spans:
            expected.setdefault(offset % 7, set()).update(range(start, end))
    covered: dict[int, set[int]] = {}
    for day_index, day in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun")):
        spans = [parse_window(w) for w in week.get(day, [])]
        assert spans == sorted(spans)
        assert all(a[1] < b[0] for a, b in pairwise(spans))  # disjoint, not touching
        covered[day_index] = {minute for start, end in spans for minute in range(start, end)}
    assert {day: minutes for day, minutes in covered.items() if minutes} == expected
    TherapistDraft.model_validate(
        {"first_name": "A", "last_name": "B", "postcode": "10115", "phone_windows": week}
    )


def test_content_hash_depends_on_content_only() -> None:
    first, again = record(), normalise_entry(dict(reversed(list(entry().items()))), "elsewhere")
    assert isinstance(again, DirectoryRecord)
    assert first.content_hash == again.content_hash
    assert record(tel="0241 999999").content_hash != first.content_hash
    assert len(first.content_hash) == 64


# ---------------------------------------------------------------------------------------------
# Merging
# ---------------------------------------------------------------------------------------------

OPERATIONAL = {
    "status",
    "block_reason",
    "next_contact_allowed_on",
    "preferred_age_min",
    "preferred_age_max",
    "preferred_patient_gender",
    "offers_group_therapy",
    "group_only",
    "symptom_preferences",
    "potentially_available",
    "working_hours",
}


def stored_therapist(staff_edited: set[str], *, email: str | None = "alt@praxis.example") -> Therapist:
    draft = TherapistDraft(
        first_name="Änne",
        last_name="Müller-Lüdenscheidt",
        postcode="52062",
        email=email,
        phone="0241 1",
        city="Aachen",
        preferred_age_min=18,
        preferred_age_max=65,
        offers_group_therapy=True,
        symptom_preferences=["depression"],
        working_hours={"wed": ["10:00-12:00"]},
        potentially_available=True,
    )
    therapist = Therapist.create(
        draft,
        location=Location.at(50.7, 6.0, LocationPrecision.POSTCODE),
        now=NOW,
        staff_edited_fields=staff_edited,
    )
    return therapist.model_copy(
        update={
            "status": TherapistStatus.BLOCKED,
            "block_reason": "Beschwerde",
            "next_contact_allowed_on": date(2027, 1, 1),
        }
    )


@settings(max_examples=150)
@given(
    staff_edited=st.sets(st.sampled_from(DIRECTORY_FIELDS)),
    drop=st.sets(st.sampled_from(["email", "tel", "fax", "web", "titel", "tsz", "strasse", "ort"])),
    known_email=st.booleans(),
)
def test_merge_never_touches_staff_fields_operational_fields_or_a_known_email(
    staff_edited: set[str], drop: set[str], known_email: bool
) -> None:
    current = stored_therapist(staff_edited, email="alt@praxis.example" if known_email else None)
    overrides = {key: None for key in drop}
    incoming = record(**overrides)
    values = merged_values(current, incoming)
    before = current.editable_values()
    for name in staff_edited:
        assert values[name] == before[name]
    for name in OPERATIONAL & set(values):
        assert values[name] == before[name]
    if known_email:
        assert values["email"]  # never blanked
    for name, value in incoming.values.items():
        if name not in staff_edited:
            assert values[name] == value
    TherapistDraft.model_validate(values)


def test_a_new_therapist_gets_the_records_values_only() -> None:
    values = merged_values(None, record(email=""))
    assert "email" not in values
    draft = TherapistDraft.model_validate(values)
    assert draft.preferred_age_min is None and draft.symptom_preferences == []


def test_record_identity_is_the_directory_id() -> None:
    assert record().directory_id == "a1b2c3"
    assert record(id=4711).directory_id == "4711"
    assert isinstance(uuid.uuid4(), uuid.UUID)
