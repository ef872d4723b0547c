"""adapters/bulk.py against real PostgreSQL: every type the services write survives the trip,
including NULLs, empty strings and arrays, single rows, and text holding the separators."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from therapy_platform.platform.sql_bulk import bulk_insert

pytestmark = pytest.mark.integration

metadata = MetaData()
sample = Table(
    "bulk_sample",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("n", Integer),
    Column("flag", Boolean),
    Column("label", String(40)),
    Column("note", Text),
    Column("day", Date),
    Column("at", DateTime(timezone=True)),
    Column("tags", ARRAY(String(40)), nullable=False),
    Column("doc", JSONB),
)

# PostgreSQL stores no NUL in text or JSON (the API refuses it with 422 before it gets here).
plain = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))
texts = st.one_of(st.none(), plain)
rows = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.uuids(),
            "n": st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)),
            "flag": st.one_of(st.none(), st.booleans()),
            "label": st.one_of(st.none(), st.text(max_size=40, alphabet="abcÄÖÜß -")),
            "note": texts,
            "day": st.one_of(st.none(), st.dates(date(1900, 1, 1), date(2100, 1, 1))),
            "at": st.one_of(st.none(), st.datetimes(timezones=st.just(UTC), min_value=datetime(1970, 1, 2))),
            "tags": st.lists(
                st.sampled_from(["availability", "age_band", "symptom_preferences"]), max_size=3
            ),
            "doc": st.one_of(st.none(), st.dictionaries(plain, plain, max_size=3)),
        }
    ),
    min_size=1,
    max_size=30,
    unique_by=lambda r: str(r["id"]),
)


@pytest.fixture(scope="module")
def engine(admin_engine: Engine) -> Engine:
    metadata.drop_all(admin_engine)
    metadata.create_all(admin_engine)
    return admin_engine


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=rows)
def test_rows_survive_the_round_trip(engine: Engine, batch: list[dict[str, object]]) -> None:
    with engine.begin() as connection:
        connection.execute(sample.delete())
        returned = bulk_insert(connection, sample, batch, returning=("id",))
        stored = {row.id: row._asdict() for row in connection.execute(select(sample))}
    assert {r.id for r in returned} == {r["id"] for r in batch}
    for row in batch:
        assert stored[row["id"]] == row


def test_separator_characters_in_text_fall_back_safely(engine: Engine) -> None:
    row = {
        "id": uuid.uuid4(),
        "n": 1,
        "flag": True,
        "label": "",
        "note": "a\x1eb\x1dc",
        "day": None,
        "at": None,
        "tags": [],
        "doc": {"k": "\x1e"},
    }
    with engine.begin() as connection:
        connection.execute(sample.delete())
        bulk_insert(connection, sample, [row])
        stored = connection.execute(select(sample)).one()._asdict()
    assert stored == row


@pytest.mark.parametrize("word", ["NULL", "nULL", "null", 'say "null"', "back\\slash", "{a,b}", " "])
def test_text_that_reads_like_null_stays_text_beside_a_separator(engine: Engine, word: str) -> None:
    """Found by Hypothesis: the fallback once let pg8000 encode the array, which leaves `nULL`
    unquoted, and PostgreSQL stored a NULL instead of the text."""
    batch: list[dict[str, object]] = [
        {
            "id": uuid.uuid4(),
            "n": None,
            "flag": None,
            "label": None,
            "note": note,
            "day": None,
            "at": None,
            "tags": [],
            "doc": None,
        }
        for note in (word, "a\x1eb", None)
    ]
    with engine.begin() as connection:
        connection.execute(sample.delete())
        bulk_insert(connection, sample, batch)
        stored = {row.id: row.note for row in connection.execute(select(sample))}
    assert stored == {row["id"]: row["note"] for row in batch}
