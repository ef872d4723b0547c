"""Runs the Alembic migrations and provisions the services' login roles.

Used by the migration Lambda function (functions/db_migrate, with this folder as its layer,
MigrationsLayer) and by local tools and tests.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, text

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # lets revision files import schemas.py

from schemas import HEALTH_ROLE, SERVICE_SCHEMAS, access_role, login_role  # noqa: E402

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Bring the database to `revision`; returns the revision it ends at."""
    config = Config()
    config.set_main_option("script_location", str(HERE))
    with engine.begin() as connection:
        # Serialise concurrent migration runs (two deploys at once).
        connection.execute(text("SELECT pg_advisory_xact_lock(7716120)"))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        current = connection.execute(text("SELECT version_num FROM public.alembic_version")).scalar_one()
    return str(current)


def provision_login_role(connection: Connection, username: str, password: str, member_of: str | None) -> None:
    """Create or update a login role with the given password, member of one access role."""
    if not ROLE_NAME.match(username) or (member_of is not None and not ROLE_NAME.match(member_of)):
        raise ValueError(f"invalid role name {username!r} / {member_of!r}")
    exists = connection.execute(
        text("SELECT 1 FROM pg_roles WHERE rolname = :name"), {"name": username}
    ).first()
    verb = "ALTER" if exists else "CREATE"
    # format() quotes the identifier and the password literal safely on the server side.
    statement = connection.execute(
        text(
            "SELECT format('%s ROLE %I WITH LOGIN PASSWORD %L',"
            " CAST(:verb AS text), CAST(:name AS text), CAST(:pw AS text))"
        ),
        {"verb": verb, "name": username, "pw": password},
    ).scalar_one()
    connection.execute(text(statement))
    database = connection.execute(text("SELECT current_database()")).scalar_one()
    connection.execute(text(f'GRANT CONNECT ON DATABASE "{database}" TO {username}'))
    if member_of:
        connection.execute(text(f"GRANT {member_of} TO {username}"))


def provision_service_roles(engine: Engine, credentials: Mapping[str, tuple[str, str]]) -> list[str]:
    """credentials: schema (or `platform_health`) -> (username, password)."""
    provisioned = []
    with engine.begin() as connection:
        connection.execute(text("SELECT pg_advisory_xact_lock(7716121)"))
        for owner, (username, password) in credentials.items():
            if owner == HEALTH_ROLE:
                member_of = None
            elif owner in SERVICE_SCHEMAS:
                member_of = access_role(owner)
            else:
                raise ValueError(f"unknown service schema {owner!r}")
            provision_login_role(connection, username, password, member_of)
            provisioned.append(username)
    return provisioned


def default_usernames() -> dict[str, str]:
    return {**{schema: login_role(schema) for schema in SERVICE_SCHEMAS}, HEALTH_ROLE: HEALTH_ROLE + "_app"}
