"""Therapist erasure (GDPR Art. 17): `therapist_service.erased_therapists` remembers each erased
therapist by id and by suppression keys (SHA-256 digests of the directory id and of the
normalised name + postcode, never the values), so an erase can be repeated harmlessly and the
directory import never re-creates the therapist (therapists/domain/erasure.py).

The therapist and matching audit trails stay append-only for who, what and when, but the
services may now blank the recorded values (before, after, reason) of an erased therapist, as
the patient service may since 0005.

Revision ID: 0017_terasure
Revises: 0016_retention
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

from schemas import access_role

revision = "0017_terasure"
down_revision = "0016_retention"
branch_labels = None
depends_on = None

SCHEMA = "therapist_service"
AUDITED = ("therapist_service", "matching_service")


def upgrade() -> None:
    op.create_table(
        "erased_therapists",
        sa.Column("therapist_id", sa.Uuid, primary_key=True),
        sa.Column("suppression_keys", ARRAY(sa.String(64)), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.execute(
        f"CREATE INDEX erased_therapists_keys ON {SCHEMA}.erased_therapists USING gin (suppression_keys)"
    )
    for schema in AUDITED:
        op.execute(f"GRANT UPDATE (before, after, reason) ON {schema}.audit_log TO {access_role(schema)}")


def downgrade() -> None:
    for schema in AUDITED:
        op.execute(f"REVOKE UPDATE (before, after, reason) ON {schema}.audit_log FROM {access_role(schema)}")
    op.execute(f"DROP INDEX IF EXISTS {SCHEMA}.erased_therapists_keys")
    op.drop_table("erased_therapists", schema=SCHEMA)
