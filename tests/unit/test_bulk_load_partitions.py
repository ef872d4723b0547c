"""Splitting an operator file into parts that load side by side (platform/bulk_load.partition_rows
and the services' partition keys): rows that may describe the same person never end up in
different processes, and each process sees its rows in file order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from therapy_platform.patients.use_cases import bulk_partition_keys as patient_keys
from therapy_platform.platform.bulk_load import loose_text, partition_rows
from therapy_platform.therapists.use_cases import bulk_partition_keys as therapist_keys

# Rows as sets of small keys, so that shared keys (and chains of them) are common.
rows_of_keys = st.lists(st.frozensets(st.integers(min_value=0, max_value=15), max_size=3), max_size=60)


@given(rows_of_keys, st.integers(min_value=1, max_value=6))
def test_every_row_lands_once_rows_sharing_a_key_together_in_file_order(
    keys: list[frozenset[int]], parts: int
) -> None:
    numbered = list(enumerate(keys, start=2))
    split = partition_rows(numbered, lambda row: row, parts)

    assert len(split) <= parts
    assert sorted(row for part in split for row in part) == sorted(numbered)
    for part in split:
        assert part and [number for number, _ in part] == sorted(number for number, _ in part)
    part_of = {number: index for index, part in enumerate(split) for number, _ in part}
    for first, first_keys in numbered:
        for second, second_keys in numbered:
            if first_keys & second_keys:
                assert part_of[first] == part_of[second]


@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=40, max_size=200, unique=True))
def test_rows_without_shared_keys_spread_evenly(distinct: list[int]) -> None:
    split = partition_rows(list(enumerate(distinct)), lambda row: [row], 4)
    sizes = [len(part) for part in split]
    assert len(split) == 4 and max(sizes) - min(sizes) <= 1


def test_loose_text_equates_what_matching_equates_ignoring_case_and_spacing() -> None:
    assert loose_text(" Müller ") == loose_text("MÜLLER") == loose_text("mu\u0308ller")
    assert loose_text("Schäfer-Weiß") == loose_text("schäfer weiß")
    assert loose_text("Weiß") != loose_text("Weis")  # coarser would be fine; different stays apart
    assert loose_text("  ") is None and loose_text(None) is None and loose_text(7) is None


def test_a_therapists_rows_share_a_key_by_directory_id_or_by_name() -> None:
    moved = therapist_keys({"directory_id": "D-1", "last_name": "Schäfer", "postcode": "52062"})
    renamed = therapist_keys({"directory_id": " d-1", "last_name": "Weiß", "postcode": "10115"})
    by_contact = therapist_keys({"last_name": "SCHÄFER", "email": "praxis@example.org", "postcode": "52062"})
    assert set(moved) & set(renamed) and set(moved) & set(by_contact)
    assert therapist_keys(["not", "an", "object"]) == () and therapist_keys({}) == ()


def test_a_patients_rows_share_a_key_by_last_name() -> None:
    first = patient_keys({"last_name": "Müller", "birth_date": "1980-01-01", "email": "a@example.org"})
    again = patient_keys({"last_name": "MÜLLER ", "birth_date": "1980-01-01", "email": "A@example.org"})
    assert first == again and first != patient_keys({"last_name": "Meier"})
    assert patient_keys("a string") == () and patient_keys({"last_name": ""}) == ()
