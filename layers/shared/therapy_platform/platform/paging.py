"""Limits every list endpoint shares."""

from __future__ import annotations

from typing import Final

DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 200
# Far beyond any real list, and small enough that page * limit stays a valid SQL OFFSET.
MAX_PAGE: Final = 1_000_000
