"""The Kafka bridge on the consumer runtime: topics and keys, one broker round trip per batch,
poison to the dead-letter queue with its reason, broker outages retried with backoff."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fakes import FakeKafka
from support import FakeLambdaContext, load_function
from therapy_platform.platform.consumer import QueueConsumer, RetryPolicy
from therapy_platform.platform.events import BusMessage, new_envelope
from therapy_platform.platform.kafka import KafkaEventSink, client_config
from therapy_platform.platform.kafka_bridge import kafka_bridge_consumer
from therapy_platform.platform.settings import ConsumerSettings, KafkaSettings, SettingsError

EVENTS = Path(__file__).resolve().parents[2] / "events"
QUEUE_ARN = "arn:aws:sqs:eu-central-1:000000000000:therapy-platform-unit-kafka-bridge"
DLQ_URL = "https://sqs.eu-central-1.amazonaws.com/000000000000/therapy-platform-unit-kafka-bridge-dlq"


@dataclass
class FakeQueues:
    dead_letters: list[tuple[str, str, str]] = field(default_factory=list)
    delays: list[tuple[str, int]] = field(default_factory=list)

    def send_to_dead_letter(self, dead_letter_queue_url: str, body: str, reason: str) -> None:
        self.dead_letters.append((dead_letter_queue_url, body, reason))

    def delay_retry(self, queue_arn: str, receipt_handle: str, delay_seconds: int) -> None:
        self.delays.append((receipt_handle, delay_seconds))


class CountingKafka(FakeKafka):
    def __init__(self) -> None:
        super().__init__()
        self.round_trips = 0

    def send_all(self, messages: Sequence[tuple[str, str, bytes | None]]) -> list[str | None]:
        self.round_trips += 1
        return super().send_all(messages)


def _body(event_type: str = "patient.created", key: str = "p-1") -> str:
    envelope = new_envelope(event_type, "patient-service", {"id": key})
    detail = BusMessage(key=key, envelope=envelope).model_dump(mode="json", by_alias=True)
    return json.dumps({"detail-type": event_type, "detail": detail})


def _record(message_id: str, body: str, receive_count: int = 1) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"receipt-{message_id}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": str(receive_count)},
        "eventSourceARN": QUEUE_ARN,
    }


def _bridge(
    kafka: FakeKafka, queues: FakeQueues, retry: RetryPolicy | None = None
) -> QueueConsumer[BusMessage]:
    return kafka_bridge_consumer(
        lambda: kafka, queues=lambda: queues, dead_letter_queue_url=DLQ_URL, retry=retry
    )


def test_events_go_to_their_topic_keyed_by_entity_id_in_one_round_trip() -> None:
    kafka, queues = CountingKafka(), FakeQueues()
    records = [_record("m1", _body(key="p-1")), _record("m2", _body("therapist.blocked", key="t-9"))]
    assert _bridge(kafka, queues).handle({"Records": records}) == {"batchItemFailures": []}
    assert kafka.round_trips == 1
    key, value = kafka.topics["patient-events"][0]
    assert key == "p-1"
    assert value is not None
    assert set(json.loads(value)) == {"eventId", "eventType", "version", "timestamp", "producer", "payload"}
    assert kafka.topics["therapist-events"][0][0] == "t-9"
    assert not queues.dead_letters and not queues.delays


def test_the_sample_event_from_events_folder_bridges_through_the_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handler = load_function("kafka_bridge")
    kafka, queues = FakeKafka(), FakeQueues()
    monkeypatch.setattr(handler, "consumer", _bridge(kafka, queues))
    sample = json.loads((EVENTS / "kafka_bridge" / "sqs_batch.json").read_text())
    assert handler.lambda_handler(sample, FakeLambdaContext()) == {"batchItemFailures": []}
    assert sum(len(messages) for messages in kafka.topics.values()) == len(sample["Records"])


def test_the_poison_sample_goes_to_the_dead_letter_queue() -> None:
    kafka, queues = FakeKafka(), FakeQueues()
    sample = json.loads((EVENTS / "kafka_bridge" / "sqs_poison.json").read_text())
    assert _bridge(kafka, queues).handle(sample) == {"batchItemFailures": []}
    assert len(queues.dead_letters) == len(sample["Records"]) and not kafka.topics


def test_poison_messages_go_to_the_dead_letter_queue_with_a_reason_and_do_not_block_the_rest() -> None:
    kafka, queues = FakeKafka(), FakeQueues()
    bad = {
        "not-json": "{oops",
        "no-detail": json.dumps({"detail-type": "x"}),
        "bad-envelope": json.dumps({"detail": {"key": "k", "envelope": {"eventType": "patient.created"}}}),
        "unknown-type": _body("invoice.paid"),
    }
    records = [_record(message_id, body) for message_id, body in bad.items()] + [_record("good", _body())]
    assert _bridge(kafka, queues).handle({"Records": records}) == {"batchItemFailures": []}
    assert len(kafka.topics["patient-events"]) == 1
    reasons = {body: reason for _, body, reason in queues.dead_letters}
    assert {url for url, _, _ in queues.dead_letters} == {DLQ_URL}
    assert set(reasons) == set(bad.values())
    assert "not JSON" in reasons[bad["not-json"]]
    assert "eventId" in reasons[bad["bad-envelope"]]
    assert "invoice.paid" in reasons[bad["unknown-type"]]


def test_broker_down_means_retry_with_backoff_not_poison() -> None:
    kafka, queues = FakeKafka(), FakeQueues()
    kafka.down = True
    records = [_record("m1", _body(), receive_count=1), _record("m2", _body(), receive_count=4)]
    response = _bridge(kafka, queues, RetryPolicy(base_seconds=5, max_seconds=30)).handle(
        {"Records": records}
    )
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}
    assert queues.delays == [("receipt-m1", 5), ("receipt-m2", 30)]
    assert not queues.dead_letters


def test_a_broker_client_that_raises_fails_the_batch_message_by_message() -> None:
    queues = FakeQueues()

    class Exploding(FakeKafka):
        def send_all(self, messages: Sequence[tuple[str, str, bytes | None]]) -> list[str | None]:
            raise ConnectionError("no route to broker")

    consumer = _bridge(Exploding(), queues)
    response = consumer.handle({"Records": [_record("m1", _body()), _record("m2", _body())]})
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}
    assert [receipt for receipt, _ in queues.delays] == ["receipt-m1", "receipt-m2"]


def test_the_backoff_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRY_BASE_SECONDS", "7")
    monkeypatch.setenv("RETRY_MAX_SECONDS", "600")
    monkeypatch.delenv("DEAD_LETTER_QUEUE_URL", raising=False)
    settings = ConsumerSettings.from_env()
    assert settings.retry_policy() == RetryPolicy(base_seconds=7, max_seconds=600)
    assert settings.dead_letter_queue_url is None


@given(
    receive_count=st.integers(min_value=1, max_value=10_000), base=st.integers(1, 60), cap=st.integers(1, 900)
)
def test_retry_delay_grows_and_never_exceeds_the_cap(receive_count: int, base: int, cap: int) -> None:
    policy = RetryPolicy(base_seconds=base, max_seconds=cap)
    delay = policy.delay_for(receive_count)
    assert 1 <= delay <= max(cap, 1)
    assert delay <= policy.delay_for(receive_count + 1)
    if receive_count == 1:
        assert delay == min(base, cap)


def test_the_producer_gives_up_on_an_unreachable_broker_within_the_request_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """kafka-python bootstraps in the producer's constructor, for 30 s unless told otherwise: longer
    than the bridge's and /health's Lambda timeouts."""
    import kafka

    seen: dict[str, Any] = {}

    def refuse(**config: Any) -> None:
        seen.update(config)
        raise kafka.errors.KafkaTimeoutError("Unable to bootstrap")

    monkeypatch.setattr(kafka, "KafkaProducer", refuse)
    sink = KafkaEventSink(KafkaSettings(KAFKA_BOOTSTRAP_SERVERS="broker-1:9092,broker-2:9092"))
    [error] = sink.send_all([("patient-events", "p-1", b"{}")])
    assert error is not None and error.startswith("KafkaTimeoutError")
    assert seen["bootstrap_servers"] == ["broker-1:9092", "broker-2:9092"]
    assert seen["bootstrap_timeout_ms"] == seen["max_block_ms"] == seen["request_timeout_ms"] == 5000


# ---------------------------------------------------------------- connection and sign-in options
# No MSK cluster is reachable here: these tests check the mapping of the settings onto
# kafka-python's options; signing in to a real cluster is proven only by a deploy to AWS.

SCRAM_SECRET = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:AmazonMSK_platform-AbCdEf"


def _settings(**environment: str) -> KafkaSettings:
    return KafkaSettings.model_validate({"KAFKA_BOOTSTRAP_SERVERS": "b-1:9098,b-2:9098", **environment})


def test_locally_the_client_connects_in_plaintext_without_signing_in() -> None:
    config = client_config(_settings(KAFKA_SECURITY_PROTOCOL="PLAINTEXT", KAFKA_SASL_MECHANISM="NONE"))
    assert config["security_protocol"] == "PLAINTEXT"
    assert config["bootstrap_servers"] == ["b-1:9098", "b-2:9098"]
    assert not any(key.startswith("sasl_") for key in config)


def test_with_msk_iam_the_client_signs_in_with_its_role_over_tls() -> None:
    def no_secret(arn: str) -> dict[str, Any]:
        raise AssertionError("MSK IAM reads no secret")

    settings = _settings(KAFKA_SECURITY_PROTOCOL="SASL_SSL", KAFKA_SASL_MECHANISM="AWS_MSK_IAM")
    config = client_config(settings, no_secret)
    assert (config["security_protocol"], config["sasl_mechanism"]) == ("SASL_SSL", "AWS_MSK_IAM")
    assert "sasl_plain_password" not in config
    # kafka-python itself accepts the mechanism (it signs through botocore, no extra package).
    from kafka.net.sasl import get_sasl_mechanism

    assert get_sasl_mechanism("AWS_MSK_IAM").__name__ == "SaslMechanismAwsMskIam"


def test_with_scram_the_client_signs_in_with_the_secrets_user_and_password() -> None:
    read: list[str] = []

    def secret(arn: str) -> dict[str, Any]:
        read.append(arn)
        return {"username": "platform-bridge", "password": "s3cret-from-secrets-manager"}

    settings = _settings(
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        KAFKA_SASL_SECRET_ARN=SCRAM_SECRET,
    )
    config = client_config(settings, secret)
    assert read == [SCRAM_SECRET]
    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (config["sasl_plain_username"], config["sasl_plain_password"]) == (
        "platform-bridge",
        "s3cret-from-secrets-manager",
    )


def test_a_scram_secret_without_user_or_password_is_refused_naming_the_secret_only() -> None:
    settings = _settings(
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        KAFKA_SASL_SECRET_ARN=SCRAM_SECRET,
    )
    with pytest.raises(SettingsError, match="needs a username and a password") as refused:
        client_config(settings, lambda arn: {"username": "platform-bridge", "password": ""})
    assert "platform-bridge" not in str(refused.value)


@pytest.mark.parametrize(
    ("environment", "naming"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "needs KAFKA_SASL_MECHANISM"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SASL_MECHANISM": "AWS_MSK_IAM"},
            "needs KAFKA_SECURITY_PROTOCOL",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512"},
            "needs KAFKA_SASL_SECRET",
        ),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "AWS_MSK_IAM",
                "KAFKA_SASL_SECRET_ARN": "x",
            },
            "used only with",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512"},
            "literal_error",
        ),
        ({"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "literal_error"),
    ],
)
def test_inconsistent_kafka_settings_fail_at_cold_start(environment: dict[str, str], naming: str) -> None:
    """SASL only over TLS (a password never crosses the network in the clear), only mechanisms
    MSK offers, and a secret exactly when SCRAM reads one."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as refused:
        _settings(**environment)
    assert naming in str(refused.value) or naming in {error["type"] for error in refused.value.errors()}


