"""The list-response shape every collection endpoint uses: `items`, `total`, `page`, `limit`
and the links `next` and `prev` (absolute paths with the request's own query parameters, only
`page` changed; null at either end). Routes return a `Page` with the links empty; the resolver
fills them from the request (`page_links`), so no route builds a URL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Generic, TypeVar
from urllib.parse import urlencode

from pydantic import BaseModel, Field

from therapy_platform.platform.paging import DEFAULT_LIMIT, MAX_LIMIT, MAX_PAGE

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "MAX_PAGE", "Page", "PageLinks", "page_links"]

Item = TypeVar("Item")

LINK_DESCRIPTION: Final = "Absolute path of the {} page with the same query parameters; null at the {}"
# A body with these fields is a page; the resolver fills its links.
PAGE_FIELDS: Final = frozenset({"total", "page", "limit", "next", "prev"})


class PageLinks(BaseModel):
    """Where the neighbouring pages are (filled by the resolver)."""

    next: str | None = Field(default=None, description=LINK_DESCRIPTION.format("next", "last page"))
    prev: str | None = Field(default=None, description=LINK_DESCRIPTION.format("previous", "first page"))


class Page(PageLinks, Generic[Item]):
    items: list[Item]
    total: int = Field(ge=0, description="How many items match the filters (all pages)")
    page: int = Field(ge=1)
    limit: int = Field(ge=1, le=MAX_LIMIT)


def _link(path: str, query: Mapping[str, Sequence[str]], page: int) -> str:
    pairs = [(name, value) for name, values in query.items() if name != "page" for value in values]
    return f"{path}?{urlencode([*pairs, ('page', str(page))])}"


def page_links(body: dict[str, Any], path: str, query: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """`body` with `next`/`prev` set for the request `path` + `query` (every value of each
    parameter, in order). A page past the end links back to the last page."""
    total, page, limit = int(body["total"]), int(body["page"]), int(body["limit"])
    last = max(1, -(-total // limit))
    return {
        **body,
        "next": _link(path, query, page + 1) if page < last else None,
        "prev": _link(path, query, min(page - 1, last)) if page > 1 else None,
    }
