"""Raw directory files in S3 (`raw/YYYY-MM-DD/<region>.json`), behind the RawFileStore port.
The scraping service only writes them; the therapist service reads them with its own adapter
(IAM says so too)."""

from __future__ import annotations

from typing import Any

from therapy_platform.platform.errors import DependencyUnavailableError


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
