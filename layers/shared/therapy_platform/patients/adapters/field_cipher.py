"""Field-level envelope encryption of the patient fields no query needs (`ENCRYPTED_FIELDS`).

Each value is sealed with AES-256-GCM (the `cryptography` package) under a data key that KMS
generates (`GenerateDataKey`) and wraps under the customer-managed key `FIELD_ENCRYPTION_KEY_ID`;
the wrapped key travels with the value, so only a caller whose IAM role may `kms:Decrypt` with
that key (and the encryption context below) can read it. A database dump alone reveals nothing.

Stored form (text, so the columns stay `text`):

    enc1:<base64url of: u16 length of wrapped key | wrapped key | 12-byte nonce | ciphertext+tag>

The GCM associated data binds each value to its field and its record id: a value copied to
another column or another patient fails to decrypt instead of being read as theirs. A value
without the `enc1:` prefix is a legacy plaintext row (written before encryption was switched on)
and is returned as it is, until `infra/tools/encrypt_patient_fields.py` seals it.

Data keys are cached (`DataKeyPolicy`): one data key seals values for at most `max_age_seconds`
and `max_uses` values, then a new one is generated; unwrapped keys for reading are kept in a
small LRU for the same lifetime. A cold read costs one KMS `Decrypt`, a cold write one
`GenerateDataKey`; warm ones cost none.
"""

from __future__ import annotations

import base64
import contextlib
import os
import struct
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from therapy_platform.patients.ports import FieldCipher, FieldDecryptionError
from therapy_platform.patients.settings import FieldEncryptionSettings

PREFIX: Final = "enc1:"
PREFETCH_WORKERS: Final = 8
_NONCE_BYTES: Final = 12
# KMS checks it on Decrypt: a wrapped key is unwrapped only for this purpose (key policy condition).
ENCRYPTION_CONTEXT: Final = {"purpose": "patient-fields", "service": "patient_service"}


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)


def _associated_data(field: str, record_id: uuid.UUID) -> bytes:
    return f"patient_service.patients|{field}|{record_id}".encode()


@dataclass(frozen=True)
class DataKeyPolicy:
    """How long one data key is used (and an unwrapped key kept) before KMS is asked again."""

    max_age_seconds: float = 300.0
    max_uses: int = 10_000
    max_cached_keys: int = 256


@dataclass
class _DataKey:
    plaintext: bytes
    wrapped: bytes
    created: float
    uses: int = 0


