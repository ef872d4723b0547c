"""Rows as JSON-safe records: what a personal-data export hands out (every column, values in
their JSON form: uuids and instants as strings, JSONB as it is)."""

from __future__ import annotations

from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import Connection, Executable


def json_records(connection: Connection, statement: Executable) -> list[dict[str, Any]]:
    return [
        {name: to_jsonable_python(value) for name, value in row._mapping.items()}
        for row in connection.execute(statement)
    ]
