"""Synchronous calls between the platform's own functions (Lambda `RequestResponse` invocations),
for the few questions that must not travel on the bus because the answer holds personal data:
e.g. the personal-data export asks each service for its part. Functions are named by env vars
the template sets; the IAM policy of the caller allows exactly those."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any

from therapy_platform.platform.errors import InternalCallError


class LambdaFunctions:
    """Invokes functions by name and returns their JSON answers."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def invoke(self, function_name: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        response = self._client.invoke(
            FunctionName=function_name,
            InvocationType="RequestResponse",
            Payload=json.dumps(payload).encode(),
        )
        raw = response["Payload"].read()
        if response.get("FunctionError"):
            raise InternalCallError(f"{function_name} failed ({response['FunctionError']})")
        try:
            answer = json.loads(raw)
        except ValueError:
            raise InternalCallError(f"{function_name} answered no JSON") from None
        if not isinstance(answer, dict):
            raise InternalCallError(f"{function_name} answered {type(answer).__name__}, not an object")
        return answer


@cache
def default_functions() -> LambdaFunctions:
    import boto3
    from botocore.config import Config

    # A part is a few indexed reads: seconds, not minutes. Cold starts of the callee are the
    # slow case, hence the read timeout; no retry of a call that may have run.
    config = Config(connect_timeout=2, read_timeout=25, retries={"max_attempts": 1, "mode": "standard"})
    return LambdaFunctions(boto3.client("lambda", config=config))
