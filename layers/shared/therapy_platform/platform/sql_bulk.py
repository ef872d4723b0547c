"""Fast multi-row INSERTs for PostgreSQL: one statement per batch, every column sent as one
text value (the cells joined by a record separator), split and unnested on the server.

A national bundle round writes tens of thousands of rows (bundles, members, outbox events,
audit entries). SQLAlchemy's multi-VALUES insert compiles one bind parameter per cell, which
costs more than the database's work; pg8000's executemany is a round trip per row. Sending one
array per column keeps the statement (and its compilation) the same size whatever the row
count. One joined string per column also spares pg8000 from escaping every array element
(which costs more than the insert itself); a column whose values contain the separators falls
back to a text array.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import Connection, Table, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

_SEPARATOR: Final = "\x1f"  # unit separator: between the elements of an ARRAY cell
_RECORD: Final = "\x1e"  # record separator: between the cells of a column
_NULL: Final = "\x1d"  # group separator: a NULL cell
_BATCH: Final = 20_000
_DIALECT: Final = postgresql.dialect()  # type: ignore[no-untyped-call]


def _as_text(value: Any) -> str | None:
    kind = type(value)
    if kind is str:  # most cells: no isinstance chain (hundreds of thousands per national round)
        return value  # type: ignore[no-any-return]
    if kind is uuid.UUID:
        return str(value)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, int, float, str)):
        return str(value)
    raise TypeError(f"cannot bulk-insert a {type(value).__name__}")


def bulk_insert(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    returning: Sequence[str] = (),
    on_conflict: str | None = None,
    keep: Sequence[str] = (),
) -> list[Any]:
    """Insert `rows` (all with the same keys); returns the RETURNING rows, in no set order.
    With `on_conflict` (a unique column), a row whose key exists updates that row instead,
    every column but the key and `keep` (no two rows of one call may share a key)."""
    if not rows:
        return []
    columns = list(rows[0].keys())
    returned: list[Any] = []
    target = _target(table)
    names = ", ".join(f'"{name}"' for name in columns)
    for start in range(0, len(rows), _BATCH):
        select, params = _unnested(table, columns, rows[start : start + _BATCH])
        statement = f"INSERT INTO {target} ({names}) {select}"
        if on_conflict is not None:
            changed = [name for name in columns if name != on_conflict and name not in keep]
            updates = ", ".join(f'"{name}" = EXCLUDED."{name}"' for name in changed)
            statement += f' ON CONFLICT ("{on_conflict}") DO UPDATE SET {updates}'
        if returning:
            statement += " RETURNING " + ", ".join(f'"{name}"' for name in returning)
        result = connection.execute(text(statement), params)
        if returning:
            returned.extend(result.all())
    return returned


def bulk_update(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]], *, key: str) -> None:
    """Update the rows of `table` whose `key` column equals a row's: each to that row's other
    values (all rows with the same keys, no key twice), in one UPDATE ... FROM per batch."""
    if not rows:
        return
    columns = list(rows[0].keys())
    target = _target(table)
    updates = ", ".join(f'"{name}" = v."{name}"' for name in columns if name != key)
    for start in range(0, len(rows), _BATCH):
        select, params = _unnested(table, columns, rows[start : start + _BATCH])
        connection.execute(
            text(f'UPDATE {target} AS t SET {updates} FROM ({select}) AS v WHERE t."{key}" = v."{key}"'),
            params,
        )


def _target(table: Table) -> str:
    return f'{table.schema}."{table.name}"' if table.schema else f'"{table.name}"'


def _unnested(
    table: Table, columns: Sequence[str], batch: Sequence[Mapping[str, Any]]
) -> tuple[str, dict[str, Any]]:
    """`SELECT ... FROM unnest(...)`: the batch as rows of the table's column types."""
    params: dict[str, Any] = {}
    selects: list[str] = []
    for index, name in enumerate(columns):
        column = table.c[name]
        key = f"c{index}"
        values = [row[name] for row in batch]
        if isinstance(column.type, ARRAY):
            params[key] = [None if v is None else _SEPARATOR.join(map(str, v)) for v in values]
            element = column.type.item_type.compile(dialect=_DIALECT)
            selects.append(f'CAST(string_to_array(u.{key}, chr(31)) AS {element}[]) AS "{name}"')
        elif isinstance(column.type, JSONB):
            params[key] = [None if v is None else json.dumps(v, default=str) for v in values]
            selects.append(f'CAST(u.{key} AS jsonb) AS "{name}"')
        else:
            params[key] = [_as_text(v) for v in values]
            selects.append(f'CAST(u.{key} AS {column.type.compile(dialect=_DIALECT)}) AS "{name}"')
    arrays = ", ".join(_column_array(key, values, params) for key, values in list(params.items()))
    return f"SELECT {', '.join(selects)} FROM unnest({arrays}) AS u({', '.join(params)})", params


def _column_array(key: str, values: list[str | None], params: dict[str, Any]) -> str:
    """SQL for one column's cells as text[]: one joined string when that is safe."""
    # (A lone empty string would split into no cells at all.)
    if values == [""] or any(v is not None and (_RECORD in v or _NULL in v) for v in values):
        params[key] = _array_literal(values)
        return f"CAST(CAST(:{key} AS text) AS text[])"
    params[key] = _RECORD.join(_NULL if v is None else v for v in values)
    return f"string_to_array(CAST(:{key} AS text), chr(30), chr(29))"


def _array_literal(values: list[str | None]) -> str:
    """A text[] literal with every element quoted. pg8000's own list encoding leaves `nULL`
    unquoted, which PostgreSQL reads (case-insensitively) as a NULL element."""
    cells = ("NULL" if v is None else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(cells) + "}"
