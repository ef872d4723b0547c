"""The feature-flag adapter: Powertools Feature Flags over the store the environment names.

- `FEATURE_FLAGS_STORE=appconfig` (dev, prod): AWS AppConfig, Powertools' `AppConfigStore`;
  `FEATURE_FLAGS_LOCATION` is `application/environment/profile`.
- `FEATURE_FLAGS_STORE=ssm` (local): LocalStack's free edition has no AppConfig (a Pro
  service), so the same document is read from an SSM parameter (`FEATURE_FLAGS_LOCATION` is its
  name) through `SsmParameterStore`, a Powertools `StoreProvider`.

Both are cached for `FEATURE_FLAGS_MAX_AGE` seconds per execution environment. Evaluation is
Powertools' own (rules in order, first match wins, `MODULO_RANGE` for percentages). When the
store cannot be read or the document is invalid, each flag answers its catalogued fallback and
the failure is logged once per evaluation (never the subject).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Final, Literal

from aws_lambda_powertools.utilities.feature_flags import FeatureFlags
from aws_lambda_powertools.utilities.feature_flags.base import StoreProvider
from aws_lambda_powertools.utilities.feature_flags.exceptions import (
    ConfigurationStoreError,
    SchemaValidationError,
    StoreClientError,
)
from pydantic import Field

from therapy_platform.platform.feature_flags import CATALOG, NOBODY, Flag, FlagSubject
from therapy_platform.platform.settings import EnvModel

logger = logging.getLogger(__name__)

DEFAULT_MAX_AGE: Final = 60  # seconds: a change reaches every warm function within a minute


class FlagStoreSettings(EnvModel):
    store: Literal["appconfig", "ssm"] = Field(alias="FEATURE_FLAGS_STORE")
    location: str = Field(
        min_length=1, alias="FEATURE_FLAGS_LOCATION"
    )  # appconfig: application/environment/profile
    max_age: int = Field(default=DEFAULT_MAX_AGE, ge=0, le=3600, alias="FEATURE_FLAGS_MAX_AGE")


class SsmParameterStore(StoreProvider):
    """The flags document (JSON) in one SSM parameter, read through Powertools Parameters (which
    caches it for `max_age` seconds)."""

    def __init__(self, name: str, *, max_age: int = DEFAULT_MAX_AGE, client: Any = None) -> None:
        self.name = name
        self.max_age = max_age
        self._client = client
        self._provider: Any = None  # created on first use: importing a handler reaches no AWS

    @property
    def get_raw_configuration(self) -> dict[str, Any]:
        try:
            if self._provider is None:
                from aws_lambda_powertools.utilities.parameters import SSMProvider

                self._provider = SSMProvider(boto3_client=self._client) if self._client else SSMProvider()
            value = self._provider.get(self.name, max_age=self.max_age)
        except Exception as error:  # GetParameterError, access denied, endpoint down
            raise ConfigurationStoreError(
                f"cannot read the flags parameter: {type(error).__name__}"
            ) from error
        try:
            document = json.loads(str(value))
        except json.JSONDecodeError as error:
            raise ConfigurationStoreError("the flags parameter is not JSON") from error
        if not isinstance(document, dict):
            raise ConfigurationStoreError("the flags parameter is not a JSON object")
        return document

    def get_configuration(self) -> dict[str, Any]:
        return self.get_raw_configuration


class StaticStore(StoreProvider):
    """A document held in memory (unit tests, tools that validate a document)."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    @property
    def get_raw_configuration(self) -> dict[str, Any]:
        return self.document

    def get_configuration(self) -> dict[str, Any]:
        return self.document


class LazyAppConfigStore(StoreProvider):
    """Powertools' `AppConfigStore`, created on first use (its client is made in its constructor)."""

    def __init__(self, location: str, *, max_age: int) -> None:
        self.application, self.environment, self.profile = location.split("/", 2)
        self.max_age = max_age
        self._store: StoreProvider | None = None

    def _inner(self) -> StoreProvider:
        if self._store is None:
            from aws_lambda_powertools.utilities.feature_flags import AppConfigStore

            self._store = AppConfigStore(
                environment=self.environment,
                application=self.application,
                name=self.profile,
                max_age=self.max_age,
            )
        return self._store

    @property
    def get_raw_configuration(self) -> dict[str, Any]:
        return self._inner().get_raw_configuration

    def get_configuration(self) -> dict[str, Any]:
        return self._inner().get_configuration()


def build_store(settings: FlagStoreSettings) -> StoreProvider:
    if settings.store == "ssm":
        return SsmParameterStore(settings.location, max_age=settings.max_age)
    return LazyAppConfigStore(settings.location, max_age=settings.max_age)


class PowertoolsFlags:
    """`FlagEvaluator` over Powertools Feature Flags."""

    def __init__(self, store: StoreProvider, *, source: str = "memory") -> None:
        self._flags = FeatureFlags(store=store)
        self.source = source

    def enabled(self, flag: Flag, subject: FlagSubject = NOBODY) -> bool:
        fallback = CATALOG[flag].fallback
        try:
            return bool(
                self._flags.evaluate(name=flag.value, context=subject.context(flag.value), default=fallback)
            )
        except (ConfigurationStoreError, SchemaValidationError, StoreClientError) as error:
            logger.warning(
                "feature flags unavailable: using the fallback",
                extra={"flag": flag.value, "fallback": fallback, "error": str(error)[:200]},
            )
            return fallback

    def document(self) -> dict[str, Any]:
        """The validated document (raises when the store cannot be read or it is invalid)."""
        return self._flags.get_configuration()


def build_flags(settings: FlagStoreSettings) -> PowertoolsFlags:
    return PowertoolsFlags(build_store(settings), source=f"{settings.store}:{settings.location}")


def flags_from_env() -> PowertoolsFlags:
    return build_flags(FlagStoreSettings.from_env())
