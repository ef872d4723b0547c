"""The erasure proof's scanner (issue 12 item 2): after a patient with unique canary values
was erased, search every text and JSON column of every table in every service schema, and
every stored object or file, for any of the values. Used by tests/e2e/test_erasure_canary.py
(the deployed local stack) and tests/integration/test_erasure_everywhere.py (the use cases
against real PostgreSQL).

A value is found case-insensitively; a phone number is found by its digits whatever the
separators (the digits after the country or trunk prefix, in the digits-only form of each
text)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

# Column types whose values can hold a person's text.
TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb", "ARRAY", "USER-DEFINED")
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast", "public")


@dataclass(frozen=True)
class Canary:
    """A patient's unique values: nothing else anywhere can contain them by chance."""

    first_name: str
    last_name: str
    email: str
    phone: str

    @classmethod
    def new(cls) -> Canary:
        tag = uuid.uuid4().hex[:10]
        letters = "".join(chr(ord("a") + int(digit, 16) % 26) for digit in tag)
        digits = "".join(str(int(digit, 16) % 10) for digit in uuid.uuid4().hex[:8])
        return cls(
            first_name=f"Zora{letters[:5]}",
            last_name=f"Kanarie{letters[5:]}",
            email=f"kanarie.{tag}@example.org",
            phone=f"+49 30 {digits[:3]} {digits[3:]}",
        )

    @property
    def phone_digits(self) -> str:
        return re.sub(r"\D", "", self.phone).removeprefix("49")

    def texts(self) -> tuple[str, ...]:
        return (self.first_name, self.last_name, self.email)

    def found_in(self, value: str) -> list[str]:
        """Which canary values this text contains."""
        lowered = value.lower()
        hits = [term for term in self.texts() if term.lower() in lowered]
        if self.phone_digits in re.sub(r"\D", "", value):
            hits.append(self.phone)
        return hits


@dataclass(frozen=True)
class Hit:
    where: str  # schema.table.column, or the object's key / file's path
    values: tuple[str, ...]


def text_columns(connection: Connection) -> list[tuple[str, str, str]]:
    """(schema, table, column) of every text-like column of every non-system schema."""
    rows = connection.execute(
        text(
            "SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns c"
            " JOIN information_schema.tables t ON t.table_schema = c.table_schema"
            " AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE'"
            " WHERE c.table_schema <> ALL(:system) AND c.data_type = ANY(:types)"
            " ORDER BY 1, 2, 3"
        ),
        {"system": list(SYSTEM_SCHEMAS), "types": list(TEXT_TYPES)},
    )
    return [(row[0], row[1], row[2]) for row in rows]


def scan_database(connection: Connection, canary: Canary) -> list[Hit]:
    """Every column (as text) of every row that contains a canary value. The prefilter runs in
    PostgreSQL (one query per column), the exact check here."""
    hits: list[Hit] = []
    digits = canary.phone_digits
    for schema, table, column in text_columns(connection):
        quoted = f'"{schema}"."{table}"'
        as_text = f'"{column}"::text'
        found = connection.execute(
            text(
                f"SELECT {as_text} AS value FROM {quoted} WHERE {as_text} ILIKE ANY(:likes)"
                f" OR regexp_replace({as_text}, '[^0-9]', '', 'g') LIKE :digits"
            ),
            {"likes": [f"%{term}%" for term in canary.texts()], "digits": f"%{digits}%"},
        ).scalars()
        for value in found:
            values = canary.found_in(value)
            if values:
                hits.append(Hit(f"{schema}.{table}.{column}", tuple(values)))
    return hits


def scan_objects(objects: Mapping[str, bytes] | Iterable[tuple[str, bytes]], canary: Canary) -> list[Hit]:
    """Stored objects (S3 keys or files) whose bytes, read as UTF-8 and decoded as a mail,
    contain a canary value."""
    from email import policy
    from email.parser import BytesParser

    items = objects.items() if isinstance(objects, Mapping) else objects
    hits: list[Hit] = []
    for key, raw in items:
        found = set(canary.found_in(raw.decode("utf-8", errors="replace")))
        message: Any = BytesParser(policy=policy.default).parsebytes(raw)
        for part in message.walk():
            if part.get_content_maintype() == "text":
                try:
                    found.update(canary.found_in(str(part.get_content())))
                except (LookupError, ValueError):
                    continue
        if found:
            hits.append(Hit(key, tuple(sorted(found))))
    return hits


def files_under(path: Path) -> list[tuple[str, bytes]]:
    return [(str(file), file.read_bytes()) for file in sorted(path.rglob("*")) if file.is_file()]
