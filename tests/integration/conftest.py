"""Fixtures for integration tests: real PostgreSQL (embedded), real LocalStack, real Tansu.

Servers are started through the project's own localcloud modules when they are not running
already, and stopped at the end only if this session started them.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, make_url, text

from localcloud import kafka, localstack, postgres
from localcloud.aws import client
from localcloud.process import read_pid
from runner import upgrade
from schemas import access_role

# Helpers working in parallel point this at their own database.
TEST_DATABASE = os.environ.get("TEST_DATABASE", "platform_test")


def _ensure_running(module: Any) -> Iterator[None]:
    name = getattr(module, "SERVICE", None) or module.NAME
    started_here = not (read_pid(name) is not None and module.is_healthy())
    if started_here:
        module.start()
    yield
    if started_here:
        module.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[None]:
    yield from _ensure_running(postgres)


@pytest.fixture(scope="session")
def kafka_server() -> Iterator[None]:
    yield from _ensure_running(kafka)


@pytest.fixture(scope="session")
def localstack_server() -> Iterator[None]:
    localstack.install()
    yield from _ensure_running(localstack)


@pytest.fixture(scope="session")
def admin_engine(postgres_server: None) -> Iterator[Engine]:
    """A fresh, migrated test database (separate from the demo's `platform` database)."""
    server = create_engine(postgres.admin_url("postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {TEST_DATABASE} WITH (FORCE)"))
        connection.execute(text(f"CREATE DATABASE {TEST_DATABASE}"))
    server.dispose()
    engine = create_engine(postgres.admin_url(TEST_DATABASE))
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def service_url(admin_engine: Engine) -> Callable[[str], str]:
    """Login URL for a fresh role with exactly the privileges of one service schema's role."""
    from runner import provision_login_role

    made: dict[str, str] = {}

    def make(schema: str) -> str:
        if schema not in made:
            username = f"test_{schema}_{uuid.uuid4().hex[:6]}"
            password = secrets.token_hex(16)
            with admin_engine.begin() as connection:
                provision_login_role(connection, username, password, access_role(schema))
            url = make_url(postgres.admin_url(TEST_DATABASE)).set(username=username, password=password)
            made[schema] = url.render_as_string(hide_password=False)
        return made[schema]

    return make


@pytest.fixture(scope="session")
def scratch_database(admin_engine: Engine) -> Callable[[str], AbstractContextManager[Engine]]:
    """`with scratch_database("suffix") as engine`: an empty database of its own beside the test
    database (`<test database>_<suffix>`), dropped afterwards."""

    @contextmanager
    def make(suffix: str) -> Iterator[Engine]:
        name = f"{admin_engine.url.database}_{suffix}"
        server = create_engine(postgres.admin_url("postgres"), isolation_level="AUTOCOMMIT")
        with server.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            connection.execute(text(f"CREATE DATABASE {name}"))
        engine = create_engine(postgres.admin_url(name))
        try:
            yield engine
        finally:
            engine.dispose()
            with server.connect() as connection:
                connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            server.dispose()

    return make


@pytest.fixture
def event_bus(localstack_server: None) -> Iterator[tuple[str, str]]:
    """A throwaway bus with a catch-all rule to an SQS queue: (bus name, queue url)."""
    suffix = uuid.uuid4().hex[:8]
    events, sqs = client("events"), client("sqs")
    bus = f"test-bus-{suffix}"
    events.create_event_bus(Name=bus)
    queue_url = sqs.create_queue(QueueName=f"test-bus-sink-{suffix}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name=f"all-{suffix}", EventBusName=bus, EventPattern='{"source": [{"prefix": ""}]}')
    events.put_targets(Rule=f"all-{suffix}", EventBusName=bus, Targets=[{"Id": "sink", "Arn": queue_arn}])
    yield bus, queue_url
    events.remove_targets(Rule=f"all-{suffix}", EventBusName=bus, Ids=["sink"])
    events.delete_rule(Name=f"all-{suffix}", EventBusName=bus)
    events.delete_event_bus(Name=bus)
    sqs.delete_queue(QueueUrl=queue_url)
