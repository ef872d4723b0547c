"""Environment of the scraping function: how politely and how far the directory is read
(`DirectorySettings`, every value with a default) and where raw files go (`RAW_BUCKET`).
A missing or malformed variable fails at cold start naming it.

`DIRECTORY_WEBSITE_ALLOWED_ORIGINS` (comma-separated `scheme://host:port`, default none) names
the only origins a practice website may have outside the public internet: template.yaml sets it
for the local environment alone, to the local directory server that serves the demo's practice
websites. Anywhere else practice websites are fetched from public addresses only."""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator

from therapy_platform.contracts.directory_files import DEFAULT_TILE_RADIUS_KM
from therapy_platform.directory.domain.web_addresses import WebsitePolicy, parse_allowed_origin
from therapy_platform.platform.settings import EnvModel

PUBLIC_DIRECTORY: Final = "https://arztsuche.116117.de"
PUBLIC_HOSTS: Final = frozenset({"arztsuche.116117.de", "www.116117.de"})
DEFAULT_USER_AGENT: Final = (
    "therapy-matching-platform-directory/0.1 (psychotherapy place matching; weekly directory import)"
)
_SAMPLE_AGENTS: Final = {"python-requests", "mozilla/5.0", "my-app", "test"}


class DirectorySettings(EnvModel):
    """How the directory and practice websites are read (all optional)."""

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
    website_allowed_origins: str = Field(default="", alias="DIRECTORY_WEBSITE_ALLOWED_ORIGINS")

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

    @field_validator("website_allowed_origins")
    @classmethod
    def _exact_origins(cls, value: str) -> str:
        for entry in value.split(","):
            if entry.strip():
                parse_allowed_origin(entry)
        return value

    @property
    def website_policy(self) -> WebsitePolicy:
        origins = (parse_allowed_origin(e) for e in self.website_allowed_origins.split(",") if e.strip())
        return WebsitePolicy(allowed_origins=frozenset(origins))

    @property
    def search_url(self) -> str:
        return f"{self.base_url.rstrip('/')}{self.search_path}"


class ScraperSettings(DirectorySettings):
    """The scraping function: the directory settings plus the bucket raw files go to."""

    raw_bucket: str = Field(alias="RAW_BUCKET", min_length=3)
