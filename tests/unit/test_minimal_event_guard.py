"""The guard for minimal events (GDPR Art. 5(1)(c), 25; docs/events.md): no event on the bus
or Kafka may carry a field that can hold personal text (names, contact data, addresses,
notes, reasons, free text). This walks every model of every catalogued event contract, nested
models included, and fails naming the field when one is added: a new field must be an id, a
code, a number, a date or a boolean, or be argued for here.

Also checks the JSON Schemas in events/schemas/ (what consumers see) and real payloads from
the producers (tests/unit/test_event_contracts.py's samples) for personal values."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any, Final, Literal, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from therapy_platform.contracts.catalog import EVENT_PAYLOADS
from tools import event_schemas

# Field names that name personal text, whatever their type.
FORBIDDEN_NAME: Final = re.compile(
    r"(^|_)(name|first_name|last_name|salutation|title|email|mail|phone|fax|mobile|street|address|"
    r"city|website|url|birth_date|birthday|notes?|comment|remarks?|reason|text|message|description|"
    r"body|subject|error|insurer)($|_)"
)
# Fields allowed despite matching a pattern above, each with why it carries no personal text.
ALLOWED_NAMES: Final = {
    "title_rank",  # 0/1/2 for Prof./Dr./other, not the title
    "owner_name_rank",  # a length, not a name
    "email_id",  # the id of the communication service's email record
    "message_id",  # the SMTP/SES message id of an email.* event (machine-made, no content)
    "reachable_by_email",  # boolean
    "reachable_by_phone",  # boolean
    "has_phone_number",  # boolean
    "phone_windows",  # weekly times the practice answers the phone ("08:00-09:00"), no number
}
# Free strings are allowed only under these names (ids, codes and formats, no person's text).
STRING_FIELDS: Final = {
    "reference",  # B1042 / B1042-3: the platform's own numbering
    "bundle_reference",
    "member_reference",
    "practice_key",  # "p:" + SHA-256 of the practice address (contracts/practices.py)
    "postcode",  # 5 digits: what matching's distance rule needs
    "birth_month",  # "YYYY-MM" for age rules (not the birth date)
    "created_by",  # who started a bundle: "round" or a staff user id
    "excluded_by",
    "completed_by",
    "message_id",
    "gender",  # a code of contracts/therapy.Gender in the summary
    "insurance_type",  # a code
    "distance_band",  # "up to 5 km" ...: a band from a fixed list
    "symptoms",  # codes of contracts/symptoms
    "symptom_preferences",
    "languages",  # ISO 639-1 codes
    "availability",  # weekly windows "08:00-12:00"
    "phone_windows",
    "working_hours",
}


def _models(model: type[BaseModel]) -> Iterator[type[BaseModel]]:
    seen: set[type[BaseModel]] = set()
    todo: list[Any] = [model]
    while todo:
        candidate = todo.pop()
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            if candidate not in seen:
                seen.add(candidate)
                yield candidate
                todo += [field.annotation for field in candidate.model_fields.values()]
        else:
            todo += get_args(candidate)


def _leaf_types(annotation: Any) -> Iterator[Any]:
    origin = get_origin(annotation)
    if origin is Annotated:
        yield from _leaf_types(get_args(annotation)[0])
    elif origin is Literal:
        yield Literal
    elif origin in (list, tuple, set, frozenset, Union) or str(origin) in (
        "types.UnionType",
        "<class 'types.UnionType'>",
    ):
        for arg in get_args(annotation):
            yield from _leaf_types(arg)
    elif origin is dict:
        key, value = get_args(annotation)
        yield from _leaf_types(key)
        yield from _leaf_types(value)
    elif get_args(annotation):
        for arg in get_args(annotation):
            yield from _leaf_types(arg)
    else:
        yield annotation


def _free_string(annotation: Any) -> bool:
    """Whether the type admits an arbitrary string (an enum, a literal or a pattern-bound
    string does not)."""
    if get_origin(annotation) is Annotated:
        base, *meta = get_args(annotation)
        if base is str and any(getattr(m, "pattern", None) for m in meta):
            return False
    return any(leaf is str for leaf in _leaf_types(annotation))


def _fields() -> Iterator[tuple[str, str, Any]]:
    models = {m for model in EVENT_PAYLOADS.values() for m in _models(model)}
    for model in sorted(models, key=lambda m: m.__qualname__):
        for name, field in model.model_fields.items():
            yield model.__qualname__, name, field.annotation


def problems_of(fields: list[tuple[str, str, Any]]) -> list[str]:
    found = []
    for model, name, annotation in fields:
        if FORBIDDEN_NAME.search(name) and name not in ALLOWED_NAMES:
            found.append(f"{model}.{name}: the name says it holds personal text")
        elif _free_string(annotation) and name not in STRING_FIELDS:
            found.append(f"{model}.{name}: a free string (use an id, a code, an enum or a pattern)")
    return found


def test_no_event_contract_field_can_carry_personal_text() -> None:
    assert problems_of(list(_fields())) == []


@pytest.mark.parametrize(
    ("name", "annotation"),
    [
        ("last_name", str),
        ("email", str | None),
        ("notes", str | None),
        ("street", str),
        ("block_reason", str | None),
        ("discard_reason", str | None),
        ("comment", str),
        ("free_form", str),  # any new free string
        ("contacts", list[str]),
        ("birth_date", date),
    ],
)
def test_the_guard_fails_when_such_a_field_is_added(name: str, annotation: Any) -> None:
    assert problems_of([("NewPayload", name, annotation)]) != []


@pytest.mark.parametrize(
    ("name", "annotation"),
    [("therapist_id", uuid.UUID), ("sent_at", datetime), ("size", int), ("reachable_by_email", bool)],
)
def test_the_guard_lets_ids_dates_numbers_and_booleans_through(name: str, annotation: Any) -> None:
    class Code(Enum):
        A = "a"

    assert problems_of([("NewPayload", name, annotation), ("NewPayload", "kind", Code)]) == []


def test_the_committed_schemas_show_no_personal_field() -> None:
    for event_type in EVENT_PAYLOADS:
        schema = json.loads((event_schemas.SCHEMA_DIR / f"{event_type}.schema.json").read_text())
        names: set[str] = set()

        def walk(node: Any, names: set[str] = names) -> None:
            if isinstance(node, dict):
                names.update((node.get("properties") or {}).keys())
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(schema["properties"]["payload"])
        walk(schema.get("$defs", {}))
        bad = {n for n in names if FORBIDDEN_NAME.search(n) and n not in ALLOWED_NAMES}
        assert bad == set(), f"{event_type}: {sorted(bad)}"


def test_real_producer_payloads_carry_no_personal_value() -> None:
    from test_event_contracts import producer_payloads

    text = json.dumps(producer_payloads(), ensure_ascii=False)
    # The people, addresses and notes the producers' records hold in those samples.
    for value in (
        "Ayşe",
        "Yilmaz-Schneider",
        "Karl-Marx-Straße",
        "ayse@example.de",
        "+49 30 1234567",
        "1985-04-12",
        "AOK Nordost",
        "Bevorzugt Termine",
        "Müller",
        "Hauptstraße 5",
        "030 1234567",
        "praxis@mueller.example",
        "Dringend",
        "Rückruf am Dienstag",
        "passt nicht",
        "SMTP 550",
        "Beschwerde",
    ):
        assert value.casefold() not in text.casefold(), value
