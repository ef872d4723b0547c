"""SQL expressions an erasure scrubs text columns with: one place for every service's adapters
(the values are a person's name, email and phone; the mark replaces each occurrence)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_
from sqlalchemy.sql.elements import ColumnElement


def redacted(column: Any, values: list[str], mark: str) -> ColumnElement[Any]:
    """The column's text with every occurrence of each value replaced by the mark."""
    expression: ColumnElement[Any] = column
    for value in values:
        expression = func.replace(expression, value, mark)
    return expression


def mentions(column: Any, values: list[str]) -> ColumnElement[bool]:
    """Whether the column's text contains any of the values (LIKE wildcards escaped)."""
    return or_(*(column.contains(value, autoescape=True) for value in values))
