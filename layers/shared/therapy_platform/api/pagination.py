"""The list-response shape every collection endpoint uses."""

from __future__ import annotations

from typing import Final, Generic, TypeVar

from pydantic import BaseModel, Field

DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 200

Item = TypeVar("Item")


class Page(BaseModel, Generic[Item]):
    items: list[Item]
    total: int = Field(ge=0, description="How many items match the filters (all pages)")
    page: int = Field(ge=1)
    limit: int = Field(ge=1, le=MAX_LIMIT)
