"""Raw directory answers in S3 (`raw/YYYY-MM-DD/<region>.json`), behind the RawStore port.
The scraping service only writes, the therapist service only reads (IAM says so too)."""

from __future__ import annotations

from typing import Any

from therapy_platform.directory.ports import RawObject
from therapy_platform.platform.errors import DependencyUnavailableError, NotFoundError
from therapy_platform.platform.settings import RawStoreSettings


class S3RawStore:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self.bucket = bucket

    @classmethod
    def connect(cls, bucket: str) -> S3RawStore:
        import boto3
        from botocore.config import Config

        config = Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 5, "mode": "standard"})
        return cls(boto3.client("s3", config=config), bucket)

    @classmethod
    def from_settings(cls, settings: RawStoreSettings | None = None) -> S3RawStore:
        """The bucket named by RAW_BUCKET (the scraper writes there)."""
        return cls.connect((settings or RawStoreSettings.from_env()).bucket)

    def put(self, key: str, body: bytes) -> str | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType="application/json; charset=utf-8",
                ServerSideEncryption="AES256",
            )
        except (BotoCoreError, ClientError) as error:
            raise DependencyUnavailableError(f"cannot store s3://{self.bucket}/{key}: {error}") from error
        etag = response.get("ETag")
        return str(etag).strip('"') if etag else None

    def get(self, key: str) -> RawObject:
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
        return RawObject(body=body, version=str(etag).strip('"') if etag else None)
