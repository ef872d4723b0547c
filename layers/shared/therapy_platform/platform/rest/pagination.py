"""The list-response shape every collection endpoint uses."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, Field

from therapy_platform.platform.paging import DEFAULT_LIMIT, MAX_LIMIT, MAX_PAGE

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "MAX_PAGE", "Page"]

Item = TypeVar("Item")


class Page(BaseModel, Generic[Item]):
    items: list[Item]
    total: int = Field(ge=0, description="How many items match the filters (all pages)")
    page: int = Field(ge=1)
    limit: int = Field(ge=1, le=MAX_LIMIT)