class KmsFieldCipher:
    """AES-256-GCM under KMS data keys of one customer-managed key. `kms` is a boto3 KMS client
    (or anything with its `generate_data_key`/`decrypt`); `clock` is monotonic seconds."""

    def __init__(
        self,
        key_id: str,
        kms: Any,
        *,
        policy: DataKeyPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._key_id = key_id
        self._kms = kms
        self._policy = policy or DataKeyPolicy()
        self._clock = clock
        self._lock = threading.Lock()
        self._current: _DataKey | None = None
        self._unwrapped: OrderedDict[bytes, _DataKey] = OrderedDict()
        self.kms_calls = 0  # GenerateDataKey + Decrypt calls made (benchmarks, tests)

    # ------------------------------------------------------------------ sealing
    def encrypt(self, value: str, *, field: str, record_id: uuid.UUID) -> str:
        key = self._sealing_key()
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(key.plaintext).encrypt(nonce, value.encode(), _associated_data(field, record_id))
        blob = struct.pack(">H", len(key.wrapped)) + key.wrapped + nonce + sealed
        return PREFIX + base64.urlsafe_b64encode(blob).decode("ascii")

    def decrypt(self, stored: str, *, field: str, record_id: uuid.UUID) -> str:
        if not is_sealed(stored):
            return stored  # legacy plaintext row
        try:
            wrapped, nonce, sealed = _parts(stored)
        except (ValueError, struct.error) as error:
            raise FieldDecryptionError(field, "malformed ciphertext") from error
        key = self._unwrapping_key(wrapped, field)
        try:
            plain = AESGCM(key).decrypt(nonce, sealed, _associated_data(field, record_id))
        except InvalidTag as error:
            raise FieldDecryptionError(field, "authentication failed (tampered or moved value)") from error
        return plain.decode()

    def prefetch(self, stored: Iterable[str]) -> None:
        """Unwrap the data keys of these values that are not cached yet, up to
        `PREFETCH_WORKERS` KMS calls at a time (a page of 50 rows sealed under 50 data keys
        costs about one round trip per worker instead of 50 in a row)."""
        wanted: set[bytes] = set()
        for value in stored:
            if is_sealed(value):
                with contextlib.suppress(ValueError, struct.error):
                    wanted.add(_parts(value)[0])
        with self._lock:
            now = self._clock()
            missing = [
                wrapped
                for wrapped in wanted
                if (cached := self._unwrapped.get(wrapped)) is None
                or now - cached.created >= self._policy.max_age_seconds
            ][: self._policy.max_cached_keys]
        if len(missing) < 2:
            return  # nothing to gain over opening it in place
        with ThreadPoolExecutor(max_workers=min(PREFETCH_WORKERS, len(missing))) as pool:
            for _ in pool.map(self._try_unwrap, missing):
                pass

    def _try_unwrap(self, wrapped: bytes) -> None:
        with contextlib.suppress(FieldDecryptionError):
            self._unwrapping_key(wrapped, "(prefetch)")

    # ------------------------------------------------------------------ data keys
    def _sealing_key(self) -> _DataKey:
        with self._lock:
            now = self._clock()
            key = self._current
            if (
                key is None
                or key.uses >= self._policy.max_uses
                or now - key.created >= self._policy.max_age_seconds
            ):
                response = self._kms.generate_data_key(
                    KeyId=self._key_id, KeySpec="AES_256", EncryptionContext=ENCRYPTION_CONTEXT
                )
                self.kms_calls += 1
                key = _DataKey(bytes(response["Plaintext"]), bytes(response["CiphertextBlob"]), now)
                self._current = key
                self._remember(key)
            key.uses += 1
            return key

    def _unwrapping_key(self, wrapped: bytes, field: str) -> bytes:
        with self._lock:
            now = self._clock()
            cached = self._unwrapped.get(wrapped)
            if cached is not None and now - cached.created < self._policy.max_age_seconds:
                self._unwrapped.move_to_end(wrapped)
                return cached.plaintext
        try:
            response = self._kms.decrypt(
                CiphertextBlob=wrapped, KeyId=self._key_id, EncryptionContext=ENCRYPTION_CONTEXT
            )
        except Exception as error:
            # The KMS error names no value; the field name is not personal data.
            raise FieldDecryptionError(field, f"KMS refused the data key ({type(error).__name__})") from error
        with self._lock:
            self.kms_calls += 1
            key = _DataKey(bytes(response["Plaintext"]), wrapped, now)
            self._remember(key)
            return key.plaintext

    def _remember(self, key: _DataKey) -> None:
        self._unwrapped[key.wrapped] = key
        self._unwrapped.move_to_end(key.wrapped)
        while len(self._unwrapped) > self._policy.max_cached_keys:
            self._unwrapped.popitem(last=False)


def _parts(stored: str) -> tuple[bytes, bytes, bytes]:
    """(wrapped data key, nonce, ciphertext with tag) of a sealed value; ValueError if malformed."""
    blob = base64.urlsafe_b64decode(stored[len(PREFIX) :].encode("ascii"))
    (length,) = struct.unpack(">H", blob[:2])
    wrapped = blob[2 : 2 + length]
    nonce = blob[2 + length : 2 + length + _NONCE_BYTES]
    sealed = blob[2 + length + _NONCE_BYTES :]
    if len(wrapped) != length or len(nonce) != _NONCE_BYTES or len(sealed) < 16:
        raise ValueError("truncated")
    return wrapped, nonce, sealed


class PlaintextFieldCipher:
    """No encryption: unit tests and tools without a key. Reading still refuses sealed values it
    cannot open, rather than handing ciphertext out as if it were the value."""

    def encrypt(self, value: str, *, field: str, record_id: uuid.UUID) -> str:
        return value

    def decrypt(self, stored: str, *, field: str, record_id: uuid.UUID) -> str:
        if is_sealed(stored):
            raise FieldDecryptionError(field, "sealed value but no FIELD_ENCRYPTION_KEY_ID configured")
        return stored

    def prefetch(self, stored: Iterable[str]) -> None:
        return None


PLAINTEXT: Final = PlaintextFieldCipher()


def kms_client() -> Any:
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"})
    return boto3.client("kms", config=config)


def field_cipher_for(
    settings: FieldEncryptionSettings, *, kms: Callable[[], Any] = kms_client
) -> FieldCipher:
    if settings.key_id is None:
        return PLAINTEXT
    return KmsFieldCipher(settings.key_id, _Lazy(kms))


@cache
def default_field_cipher() -> FieldCipher:
    """The cipher of this function (FIELD_ENCRYPTION_KEY_ID): one per warm Lambda environment, so
    its cached data keys serve every request of that environment. The KMS client is created on
    first use."""
    return field_cipher_for(FieldEncryptionSettings.from_env())


class _Lazy:
    """Creates the client on first call (nothing connects at import or while building)."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            self._client = self._factory()
        return getattr(self._client, name)
