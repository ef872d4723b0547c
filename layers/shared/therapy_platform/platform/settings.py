"""Environment-variable models: every function reads its configuration through these, so a
missing or malformed variable fails at cold start with a message naming it."""

from __future__ import annotations

import os
from functools import cache
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from therapy_platform.platform.consumer import RetryPolicy


class SettingsError(RuntimeError):
    pass


class EnvModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    @classmethod
    def from_env(cls) -> Self:
        # Field aliases are the environment variable names.
        values = {
            (field.alias or name): os.environ[field.alias or name]
            for name, field in cls.model_fields.items()
            if (field.alias or name) in os.environ and os.environ[field.alias or name] != ""
        }
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            names = ", ".join(str(e["loc"][0]) if e["loc"] else cls.__name__ for e in error.errors())
            raise SettingsError(
                f"{cls.__name__}: missing or invalid environment variables: {names}"
            ) from error


class DatabaseSettings(EnvModel):
    """How a function reaches PostgreSQL.

    Either `DATABASE_URL` (any SQLAlchemy pg8000 URL; used by tests and tools), or a Secrets
    Manager secret holding `username` and `password` (optionally `host`, `port`, `dbname`)
    plus `DB_HOST`/`DB_PORT`/`DB_NAME` (Aurora through RDS Proxy in AWS, embedded PostgreSQL
    locally).
    """

    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    secret_arn: str | None = Field(default=None, alias="DB_SECRET_ARN")
    host: str | None = Field(default=None, alias="DB_HOST")
    port: int = Field(default=5432, alias="DB_PORT")
    name: str = Field(default="platform", alias="DB_NAME")
    ssl: bool = Field(default=False, alias="DB_SSL")
    service_schema: str | None = Field(default=None, alias="DB_SCHEMA")


class EventBusSettings(EnvModel):
    bus_name: str = Field(alias="EVENT_BUS_NAME")


class EventPublisherSettings(EventBusSettings):
    """A service that publishes names itself: rules match `therapy-platform.<service>`."""

    source: str = Field(alias="EVENT_SOURCE", pattern=r"^therapy-platform\.[a-z-]+$")


KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_SSL"]
KafkaSaslMechanism = Literal["AWS_MSK_IAM", "SCRAM-SHA-512"]


class KafkaSettings(EnvModel):
    """How a function reaches Kafka (platform/kafka.py maps this onto the client's options).

    Locally PLAINTEXT without authentication (Tansu on 127.0.0.1). In AWS the client
    authenticates over TLS (SASL_SSL), either with MSK IAM (`AWS_MSK_IAM`: the function's role
    signs the login; no password exists) or with SCRAM-SHA-512 (user name and password in the
    Secrets Manager secret KAFKA_SASL_SECRET_ARN, as MSK's SCRAM secrets hold them). SASL is
    only ever spoken over TLS, so a password never crosses the network in the clear.
    """

    bootstrap_servers: str = Field(alias="KAFKA_BOOTSTRAP_SERVERS")
    security_protocol: KafkaSecurityProtocol = Field(default="PLAINTEXT", alias="KAFKA_SECURITY_PROTOCOL")
    sasl_mechanism: KafkaSaslMechanism | None = Field(default=None, alias="KAFKA_SASL_MECHANISM")
    sasl_secret_arn: str | None = Field(default=None, alias="KAFKA_SASL_SECRET_ARN")
    request_timeout_ms: int = Field(default=5000, alias="KAFKA_REQUEST_TIMEOUT_MS")

    @field_validator("sasl_mechanism", mode="before")
    @classmethod
    def _none_means_unauthenticated(cls, value: Any) -> Any:
        # The template's parameter says NONE (a CloudFormation parameter cannot be unset).
        return None if value == "NONE" else value

    @model_validator(mode="after")
    def _authentication_is_consistent(self) -> Self:
        if self.security_protocol == "SASL_SSL" and self.sasl_mechanism is None:
            raise ValueError("KAFKA_SECURITY_PROTOCOL=SASL_SSL needs KAFKA_SASL_MECHANISM")
        if self.sasl_mechanism is not None and self.security_protocol != "SASL_SSL":
            raise ValueError("KAFKA_SASL_MECHANISM needs KAFKA_SECURITY_PROTOCOL=SASL_SSL")
        if self.sasl_mechanism == "SCRAM-SHA-512" and not self.sasl_secret_arn:
            raise ValueError("KAFKA_SASL_MECHANISM=SCRAM-SHA-512 needs KAFKA_SASL_SECRET_ARN")
        if self.sasl_secret_arn and self.sasl_mechanism != "SCRAM-SHA-512":
            raise ValueError("KAFKA_SASL_SECRET_ARN is used only with KAFKA_SASL_MECHANISM=SCRAM-SHA-512")
        return self


class ConsumerSettings(EnvModel):
    """What every SQS consumer may be given (platform/consumer.py): its dead-letter queue, where
    poison goes at once with the reason (without it poison fails until the queue's redrive policy
    moves it), and the backoff of the messages to be tried again."""

    dead_letter_queue_url: str | None = Field(default=None, alias="DEAD_LETTER_QUEUE_URL")
    retry_base_seconds: int = Field(default=2, ge=1, le=900, alias="RETRY_BASE_SECONDS")
    retry_max_seconds: int = Field(default=300, ge=1, le=43200, alias="RETRY_MAX_SECONDS")

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(base_seconds=self.retry_base_seconds, max_seconds=self.retry_max_seconds)


class OutboxRelaySettings(EventPublisherSettings):
    """The relay of one service's outbox: the schema it drains (and the bus and source it
    publishes as, which the service's own functions use too)."""

    service_schema: str = Field(alias="DB_SCHEMA", pattern=r"^[a-z][a-z_]*$")
    # A row the bus refused this often is parked (platform/outbox_retry.py).
    max_attempts: int = Field(default=10, ge=1, le=100, alias="OUTBOX_MAX_ATTEMPTS")
    # Published rows older than this are deleted; parked and unpublished rows stay.
    retention_days: int = Field(default=7, ge=1, le=365, alias="OUTBOX_RETENTION_DAYS")


@cache
def database_settings() -> DatabaseSettings:
    return DatabaseSettings.from_env()


class PersonalDataSettings(EnvModel):
    """The other services' personal-data functions an export asks for their parts
    (PERSONAL_DATA_FUNCTIONS: names or ARNs, comma-separated; only the API functions of the
    services that own people have them)."""

    function_names: str = Field(default="", alias="PERSONAL_DATA_FUNCTIONS")

    def names(self) -> list[str]:
        return [name.strip() for name in self.function_names.split(",") if name.strip()]
