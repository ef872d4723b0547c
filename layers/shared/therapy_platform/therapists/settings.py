"""Environment of the therapist service's functions, read at cold start: a missing or malformed
variable fails naming it. The database is reached through the platform's DatabaseSettings
(DB_SECRET_ARN / DB_HOST ... or DATABASE_URL); Nominatim, when enabled, through its own
settings (platform/geography/nominatim.py)."""

from __future__ import annotations

from typing import Final

from pydantic import Field

from therapy_platform.platform.settings import EnvModel

EVENT_SOURCE: Final = "therapy-platform.therapist-service"


class TherapistSettings(EnvModel):
    """Every therapist function: the bus its events go to, under the service's source. The
    directory import's queue also: where poison messages go (optional: without it they fail and
    the queue's redrive policy moves them), and how long to wait before trying a message again
    while the database or S3 is unreachable (an import holds the function for minutes: retries
    are spaced in minutes, not seconds)."""

    event_bus_name: str = Field(alias="EVENT_BUS_NAME", min_length=1)
    event_source: str = Field(
        default=EVENT_SOURCE, alias="EVENT_SOURCE", pattern=r"^therapy-platform\.[a-z-]+$"
    )
    dead_letter_queue_url: str | None = Field(default=None, alias="DEAD_LETTER_QUEUE_URL")
    retry_base_seconds: int = Field(default=60, ge=1, le=900, alias="RETRY_BASE_SECONDS")
    retry_max_seconds: int = Field(default=900, ge=1, le=43200, alias="RETRY_MAX_SECONDS")
