"""The 116117 directory search over HTTP (DirectorySearch port), and the scraper's settings.

The directory answers `GET <base><search path>?lat=&lon=&r=<km>&page=<n>` with JSON
`{"arztPraxisDatas": [...], "moreResults": bool}`, about 50 entries a page, nearest first.
Base URL and path are settings, so tests and the demo point the client at the local directory
server (infra/localcloud/directory_server.py).
"""

from __future__ import annotations

import json
from typing import Any, Final
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator

from therapy_platform.directory.adapters.polite_http import PoliteSession, RequestBudget
from therapy_platform.directory.domain.entries import DEFAULT_TILE_RADIUS_KM, SearchPoint
from therapy_platform.directory.domain.runs import MalformedAnswerError
from therapy_platform.platform.settings import EnvModel

PUBLIC_DIRECTORY: Final = "https://arztsuche.116117.de"
PUBLIC_HOSTS: Final = frozenset({"arztsuche.116117.de", "www.116117.de"})
DEFAULT_USER_AGENT: Final = (
    "therapy-matching-platform-directory/0.1 (psychotherapy place matching; weekly directory import)"
)
_SAMPLE_AGENTS: Final = {"python-requests", "mozilla/5.0", "my-app", "test"}


class DirectorySettings(EnvModel):
    """Environment of the scraping function (all optional except where the template sets them)."""

    base_url: str = Field(default=PUBLIC_DIRECTORY, alias="DIRECTORY_BASE_URL", pattern=r"^https?://[^\s/]+")
    search_path: str = Field(default="/api/data", alias="DIRECTORY_SEARCH_PATH", pattern=r"^/\S*$")
    user_agent: str = Field(default=DEFAULT_USER_AGENT, alias="DIRECTORY_USER_AGENT", min_length=8)
    min_interval_seconds: float = Field(default=3.0, ge=0, le=300, alias="DIRECTORY_MIN_INTERVAL_SECONDS")
    timeout_seconds: float = Field(default=20.0, gt=0, le=120, alias="DIRECTORY_TIMEOUT_SECONDS")
    max_retries: int = Field(default=4, ge=0, le=10, alias="DIRECTORY_MAX_RETRIES")
    backoff_base_seconds: float = Field(default=2.0, ge=0, le=60, alias="DIRECTORY_BACKOFF_SECONDS")
    backoff_max_seconds: float = Field(default=120.0, ge=0, le=900, alias="DIRECTORY_BACKOFF_MAX_SECONDS")
    max_requests: int = Field(default=250, ge=1, le=10_000, alias="DIRECTORY_MAX_REQUESTS")
    max_pages_per_point: int = Field(default=40, ge=1, le=1000, alias="DIRECTORY_MAX_PAGES_PER_POINT")
    max_website_fetches: int = Field(default=60, ge=0, le=5000, alias="DIRECTORY_MAX_WEBSITE_FETCHES")
    tile_radius_km: float = Field(
        default=DEFAULT_TILE_RADIUS_KM, gt=0, le=50, alias="DIRECTORY_TILE_RADIUS_KM"
    )
    # Stop this long before the Lambda timeout, leaving time to store the file and the run.
    reserve_seconds: float = Field(default=45.0, ge=0, le=600, alias="DIRECTORY_RESERVE_SECONDS")

    @field_validator("user_agent")
    @classmethod
    def _identifying(cls, value: str) -> str:
        text = value.strip()
        if text.lower() in _SAMPLE_AGENTS or text.lower().startswith("python-requests"):
            raise ValueError("DIRECTORY_USER_AGENT must identify this application and a contact")
        return text

    @field_validator("min_interval_seconds")
    @classmethod
    def _public_rate(cls, value: float, info: ValidationInfo) -> float:
        host = urlsplit(str(info.data.get("base_url", ""))).hostname or ""
        if host in PUBLIC_HOSTS and value < 2.0:
            raise ValueError("the public directory is asked at most every 2 s: use 2 or more")
        return value

    @property
    def search_url(self) -> str:
        return f"{self.base_url.rstrip('/')}{self.search_path}"

    def session(self, budget: RequestBudget, **overrides: Any) -> PoliteSession:
        return PoliteSession(
            user_agent=self.user_agent,
            budget=budget,
            min_interval=self.min_interval_seconds,
            timeout=self.timeout_seconds,
            max_retries=self.max_retries,
            backoff_base=self.backoff_base_seconds,
            backoff_max=self.backoff_max_seconds,
            **overrides,
        )


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