def test_the_producer_uses_the_sign_in_options(monkeypatch: pytest.MonkeyPatch) -> None:
    import kafka

    seen: dict[str, Any] = {}

    def capture(**config: Any) -> Any:
        seen.update(config)
        raise kafka.errors.NoBrokersAvailable()

    monkeypatch.setattr(kafka, "KafkaProducer", capture)
    settings = _settings(KAFKA_SECURITY_PROTOCOL="SASL_SSL", KAFKA_SASL_MECHANISM="AWS_MSK_IAM")
    [error] = KafkaEventSink(settings).send_all([("patient-events", "p-1", b"{}")])
    assert error is not None
    assert (seen["security_protocol"], seen["sasl_mechanism"]) == ("SASL_SSL", "AWS_MSK_IAM")
    assert seen["acks"] == "all"
    # Batching for whole SQS batches (one flush each) without giving up acks=all.
    assert seen["compression_type"] == "gzip" and seen["linger_ms"] > 0 and seen["batch_size"] >= 65536


def test_an_erasure_is_followed_by_a_tombstone_keyed_by_the_patient_id() -> None:
    """Issue 12: on the compacted patient topic the tombstone (null value) after
    `patient.deleted` lets compaction drop every earlier record of the patient."""
    kafka, queues = CountingKafka(), FakeQueues()
    records = [
        _record("m1", _body("patient.created", key="p-1")),
        _record("m2", _body("patient.deleted", key="p-1")),
        _record("m3", _body("patient.created", key="p-2")),
    ]
    assert _bridge(kafka, queues).handle({"Records": records}) == {"batchItemFailures": []}
    assert kafka.round_trips == 1
    written = kafka.topics["patient-events"]
    assert [key for key, _ in written] == ["p-1", "p-1", "p-1", "p-2"]
    assert json.loads(written[1][1] or b"null")["eventType"] == "patient.deleted" and written[2][1] is None
    assert all(value is not None for _, value in written[:2] + written[3:])


def test_an_erasure_whose_tombstone_the_broker_refused_is_retried_whole() -> None:
    class RefusingTombstones(FakeKafka):
        def send_all(self, messages: Sequence[tuple[str, str, bytes | None]]) -> list[str | None]:
            return ["KafkaTimeoutError: no ack" if value is None else None for _, _, value in messages]

    queues = FakeQueues()
    records = [_record("m1", _body("patient.deleted", key="p-1")), _record("m2", _body(key="p-2"))]
    answer = _bridge(RefusingTombstones(), queues).handle({"Records": records})
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
