"""Raw directory files in S3, as the therapist service sees them: reading one object (the
RawFileReader port; the scraping service writes them, IAM lets this service only read), and
reading what names one: S3's `Object Created` event on EventBridge (delivered through SQS, or
straight from a rule) or an operator's `{"bucket": ..., "key": ...}`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from therapy_platform.platform.consumer import PoisonMessageError
from therapy_platform.platform.errors import DependencyUnavailableError, NotFoundError
from therapy_platform.therapists.imports.domain.reports import StoredFile
from therapy_platform.therapists.imports.ports import RawFile


class S3RawFileReader:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self.bucket = bucket

    @classmethod
    def connect(cls, bucket: str) -> S3RawFileReader:
        import boto3
        from botocore.config import Config

        config = Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 5, "mode": "standard"})
        return cls(boto3.client("s3", config=config), bucket)

    def get(self, key: str) -> RawFile:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self._client.get_object(Bucket=self.bucket, Key=key)
            body = response["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise NotFoundError(f"s3://{self.bucket}/{key} does not exist") from error
            raise DependencyUnavailableError(f"cannot read s3://{self.bucket}/{key}: {error}") from error
        except BotoCoreError as error:
            raise DependencyUnavailableError(f"cannot read s3://{self.bucket}/{key}: {error}") from error
        etag = response.get("ETag")
        return RawFile(body=body, version=str(etag).strip('"') if etag else None)


class _S3Bucket(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=3)


class _S3Object(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key: str = Field(min_length=1)
    etag: str | None = None


class _ObjectCreatedDetail(BaseModel):
    """The `detail` of S3's `Object Created` event on EventBridge (the parts used)."""

    model_config = ConfigDict(extra="ignore")

    bucket: _S3Bucket
    object: _S3Object


class _OperatorRequest(BaseModel):
    """Operators may invoke the import with a bucket and key."""

    model_config = ConfigDict(extra="forbid")

    bucket: str = Field(min_length=3)
    key: str = Field(min_length=1)


def _fields(error: ValidationError) -> str:
    return ", ".join(".".join(str(part) for part in detail["loc"]) or "body" for detail in error.errors())


def stored_file_of(event: Mapping[str, Any]) -> StoredFile:
    """The file an S3 `Object Created` event or an operator's request names. Anything else can
    never be imported: PoisonMessageError with the reason (field names only, no values)."""
    if "detail" in event or "detail-type" in event:
        try:
            detail = _ObjectCreatedDetail.model_validate(event.get("detail"))
        except ValidationError as error:
            raise PoisonMessageError(
                f"not an S3 Object Created event (detail fields: {_fields(error)})"
            ) from error
        # EventBridge keeps S3's URL encoding of the key (a space arrives as +).
        return StoredFile(detail.bucket.name, unquote_plus(detail.object.key), detail.object.etag or None)
    try:
        request = _OperatorRequest.model_validate(event)
    except ValidationError as error:
        raise PoisonMessageError(
            f"neither an S3 Object Created event nor {{bucket, key}} (fields: {_fields(error)})"
        ) from error
    return StoredFile(request.bucket, request.key)


def decode_stored_file(body: str) -> StoredFile:
    """The consumer's decoder: one SQS message body naming one raw file."""
    try:
        event = json.loads(body)
    except json.JSONDecodeError as error:
        raise PoisonMessageError(f"body is not JSON: {error.msg}") from error
    if not isinstance(event, Mapping):
        raise PoisonMessageError("body is not a JSON object")
    return stored_file_of(event)
