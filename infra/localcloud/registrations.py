"""`localcloud publish-registration FILE`: what the public website does, locally.

FILE holds a registration as the website sends it (`events/registration_intake/registration.json`:
`registration_id`, `submitted_at`, `patient`). The command signs its exact bytes with the deployed
key (HMAC-SHA256, the Secrets Manager secret `therapy-platform/<env>/registration-signing-key`
that the template generates) and produces it to the topic `patient-registrations` on Tansu, keyed
by the registration id. The local event source stand-in (kafka_source.py) then delivers it to
`RegistrationIntakeFunction`.

- `--forge` signs with a wrong key (the record must be parked, nothing created);
- `--new-id` gives the registration a fresh id (another registration with the same content);
- `--event` prints the Lambda Kafka event instead of producing it, signed the same way, for
  `localcloud invoke RegistrationIntakeFunction -` (an operator's direct invocation).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any, Final

from localcloud import kafka, stack
from localcloud.aws import client
from therapy_platform.patients.domain.registration import SIGNATURE_HEADER, signature_of
from therapy_platform.platform.kafka_records import KafkaRecord, lambda_kafka_event

TOPIC: Final = "patient-registrations"


def secret_name(environment: str) -> str:
    return f"therapy-platform/{environment}/registration-signing-key"


def signing_key() -> bytes:
    """The deployed HMAC key (LocalStack Secrets Manager)."""
    value = client("secretsmanager").get_secret_value(SecretId=secret_name(stack.deployed_environment()))
    return str(value["SecretString"]).encode("utf-8")


def signed_record(document: dict[str, Any], key: bytes, *, offset: int = 0) -> KafkaRecord:
    value = json.dumps(document, ensure_ascii=False).encode("utf-8")
    return KafkaRecord(
        topic=TOPIC,
        partition=0,
        offset=offset,
        timestamp=int(time.time() * 1000),
        key=str(document.get("registration_id", "")).encode("ascii"),
        value=value,
        headers=((SIGNATURE_HEADER, signature_of(key, value).encode("ascii")),),
    )


def publish(
    record: KafkaRecord, *, bootstrap_servers: str | None = None, partition: int | None = None
) -> tuple[int, int]:
    """Produces the record (key, value, signature header), to `partition` when given (else the
    key's); answers (partition, offset)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap_servers or kafka.bootstrap_servers(), acks="all")
    try:
        sent = producer.send(
            record.topic,
            key=record.key,
            value=record.value,
            headers=list(record.headers),
            partition=partition,
        )
        metadata = sent.get(timeout=30)
        producer.flush()
    finally:
        producer.close()
    return int(metadata.partition), int(metadata.offset)


def publish_registration_command(path: str, *, forge: bool, new_id: bool, event_only: bool) -> int:
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    if new_id:
        document["registration_id"] = str(uuid.uuid4())
    key = b"forged-" + uuid.uuid4().bytes if forge else signing_key()
    record = signed_record(document, key)
    if event_only:
        print(json.dumps(lambda_kafka_event([record], bootstrap_servers=kafka.bootstrap_servers()), indent=2))
        return 0
    partition, offset = publish(record)
    print(
        f"registration {document.get('registration_id')} -> {TOPIC}-{partition}@{offset}"
        + (" (forged)" if forge else "")
    )
    return 0
