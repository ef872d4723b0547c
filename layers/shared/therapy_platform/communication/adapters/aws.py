"""AWS clients created on first use: building the service at cold start (and importing a
handler in a test) must not need a region, credentials or the network."""

from __future__ import annotations

from typing import Any


class LazyClient:
    """Stands in for `boto3.client(service)` and creates it when first used."""

    def __init__(self, service: str) -> None:
        self._service = service
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            import boto3

            create: Any = boto3.client  # typed per literal service name; ours is a variable
            self._client = create(self._service)
        return getattr(self._client, name)
