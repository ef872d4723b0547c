"""The 116117 directory search over HTTP (DirectorySearch port).

The directory answers `GET <base><search path>?lat=&lon=&r=<km>&page=<n>` with JSON
`{"arztPraxisDatas": [...], "moreResults": bool}`, about 50 entries a page, nearest first.
Base URL and path are settings (directory/settings.py), so tests and the demo point the client
at the local directory server (infra/localcloud/directory_server.py).
"""

from __future__ import annotations

import json
from typing import Any

from therapy_platform.contracts.directory_files import SearchPoint
from therapy_platform.directory.adapters.polite_http import PoliteSession
from therapy_platform.directory.domain.runs import MalformedAnswerError


class DirectoryClient:
    """DirectorySearch over a PoliteSession (which owns rate, retries, robots and the cap)."""

    def __init__(self, session: PoliteSession, search_url: str) -> None:
        self._session = session
        self._search_url = search_url

    @property
    def requests_made(self) -> int:
        return self._session.budget.used

    def search(self, point: SearchPoint, radius_km: float, page: int) -> Any:
        response = self._session.get(
            self._search_url,
            params={
                "lat": f"{point.latitude:.6f}",
                "lon": f"{point.longitude:.6f}",
                "r": f"{radius_km:g}",
                "page": str(page),
            },
        )
        if response.status_code == 404:
            raise MalformedAnswerError(f"{self._search_url} answered 404", text="")
        try:
            return json.loads(response.content.decode(response.encoding or "utf-8", errors="replace"))
        except json.JSONDecodeError as error:
            raise MalformedAnswerError(
                f"page {page} at {point.latitude:.4f},{point.longitude:.4f} is not JSON: {error}",
                text=response.text[:2000],
            ) from error
