"""Embedded PostgreSQL: TCP with password auth via SQLAlchemy/pg8000, roles and schemas, restarts."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from cloud_fixtures import child_pids, port_refuses, service_running

from localcloud import postgres
from localcloud.process import is_alive, read_pid

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def running_postgres() -> Iterator[bool]:
    with service_running(postgres) as already_running:
        yield already_running


@pytest.fixture
def engine() -> Iterator[sa.Engine]:
    eng = sa.create_engine(postgres.admin_url())
    yield eng
    eng.dispose()


@pytest.fixture
def schema(engine: sa.Engine) -> Iterator[str]:
    """A throw-away schema, dropped after the test."""
    name = f"lc_test_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {name}"))
    yield name
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))


def test_start_is_idempotent() -> None:
    pid = read_pid(postgres.SERVICE)
    began = time.monotonic()
    postgres.start()
    assert time.monotonic() - began < 2.0
    assert read_pid(postgres.SERVICE) == pid


def test_admin_url_connects_over_tcp_to_platform_db(engine: sa.Engine) -> None:
    assert engine.url.drivername == "postgresql+pg8000"
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT current_database(), current_user, host(inet_server_addr()), inet_server_port()")
        ).one()
        listen = conn.execute(sa.text("SHOW listen_addresses")).scalar_one()
    assert tuple(row) == ("platform", "postgres", "127.0.0.1", postgres.port())
    assert listen == "127.0.0.1"


def test_wrong_password_is_rejected() -> None:
    url = sa.make_url(postgres.admin_url()).set(password="wrong")
    eng = sa.create_engine(url)
    try:
        with pytest.raises(sa.exc.DatabaseError, match="password authentication failed"):
            eng.connect()
    finally:
        eng.dispose()


def test_role_and_schema_with_grants(engine: sa.Engine, schema: str) -> None:
    role = f"lc_role_{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'"))
        conn.execute(sa.text(f"GRANT USAGE, CREATE ON SCHEMA {schema} TO {role}"))
    role_url = sa.make_url(postgres.admin_url()).set(username=role, password=password)
    role_engine = sa.create_engine(role_url)
    try:
        with role_engine.begin() as conn:
            conn.execute(sa.text(f"CREATE TABLE {schema}.therapist (id int PRIMARY KEY, name text)"))
            conn.execute(sa.text(f"INSERT INTO {schema}.therapist VALUES (1, 'Dr. Müller-Lüdenscheidt')"))
            name = conn.execute(sa.text(f"SELECT name FROM {schema}.therapist")).scalar_one()
        assert name == "Dr. Müller-Lüdenscheidt"
        # Without CREATE on the database the role cannot make schemas of its own.
        with role_engine.connect() as conn, pytest.raises(sa.exc.DatabaseError, match="permission denied"):
            conn.execute(sa.text("CREATE SCHEMA lc_not_allowed"))
    finally:
        role_engine.dispose()
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP OWNED BY {role} CASCADE"))
            conn.execute(sa.text(f"DROP ROLE {role}"))


def test_restart_keeps_data_and_stop_leaves_no_process(engine: sa.Engine, schema: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {schema}.kept (note text)"))
        conn.execute(sa.text(f"INSERT INTO {schema}.kept VALUES ('überlebt den Neustart')"))
    engine.dispose()
    pid = read_pid(postgres.SERVICE)
    assert pid is not None
    workers = child_pids(pid)
    assert workers, "postmaster should have worker processes"

    assert postgres.stop() is True
    assert read_pid(postgres.SERVICE) is None
    assert not is_alive(pid)
    assert not any(is_alive(worker) for worker in workers)
    assert not postgres.is_healthy()
    assert port_refuses(postgres.HOST, postgres.port())
    assert postgres.stop() is False

    postgres.start()
    new_pid = read_pid(postgres.SERVICE)
    assert new_pid is not None and new_pid != pid
    with engine.connect() as conn:
        assert (
            conn.execute(sa.text(f"SELECT note FROM {schema}.kept")).scalar_one() == "überlebt den Neustart"
        )
