"""contracts/erasure.py: a person's values removed from shared text and JSON."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from therapy_platform.contracts.erasure import REDACTED, ErasureTerms, forget, mentions, scrub, scrub_text

TERMS = ErasureTerms.of(
    texts=["Anna Kanarienvogel", "anna.k@example.org", "P-4711"], phones=["+49 30 1234567"]
)


def test_names_emails_and_references_are_removed_case_insensitively() -> None:
    text = "Frau ANNA KANARIENVOGEL (anna.K@Example.org), Referenz p-4711, Kanarienvogel, Anna: bitte"
    scrubbed = scrub_text(text, TERMS)
    assert "kanarienvogel" not in scrubbed.lower()
    assert "example.org" not in scrubbed.lower()
    assert "4711" not in scrubbed
    assert scrubbed.startswith("Frau [gelöscht] ([gelöscht]), Referenz [gelöscht], [gelöscht]: bitte")


def test_phone_numbers_match_whatever_the_separators_and_prefix() -> None:
    for written in ["030 1234567", "030/123 45 67", "+49 (0)30 123-4567", "0049301234567", "301234567"]:
        assert scrub_text(f"Tel. {written} abends", TERMS) == f"Tel. {REDACTED} abends", written


def test_short_terms_are_ignored_and_empty_terms_change_nothing() -> None:
    terms = ErasureTerms.of(texts=["A", "Dr", None, "  "], phones=["123"])
    assert not terms
    assert scrub_text("Dr A sagt 123", terms) == "Dr A sagt 123"


def test_json_documents_are_scrubbed_in_every_string_and_key() -> None:
    document = {
        "members": [{"name": "Anna Kanarienvogel", "age": 34}, {"name": "Berta Andere", "age": 50}],
        "Anna Kanarienvogel": True,
        "count": 2,
    }
    scrubbed = scrub(document, TERMS)
    assert scrubbed == {
        "members": [{"name": REDACTED, "age": 34}, {"name": "Berta Andere", "age": 50}],
        REDACTED: True,
        "count": 2,
    }
    assert mentions(document, TERMS)
    assert not mentions(scrubbed, TERMS)


# Letters, digits and the punctuation of names and addresses (no brackets: the marker's own).
_ALPHABET = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-@+äöüÄÖÜß")
_TERM = st.text(_ALPHABET, min_size=3, max_size=12).filter(
    lambda t: t.strip() == t and "  " not in t and t.lower() not in REDACTED.lower()
)


@given(st.lists(_TERM, min_size=1, max_size=4), st.lists(st.text(_ALPHABET, max_size=30), max_size=6))
def test_no_term_survives_and_scrubbing_is_idempotent(terms: list[str], pieces: list[str]) -> None:
    erasure = ErasureTerms.of(texts=terms)
    text = "".join(
        piece + (terms[index % len(terms)] if index % 2 else "") for index, piece in enumerate(pieces)
    )
    scrubbed = scrub_text(text, erasure)
    for term in erasure.texts:
        if term.lower() in REDACTED.lower():
            continue
        assert re.search(re.escape(term), scrubbed, re.IGNORECASE) is None
    assert scrub_text(scrubbed, erasure) == scrubbed


@given(st.text(st.characters(categories=("Ll", "Zs")), max_size=40))
def test_text_without_the_values_is_unchanged(text: str) -> None:
    digits_only = ErasureTerms.of(phones=["+49 30 1234567"], texts=["4711-X"])
    assert scrub_text(text, digits_only) == text


def test_forget_drops_the_fields_of_the_entries_that_name_the_person_only() -> None:
    gone, other = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
    payload = {
        "id": "bundle",
        "accepted_count": 1,
        "members": [
            {
                "id": "m1",
                "patient_id": gone,
                "reference": "B7-1",
                "notes": "ruft zurück",
                "patient": {"age": 34},
            },
            {"id": "m2", "patient_id": other, "reference": "B7-2", "notes": "ok", "patient": {"age": 50}},
        ],
    }
    assert forget(payload, [gone], ["notes", "patient"]) == {
        "id": "bundle",
        "accepted_count": 1,
        "members": [
            {"id": "m1", "patient_id": gone, "reference": "B7-1", "notes": REDACTED, "patient": None},
            {"id": "m2", "patient_id": other, "reference": "B7-2", "notes": "ok", "patient": {"age": 50}},
        ],
    }
    assert forget(payload, [], ["notes"]) == payload
    search = {
        "id": gone,
        "notes": None,
        "exclusions": [{"therapist_id": other, "reason": "kennt sie privat"}],
    }
    assert forget(search, [gone], ["notes", "reason"]) == {
        "id": gone,
        "notes": None,
        "exclusions": [{"therapist_id": other, "reason": REDACTED}],
    }


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(_ALPHABET, max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(_ALPHABET, max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(st.lists(_TERM, min_size=1, max_size=3), _JSON)
def test_no_term_survives_anywhere_in_a_json_document(terms: list[str], document: object) -> None:
    erasure = ErasureTerms.of(texts=terms)
    scrubbed = scrub(document, erasure)
    assert not mentions(scrubbed, erasure) or any(t.lower() in REDACTED.lower() for t in erasure.texts)
    assert scrub(scrubbed, erasure) == scrubbed


@given(
    st.text("0123456789", min_size=7, max_size=10).filter(lambda d: d[0] != "0" and not d.startswith("49")),
    st.sampled_from(["+49 ", "+49", "0049 ", "0", "+49 (0)"]),
    st.lists(st.sampled_from(["", " ", "-", "/", "."]), min_size=10, max_size=10),
)
def test_a_phone_number_is_found_however_written(digits: str, prefix: str, separators: list[str]) -> None:
    terms = ErasureTerms.of(phones=[f"+49 {digits}"])
    written = prefix + "".join(digit + separators[index] for index, digit in enumerate(digits)).rstrip(" -/.")
    assert scrub_text(f"Tel.: {written}, bitte", terms) == f"Tel.: {REDACTED}, bitte"
