"""Scraping service runs and therapist directory imports (116117).

scraping_service.runs: one row per scraping run (region, start, end, requests, pages, entries,
errors, where the raw file went).
therapist_service.directory_listings: per imported directory entry its therapist, the content
hash of what was imported (same hash: the entry costs no write), where each value came from,
and the review mark of entries that vanished from the directory.
therapist_service.directory_imports / directory_import_items: the import reports
(GET /api/v2/imports) and their skipped / vanished / reappeared entries.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SCRAPING = "scraping_service"
THERAPISTS = "therapist_service"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("region", sa.String(20), nullable=False),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("requests", sa.Integer, nullable=False, server_default="0"),
        sa.Column("pages", sa.Integer, nullable=False, server_default="0"),
        sa.Column("entries", sa.Integer, nullable=False, server_default="0"),
        sa.Column("enriched", sa.Integer, nullable=False, server_default="0"),
        sa.Column("errors", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error_messages", JSONB, nullable=False, server_default="[]"),
        sa.Column("raw_object_key", sa.String(200)),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'partial', 'failed')", name="runs_status_known"
        ),
        sa.CheckConstraint(
            "(status = 'running') = (finished_at IS NULL)", name="runs_finished_iff_not_running"
        ),
        sa.CheckConstraint(
            "requests >= 0 AND pages >= 0 AND entries >= 0 AND enriched >= 0 AND errors >= 0",
            name="runs_counts_not_negative",
        ),
        schema=SCRAPING,
    )
    op.create_index("runs_region_started", "runs", ["region", "started_at"], schema=SCRAPING)
    op.create_index("runs_started", "runs", ["started_at"], schema=SCRAPING)

    op.create_table(
        "directory_listings",
        sa.Column("directory_id", sa.String(100), primary_key=True),
        # No foreign key: therapists are never deleted (soft delete), the import writes listing
        # and therapist in one transaction, and tools may empty the therapists table on its own.
        sa.Column("therapist_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("postcode", sa.String(5)),
        sa.Column("latitude", sa.Double),
        sa.Column("longitude", sa.Double),
        # {field: "directory" | "website:<url>"}: where each imported value came from.
        sa.Column("provenance", JSONB, nullable=False, server_default="{}"),
        sa.Column("review_reason", sa.String(60)),
        sa.Column("review_since", TS),
        sa.Column("first_import_id", sa.Uuid, nullable=False),
        sa.Column("last_import_id", sa.Uuid, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("content_hash ~ '^[0-9a-f]{64}$'", name="directory_listings_hash_format"),
        sa.CheckConstraint(
            "(review_reason IS NULL) = (review_since IS NULL)", name="directory_listings_review_complete"
        ),
        schema=THERAPISTS,
    )
    # Staff work through the listings marked for review.
    op.create_index(
        "directory_listings_review",
        "directory_listings",
        ["review_since"],
        schema=THERAPISTS,
        postgresql_where=sa.text("review_reason IS NOT NULL"),
    )

    op.create_table(
        "directory_imports",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("source", sa.String(1000), nullable=False),
        sa.Column("source_version", sa.String(200)),
        sa.Column("region", sa.String(20)),
        sa.Column("complete_source", sa.Boolean, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("counts", JSONB, nullable=False),
        sa.Column("skip_reasons", JSONB, nullable=False, server_default="{}"),
        sa.Column("warnings", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text),
        sa.CheckConstraint(
            "status IN ('running', 'finished', 'failed')", name="directory_imports_status_known"
        ),
        sa.CheckConstraint(
            "(status = 'running') = (finished_at IS NULL)", name="directory_imports_finished_iff_not_running"
        ),
        schema=THERAPISTS,
    )
    op.create_index("directory_imports_started", "directory_imports", ["started_at", "id"], schema=THERAPISTS)
    # A redelivered S3 event finds the finished import of the same object version.
    op.create_index(
        "directory_imports_source_version",
        "directory_imports",
        ["source", "source_version"],
        schema=THERAPISTS,
        postgresql_where=sa.text("status = 'finished' AND source_version IS NOT NULL"),
    )

    op.create_table(
        "directory_import_items",
        sa.Column(
            "import_id",
            sa.Uuid,
            sa.ForeignKey(f"{THERAPISTS}.directory_imports.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("position", sa.String(60)),
        sa.Column("directory_id", sa.String(100)),
        sa.Column("therapist_id", sa.Uuid),
        sa.Column("name", sa.String(210)),
        sa.Column("reason", sa.String(60), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.CheckConstraint(
            "outcome IN ('skipped', 'vanished', 'reappeared')", name="directory_import_items_outcome_known"
        ),
        schema=THERAPISTS,
    )
    op.create_index(
        "directory_import_items_outcome",
        "directory_import_items",
        ["import_id", "outcome", "seq"],
        schema=THERAPISTS,
    )


def downgrade() -> None:
    op.drop_table("directory_import_items", schema=THERAPISTS)
    op.drop_table("directory_imports", schema=THERAPISTS)
    op.drop_table("directory_listings", schema=THERAPISTS)
    op.drop_table("runs", schema=SCRAPING)
