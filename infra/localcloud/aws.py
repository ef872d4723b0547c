"""boto3 clients and environment for talking to LocalStack on 127.0.0.1."""

from __future__ import annotations

import os
from typing import Any

REGION = "eu-central-1"


def localstack_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('LOCALSTACK_PORT', '4566')}"


def aws_env() -> dict[str, str]:
    """Environment for AWS tools (sam, boto3) aimed at LocalStack with dummy credentials."""
    return {
        "AWS_ENDPOINT_URL": localstack_url(),
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "SAM_CLI_TELEMETRY": "0",
    }


def client(service: str, **kwargs: Any) -> Any:
    import boto3

    env = aws_env()
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=REGION,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        **kwargs,
    )
