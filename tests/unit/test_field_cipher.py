"""Field-level envelope encryption of patient fields (patients/adapters/field_cipher.py) against
moto's KMS: round trip, tamper and move detection, legacy plaintext, data-key caching."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from therapy_platform.patients.adapters.field_cipher import (
    ENCRYPTION_CONTEXT,
    PLAINTEXT,
    PREFIX,
    DataKeyPolicy,
    KmsFieldCipher,
    field_cipher_for,
    is_sealed,
)
from therapy_platform.patients.ports import ENCRYPTED_FIELDS, FieldDecryptionError
from therapy_platform.patients.settings import FieldEncryptionSettings
from therapy_platform.platform.settings import SettingsError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def kms() -> Iterator[tuple[Any, str]]:
    with mock_aws():
        client = boto3.client("kms", region_name="eu-central-1")
        key_id = client.create_key(Description="patient fields (test)")["KeyMetadata"]["KeyId"]
        yield client, key_id


@pytest.fixture
def cipher(kms: tuple[Any, str]) -> KmsFieldCipher:
    client, key_id = kms
    return KmsFieldCipher(key_id, client)


RECORD = uuid.UUID("0b6f4f36-6a43-4d3e-9f1f-8b7fb1c6a001")


@settings(max_examples=60, deadline=None)
@given(value=st.text(max_size=400), field=st.sampled_from(sorted(ENCRYPTED_FIELDS)))
def test_round_trip_of_any_text(kms: tuple[Any, str], value: str, field: str) -> None:
    client, key_id = kms
    cipher = KmsFieldCipher(key_id, client)
    sealed = cipher.encrypt(value, field=field, record_id=RECORD)
    assert sealed.startswith(PREFIX) and is_sealed(sealed)
    assert cipher.decrypt(sealed, field=field, record_id=RECORD) == value
    if len(value) >= 16:  # shorter strings may occur by chance in any base64 text
        assert value not in sealed


def test_the_same_value_seals_differently_each_time(cipher: KmsFieldCipher) -> None:
    first = cipher.encrypt("0176 1234567", field="phone", record_id=RECORD)
    second = cipher.encrypt("0176 1234567", field="phone", record_id=RECORD)
    assert first != second  # a fresh nonce per value: equal values are not recognisable


def test_a_flipped_byte_is_refused_naming_the_field_not_the_value(cipher: KmsFieldCipher) -> None:
    sealed = cipher.encrypt("Geheime Notiz", field="notes", record_id=RECORD)
    blob = bytearray(base64.urlsafe_b64decode(sealed[len(PREFIX) :]))
    blob[-5] ^= 0x01
    tampered = PREFIX + base64.urlsafe_b64encode(bytes(blob)).decode()
    with pytest.raises(FieldDecryptionError) as raised:
        cipher.decrypt(tampered, field="notes", record_id=RECORD)
    assert raised.value.field == "notes" and "Geheime" not in str(raised.value)


def test_a_value_moved_to_another_field_or_patient_is_refused(cipher: KmsFieldCipher) -> None:
    sealed = cipher.encrypt("anna@example.org", field="email", record_id=RECORD)
    with pytest.raises(FieldDecryptionError):
        cipher.decrypt(sealed, field="notes", record_id=RECORD)
    with pytest.raises(FieldDecryptionError):
        cipher.decrypt(sealed, field="email", record_id=uuid.uuid4())


@pytest.mark.parametrize(
    "stored", [PREFIX, PREFIX + "!!!", PREFIX + base64.urlsafe_b64encode(b"\x00\x05abc").decode()]
)
def test_malformed_ciphertext_is_refused(cipher: KmsFieldCipher, stored: str) -> None:
    with pytest.raises(FieldDecryptionError, match="malformed"):
        cipher.decrypt(stored, field="street", record_id=RECORD)


def test_legacy_plaintext_is_read_as_it_is(cipher: KmsFieldCipher) -> None:
    assert cipher.decrypt("Musterweg 3", field="street", record_id=RECORD) == "Musterweg 3"


def test_a_data_key_is_reused_within_its_lifetime_and_uses_then_replaced(kms: tuple[Any, str]) -> None:
    client, key_id = kms
    clock = Clock()
    cipher = KmsFieldCipher(key_id, client, policy=DataKeyPolicy(max_age_seconds=60, max_uses=3), clock=clock)
    sealed = [cipher.encrypt(f"v{n}", field="phone", record_id=RECORD) for n in range(3)]
    assert cipher.kms_calls == 1  # one GenerateDataKey for three values
    cipher.encrypt("v3", field="phone", record_id=RECORD)
    assert cipher.kms_calls == 2  # max_uses reached: a new data key
    clock.now += 61
    cipher.encrypt("v4", field="phone", record_id=RECORD)
    assert cipher.kms_calls == 3  # too old: a new data key
    # The unwrapped keys it generated serve reads without KMS while young...
    clock.now += 1
    fresh = KmsFieldCipher(key_id, client, policy=DataKeyPolicy(max_age_seconds=60), clock=clock)
    assert [fresh.decrypt(value, field="phone", record_id=RECORD) for value in sealed] == ["v0", "v1", "v2"]
    assert fresh.kms_calls == 1  # one Decrypt for the three values sealed under one data key


def test_a_key_unwrapped_under_another_context_is_refused(kms: tuple[Any, str]) -> None:
    client, key_id = kms

    class WrongContext:
        def generate_data_key(self, **kwargs: Any) -> Any:
            return client.generate_data_key(**{**kwargs, "EncryptionContext": {"purpose": "other"}})

        def decrypt(self, **kwargs: Any) -> Any:
            return client.decrypt(**kwargs)

    assert ENCRYPTION_CONTEXT["purpose"] == "patient-fields"
    sealed = KmsFieldCipher(key_id, WrongContext()).encrypt("x", field="notes", record_id=RECORD)
    with pytest.raises(FieldDecryptionError, match="KMS refused"):
        KmsFieldCipher(key_id, client).decrypt(sealed, field="notes", record_id=RECORD)


def test_the_plaintext_cipher_refuses_sealed_values(cipher: KmsFieldCipher) -> None:
    assert PLAINTEXT.encrypt("x", field="notes", record_id=RECORD) == "x"
    sealed = cipher.encrypt("x", field="notes", record_id=RECORD)
    with pytest.raises(FieldDecryptionError, match="FIELD_ENCRYPTION_KEY_ID"):
        PLAINTEXT.decrypt(sealed, field="notes", record_id=RECORD)


def test_settings_require_a_key_in_dev_and_prod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIELD_ENCRYPTION_KEY_ID", raising=False)
    for environment in ("dev", "prod"):
        monkeypatch.setenv("ENVIRONMENT", environment)
        with pytest.raises(SettingsError, match="FIELD_ENCRYPTION_KEY_ID"):
            FieldEncryptionSettings.from_env()
    monkeypatch.setenv("ENVIRONMENT", "local")
    assert field_cipher_for(FieldEncryptionSettings.from_env()) is PLAINTEXT
    monkeypatch.setenv("FIELD_ENCRYPTION_KEY_ID", "alias/patient-fields")
    created: list[str] = []
    cipher = field_cipher_for(FieldEncryptionSettings.from_env(), kms=lambda: created.append("kms"))
    assert isinstance(cipher, KmsFieldCipher) and created == []  # the client is made on first use


def test_prefetch_unwraps_a_pages_data_keys_so_opening_needs_no_more_kms(kms: tuple[Any, str]) -> None:
    client, key_id = kms
    writer = KmsFieldCipher(key_id, client, policy=DataKeyPolicy(max_uses=1))  # a data key per value
    records = [uuid.uuid4() for _ in range(6)]
    sealed = [
        writer.encrypt(f"notiz {n}", field="notes", record_id=record) for n, record in enumerate(records)
    ]
    assert writer.kms_calls == 6

    reader = KmsFieldCipher(key_id, client)
    reader.prefetch([*sealed, "plain legacy value", PREFIX + "!!!"])  # others are skipped
    assert reader.kms_calls == 6
    opened = [
        reader.decrypt(value, field="notes", record_id=record)
        for value, record in zip(sealed, records, strict=True)
    ]
    assert opened == [f"notiz {n}" for n in range(6)] and reader.kms_calls == 6
    reader.prefetch(sealed)
    assert reader.kms_calls == 6  # all cached: nothing to do


def test_prefetch_leaves_a_refused_key_to_fail_when_opened(kms: tuple[Any, str]) -> None:
    client, key_id = kms

    class Refusing:
        def decrypt(self, **kwargs: Any) -> Any:
            raise RuntimeError("AccessDenied")

    sealed = [
        KmsFieldCipher(key_id, client, policy=DataKeyPolicy(max_uses=1)).encrypt(
            "x", field="phone", record_id=RECORD
        )
        for _ in range(3)
    ]
    reader = KmsFieldCipher(key_id, Refusing())
    reader.prefetch(sealed)  # no exception here
    with pytest.raises(FieldDecryptionError, match="KMS refused"):
        reader.decrypt(sealed[0], field="phone", record_id=RECORD)
    PLAINTEXT.prefetch(sealed)  # nothing to unwrap without a key, and no error
