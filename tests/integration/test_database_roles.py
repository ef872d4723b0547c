"""Migrations and the one-schema-per-service role model against real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import ProgrammingError

from runner import upgrade
from schemas import SERVICE_SCHEMAS

pytestmark = pytest.mark.integration


def test_every_service_has_its_schema_and_outbox(admin_engine: Engine) -> None:
    with admin_engine.connect() as connection:
        schemas = set(
            connection.execute(text("SELECT schema_name FROM information_schema.schemata")).scalars()
        )
        outboxes = set(
            connection.execute(
                text("SELECT table_schema FROM information_schema.tables WHERE table_name = 'outbox'")
            ).scalars()
        )
    assert set(SERVICE_SCHEMAS) <= schemas
    assert set(SERVICE_SCHEMAS) == outboxes


def test_migrations_are_idempotent(admin_engine: Engine) -> None:
    assert upgrade(admin_engine) == upgrade(admin_engine)


def test_patient_role_reaches_its_own_schema(service_url: Callable[[str], str]) -> None:
    engine = create_engine(service_url("patient_service"))
    with engine.begin() as connection:
        connection.execute(text("SELECT count(*) FROM patient_service.patients")).scalar_one()
        connection.execute(text("SELECT count(*) FROM patient_service.outbox")).scalar_one()
    engine.dispose()


@pytest.mark.parametrize("other", [schema for schema in SERVICE_SCHEMAS if schema != "patient_service"])
def test_patient_role_cannot_read_other_schemas(service_url: Callable[[str], str], other: str) -> None:
    engine = create_engine(service_url("patient_service"))
    with engine.connect() as connection, pytest.raises(ProgrammingError, match="permission denied"):
        connection.execute(text(f"SELECT count(*) FROM {other}.outbox"))
    engine.dispose()


def test_matching_role_cannot_read_patients(service_url: Callable[[str], str]) -> None:
    engine = create_engine(service_url("matching_service"))
    with engine.connect() as connection, pytest.raises(ProgrammingError, match="permission denied"):
        connection.execute(text("SELECT * FROM patient_service.patients"))
    engine.dispose()


def test_service_roles_cannot_create_tables_anywhere(service_url: Callable[[str], str]) -> None:
    engine = create_engine(service_url("patient_service"))
    for schema in ("patient_service", "public"):
        with engine.connect() as connection, pytest.raises(ProgrammingError, match="permission denied"):
            connection.execute(text(f"CREATE TABLE {schema}.intruder (id int)"))
    engine.dispose()
