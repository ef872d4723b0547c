"""Service schemas, access roles and an outbox per schema.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from schemas import HEALTH_ROLE, SERVICE_SCHEMAS, access_role

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _create_role_if_missing(role: str, options: str) -> None:
    op.execute(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') "
        f"THEN CREATE ROLE {role} {options}; END IF; END $$"
    )


def upgrade() -> None:
    # Nobody but the owner may create objects in public (PostgreSQL 15+ default; explicit for older).
    op.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    _create_role_if_missing(HEALTH_ROLE, "NOLOGIN")
    for schema in SERVICE_SCHEMAS:
        role = access_role(schema)
        _create_role_if_missing(role, "NOLOGIN")
        op.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        op.execute(f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC")
        op.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        # Tables and sequences created later by the migration user are usable by the service.
        op.execute(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} "
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}"
        )
        op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT ON SEQUENCES TO {role}")
        op.create_table(
            "outbox",
            sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
            sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
            sa.Column("event_type", sa.String(80), nullable=False),
            sa.Column("aggregate_key", sa.String(80), nullable=False),
            sa.Column("envelope", sa.dialects.postgresql.JSONB, nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("published_at", sa.DateTime(timezone=True)),
            sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
            sa.Column("last_error", sa.Text),
            schema=schema,
        )
        op.create_index(
            "outbox_unpublished",
            "outbox",
            ["id"],
            schema=schema,
            postgresql_where=sa.text("published_at IS NULL"),
        )
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}")
        op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}")


def downgrade() -> None:
    for schema in SERVICE_SCHEMAS:
        op.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
