"""Environment of the patient service's functions: the bus its events go to (EVENT_BUS_NAME,
EVENT_SOURCE), the in-process geocoder's Nominatim settings (all optional; offline postcode
centroids unless NOMINATIM_ENABLED=true), for the search-events consumer its dead-letter queue
and retry backoff (optional), and the KMS key of the sealed patient fields
(FIELD_ENCRYPTION_KEY_ID; required outside local, docs/privacy.md#encryption). Database settings
are read by platform.database when the engine is first used. A missing or malformed variable
fails at cold start naming it."""

from __future__ import annotations

import os
from dataclasses import dataclass

from pydantic import Field

from therapy_platform.platform.consumer import RetryPolicy
from therapy_platform.platform.geography.nominatim import NominatimSettings
from therapy_platform.platform.settings import (
    EnvModel,
    EventPublisherSettings,
    PersonalDataSettings,
    SettingsError,
)


class ConsumerSettings(EnvModel):
    """Where poison goes at once, with its reason (without a dead-letter queue it fails until
    the queue's redrive policy moves it), and the backoff of messages offered again."""

    dead_letter_queue_url: str | None = Field(default=None, alias="DEAD_LETTER_QUEUE_URL")
    retry_base_seconds: int = Field(default=2, ge=1, le=900, alias="RETRY_BASE_SECONDS")
    retry_max_seconds: int = Field(default=300, ge=1, le=43200, alias="RETRY_MAX_SECONDS")

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(base_seconds=self.retry_base_seconds, max_seconds=self.retry_max_seconds)


class FieldEncryptionSettings(EnvModel):
    """FIELD_ENCRYPTION_KEY_ID: id, ARN or alias of the customer-managed KMS key (template
    `PatientFieldKey`). Required outside ENVIRONMENT=local/test; without it values are written
    in plaintext (unit tests, local tools)."""

    key_id: str | None = None
    environment: str = "local"

    @classmethod
    def from_env(cls) -> FieldEncryptionSettings:
        key_id = os.environ.get("FIELD_ENCRYPTION_KEY_ID") or None
        environment = os.environ.get("ENVIRONMENT") or "local"
        if key_id is None and environment in {"dev", "prod"}:
            raise SettingsError(
                "FieldEncryptionSettings: missing or invalid environment variables: FIELD_ENCRYPTION_KEY_ID"
            )
        return cls(key_id=key_id, environment=environment)


@dataclass(frozen=True)
class PatientSettings:
    events: EventPublisherSettings
    nominatim: NominatimSettings
    consumer: ConsumerSettings
    personal_data: PersonalDataSettings
    field_encryption: FieldEncryptionSettings

    @classmethod
    def from_env(cls) -> PatientSettings:
        return cls(
            events=EventPublisherSettings.from_env(),
            nominatim=NominatimSettings.from_env(),
            consumer=ConsumerSettings.from_env(),
            personal_data=PersonalDataSettings.from_env(),
            field_encryption=FieldEncryptionSettings.from_env(),
        )
