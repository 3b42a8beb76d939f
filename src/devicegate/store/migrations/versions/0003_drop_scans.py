"""Drop `scans`: nothing wrote it. A triage verdict is recorded with its scan id and evidence
in `verdicts` (`Store.record_verdict`), which is what quarantines the device; a second copy of
the report in `scans` was never written by any command.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_scans_device_ref", table_name="scans")
    op.drop_table("scans")


def downgrade() -> None:
    op.create_table(
        "scans",
        sa.Column("scan_id", sa.String(128), primary_key=True),
        sa.Column("device_ref", sa.String(64)),
        sa.Column("verdict", sa.String(32), nullable=False),
        sa.Column("source", sa.String(256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("report", sa.JSON, nullable=False),
    )
    op.create_index("ix_scans_device_ref", "scans", ["device_ref"])
