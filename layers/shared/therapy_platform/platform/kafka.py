"""Kafka adapters (kafka-python; MSK-compatible): the producer the bridge and /health use, the
topic admin that applies the declared topics (platform/kafka_topics.py), and the mapping of
KafkaSettings onto the client's connection and authentication options both share."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from therapy_platform.platform.kafka_topics import ExistingTopic, KafkaTopic
from therapy_platform.platform.settings import KafkaSettings, SettingsError

LOGGER = logging.getLogger(__name__)

SecretReader = Callable[[str], Mapping[str, Any]]

# The bridge hands the producer a whole SQS batch (up to 1,000 events) and flushes once: records
# for the same partition travel in few large, compressed produce requests instead of many small
# ones. acks=all stays (a record counts as delivered only once every in-sync replica has it).
# linger_ms only matters for the last, partly filled batch before the flush (flush sends at
# once); batch_size is per partition (256 KiB holds ~150 events); gzip needs no extra package
# and the envelopes (repetitive JSON) compress well.
PRODUCER_BATCHING: Final[Mapping[str, Any]] = {
    "linger_ms": 20,
    "batch_size": 256 * 1024,
    "compression_type": "gzip",
}


def _secret_values(secret_arn: str) -> Mapping[str, Any]:
    # Imported lazily: Powertools parameters pulls in boto3, which unit tests never need here.
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(secret_arn, transform="json", max_age=300)
    if not isinstance(value, dict):
        raise SettingsError(f"secret {secret_arn} does not hold a JSON object")
    return value


def client_config(settings: KafkaSettings, read_secret: SecretReader = _secret_values) -> dict[str, Any]:
    """kafka-python's connection options (producer and admin client alike) for these settings.

    AWS_MSK_IAM is kafka-python's own mechanism: it signs the login with the function role's
    credentials through botocore (part of the Lambda runtime), so no extra package and no
    password. SCRAM reads user name and password from the Secrets Manager secret at connect time
    (cached for five minutes, so a rotated password is picked up by the next connection)."""
    timeout = settings.request_timeout_ms
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "security_protocol": settings.security_protocol,
        "request_timeout_ms": timeout,
        # The client bootstraps in its constructor (30 s by default): an unreachable broker must
        # fail within the timeout too, or the bridge's invocation (and /health) runs out of time
        # instead of backing off (or reporting it).
        "bootstrap_timeout_ms": timeout,
        "reconnect_backoff_max_ms": 1000,
    }
    if settings.sasl_mechanism == "AWS_MSK_IAM":
        config["sasl_mechanism"] = "AWS_MSK_IAM"
    elif settings.sasl_mechanism == "SCRAM-SHA-512":
        assert settings.sasl_secret_arn is not None  # KafkaSettings refuses SCRAM without it
        secret = read_secret(settings.sasl_secret_arn)
        if not secret.get("username") or not secret.get("password"):
            raise SettingsError(f"secret {settings.sasl_secret_arn} needs a username and a password")
        config["sasl_mechanism"] = "SCRAM-SHA-512"
        config["sasl_plain_username"] = str(secret["username"])
        config["sasl_plain_password"] = str(secret["password"])
    return config


class KafkaEventSink:
    """Sends keyed messages and reports success per message.

    The producer is created lazily and kept across warm invocations; after a failure it is
    dropped so that the next invocation reconnects (the broker may have come back).
    """

    def __init__(self, settings: KafkaSettings, read_secret: SecretReader = _secret_values) -> None:
        self._settings = settings
        self._read_secret = read_secret
        self._producer: Any = None

    def _get_producer(self) -> Any:
        if self._producer is None:
            from kafka import KafkaProducer

            self._producer = KafkaProducer(
                **client_config(self._settings, self._read_secret),
                **PRODUCER_BATCHING,
                acks="all",
                retries=2,
                max_block_ms=self._settings.request_timeout_ms,
            )
        return self._producer

    def reset(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=1)
            except Exception:
                LOGGER.debug("closing the Kafka producer failed", exc_info=True)
            self._producer = None

    def send_all(self, messages: Sequence[tuple[str, str, bytes | None]]) -> list[str | None]:
        """messages: (topic, key, value; None: a tombstone). Returns None per delivered message,
        else the error."""
        if not messages:
            return []
        try:
            producer = self._get_producer()
            futures = [producer.send(topic, key=key.encode(), value=value) for topic, key, value in messages]
            producer.flush(timeout=self._settings.request_timeout_ms / 1000)
        except Exception as error:
            self.reset()
            return [f"{type(error).__name__}: {error}"] * len(messages)
        errors: list[str | None] = []
        for future in futures:
            if not future.is_done:
                errors.append("KafkaTimeoutError: not acknowledged in time")
            elif future.failed():
                errors.append(f"{type(future.exception).__name__}: {future.exception}")
            else:
                errors.append(None)
        if any(errors):
            self.reset()
        return errors

    def check(self) -> None:
        """Raises if no broker answers a metadata request (used by /health)."""
        producer = self._get_producer()
        try:
            producer.partitions_for("patient-events")
        except Exception:
            self.reset()
            raise


class KafkaTopicAdmin:
    """The cluster operations of platform/kafka_topics.py on kafka-python's admin client.

    Checked against Tansu (the local broker) and written for Kafka as MSK runs it: configs are
    described whole (Tansu drops the connection when asked for named configs) and set with
    IncrementalAlterConfigs (the legacy AlterConfigs would reset every config not named; Tansu
    does not offer it at all)."""

    def __init__(self, settings: KafkaSettings, read_secret: SecretReader = _secret_values) -> None:
        self._settings = settings
        self._read_secret = read_secret

    def _client(self) -> Any:
        from kafka.admin import KafkaAdminClient

        return KafkaAdminClient(**client_config(self._settings, self._read_secret), client_id="topic-admin")

    def existing(self, names: Sequence[str]) -> dict[str, ExistingTopic]:
        import kafka.errors
        from kafka.admin import ConfigResource, ConfigResourceType

        admin = self._client()
        try:
            found: dict[str, int] = {}
            for topic in admin.describe_topics(list(names)):
                error = kafka.errors.for_code(topic["error_code"])
                if error is kafka.errors.NoError:
                    found[topic["name"]] = len(topic["partitions"])
                elif error is not kafka.errors.UnknownTopicOrPartitionError:
                    raise error(f"describing topic {topic['name']}")
            if not found:
                return {}
            described = admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, name) for name in found], config_filter="all"
            )["topic"]
            return {
                name: ExistingTopic(
                    partitions=partitions,
                    configs={key: str(entry["value"]) for key, entry in described.get(name, {}).items()},
                )
                for name, partitions in found.items()
            }
        finally:
            admin.close()

    def create(self, topics: Sequence[KafkaTopic]) -> list[str]:
        import kafka.errors

        admin = self._client()
        try:
            result = admin.create_topics(
                {
                    # -1: the cluster's default.replication.factor (3 on a three-zone MSK cluster).
                    topic.name: {
                        "num_partitions": topic.partitions,
                        "replication_factor": -1,
                        "configs": topic.configs(),
                    }
                    for topic in topics
                },
                timeout_ms=self._settings.request_timeout_ms,
                raise_errors=False,
            )
        finally:
            admin.close()
        already: list[str] = []
        for topic in result["topics"]:
            error = kafka.errors.for_code(topic["error_code"])
            if error is kafka.errors.TopicAlreadyExistsError:
                already.append(topic["name"])
            elif error is not kafka.errors.NoError:
                raise error(f"creating topic {topic['name']}: {topic.get('error_message')}")
        return already

    def set_configs(self, changes: Mapping[str, Mapping[str, str]]) -> None:
        from kafka.admin import ConfigResource, ConfigResourceType

        admin = self._client()
        try:
            result = admin.alter_configs(
                [
                    ConfigResource(ConfigResourceType.TOPIC, name, dict(configs))
                    for name, configs in changes.items()
                ],
                raise_on_unknown=False,
                incremental=True,
            )
        finally:
            admin.close()
        failed = {name: outcome for name, outcome in result.get("topic", {}).items() if outcome != "OK"}
        if failed or set(result.get("topic", {})) != set(changes):
            raise RuntimeError(f"setting topic configs failed: {failed or 'no answer for some topics'}")
