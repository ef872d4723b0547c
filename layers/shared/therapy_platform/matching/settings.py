"""The matching service's configuration from the environment (domain.md marks these numbers
*(config)*); every variable has a default, so a function needs none of them set."""

from __future__ import annotations

from pydantic import Field

from therapy_platform.platform.settings import EnvModel


class MatchingSettings(EnvModel):
    min_bundle_size: int = Field(default=3, ge=1, le=6, alias="MIN_BUNDLE_SIZE")
    max_bundle_size: int = Field(default=6, ge=1, le=6, alias="MAX_BUNDLE_SIZE")
    max_open_bundles_per_search: int = Field(default=3, ge=1, le=20, alias="MAX_OPEN_BUNDLES_PER_SEARCH")
    cooling_days: int = Field(default=28, ge=0, le=365, alias="COOLING_DAYS")
    reminder_after_days: int = Field(default=7, ge=1, le=60, alias="REMINDER_AFTER_DAYS")
    expire_after_days: int = Field(default=14, ge=1, le=120, alias="EXPIRE_AFTER_DAYS")
    send_round_immediately: bool = Field(default=False, alias="SEND_ROUND_IMMEDIATELY")
    # The profile-event consumer's dead-letter queue (poison goes there at once, with the reason);
    # without it a poison message fails until the queue's redrive policy moves it.
    dead_letter_queue_url: str | None = Field(default=None, alias="DEAD_LETTER_QUEUE_URL")
