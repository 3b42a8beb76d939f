"""Directory and inventory sources: `source_versions` keeps every version a sync accepted
(its content compressed), `source_status` the last attempt, its refusal reason, the delta
watermark and the lease one server holds while it reads the source. Without them every
server read LDAP and the MDM on its own, a restart during an outage had nothing to start from,
and a refused sync left no trace.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "source_versions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("added", sa.Integer, nullable=False),
        sa.Column("removed", sa.Integer, nullable=False),
        sa.Column("changed", sa.Integer, nullable=False),
        sa.Column("forced", sa.Boolean, nullable=False),
        sa.Column("accepted_by", sa.String(320), nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_source_versions_source_id", "source_versions", ["source", "id"])
    op.create_table(
        "source_status",
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("last_outcome", sa.String(16)),
        sa.Column("last_reason", sa.Text),
        sa.Column("last_success_at", sa.DateTime(timezone=True)),
        sa.Column("refusals", sa.Integer, nullable=False),
        sa.Column("watermark", sa.String(64)),
        sa.Column("watermark_version", sa.String(32)),
        sa.Column("lease_owner", sa.String(128)),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("source_status")
    op.drop_index("ix_source_versions_source_id", table_name="source_versions")
    op.drop_table("source_versions")
