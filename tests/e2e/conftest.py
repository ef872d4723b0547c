"""End-to-end fixtures: the stack deployed to LocalStack by `localcloud up` (started here when
it is not running, and stopped at the end only if this session started it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from localcloud import cli, directory, identity, kafka, localstack, postgres, smtp, stack
from localcloud.process import read_pid


def _stack_ready() -> bool:
    servers = (postgres, kafka, smtp, directory, identity, localstack)
    if not all(read_pid(getattr(m, "SERVICE", None) or m.NAME) and m.is_healthy() for m in servers):
        return False
    try:
        info = stack.StackInfo.load()
        return requests.get(f"{info.api_base_url}/health", timeout=30).status_code == 200
    except (RuntimeError, requests.RequestException):
        return False


@pytest.fixture(scope="session")
def deployed() -> Iterator[stack.StackInfo]:
    started_here = not _stack_ready()
    if started_here:
        cli.up()
    yield stack.StackInfo.load()
    if started_here:
        cli.down()


@pytest.fixture(scope="session")
def base_url(deployed: stack.StackInfo) -> str:
    return deployed.api_base_url
