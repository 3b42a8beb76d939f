"""Initial schema: devices and their keys, verdicts, holds, sightings, decisions, scans,
notices.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("device_ref", sa.String(64), primary_key=True),
        sa.Column("user", sa.String(320)),
        sa.Column("vendor", sa.String(64)),
        sa.Column("platform", sa.String(64)),
        sa.Column("model", sa.String(128)),
        _ts("first_seen"),
        _ts("last_seen"),
    )
    op.create_table(
        "device_keys",
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("value", sa.String(256), primary_key=True),
        sa.Column("device_ref", sa.String(64), nullable=False, index=True),
    )
    op.create_table(
        "verdicts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("device_ref", sa.String(64), nullable=False, index=True),
        sa.Column("verdict", sa.String(32), nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("scan_id", sa.String(128), nullable=False),
        sa.Column("source", sa.String(256), nullable=False),
        _ts("created_at"),
        _ts("cleared_at", True),
        sa.Column("cleared_by", sa.String(320)),
    )
    op.create_table(
        "holds",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("device_ref", sa.String(64), nullable=False, index=True),
        sa.Column("resource", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(128)),
        sa.Column("reason", sa.Text, nullable=False),
        _ts("created_at"),
        _ts("released_at", True),
        sa.Column("released_by", sa.String(320)),
    )
    op.create_table(
        "sightings",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        _ts("at"),
        sa.Column("user", sa.String(320), nullable=False),
        sa.Column("resource", sa.String(64), nullable=False),
        sa.Column("adapter", sa.String(32), nullable=False),
        sa.Column("device_ref", sa.String(64)),
        sa.Column("vendor", sa.String(64)),
        sa.Column("platform", sa.String(64)),
        sa.Column("signals", sa.JSON, nullable=False),
    )
    op.create_index("ix_sightings_user_at", "sightings", ["user", "at"])
    op.create_table(
        "decisions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=False, unique=True),
        _ts("at"),
        sa.Column("user", sa.String(320), nullable=False),
        sa.Column("resource", sa.String(64), nullable=False),
        sa.Column("adapter", sa.String(32), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("rule", sa.String(128)),
        sa.Column("policy_version", sa.String(32), nullable=False),
        sa.Column("device_ref", sa.String(64)),
        sa.Column("vendor", sa.String(64)),
        sa.Column("platform", sa.String(64)),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_index("ix_decisions_at", "decisions", ["at"])
    op.create_table(
        "scans",
        sa.Column("scan_id", sa.String(128), primary_key=True),
        sa.Column("device_ref", sa.String(64), index=True),
        sa.Column("verdict", sa.String(32), nullable=False),
        sa.Column("source", sa.String(256), nullable=False),
        _ts("created_at"),
        sa.Column("report", sa.JSON, nullable=False),
    )
    op.create_table(
        "notices",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("user", sa.String(320), nullable=False),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        _ts("updated_at"),
    )
    op.create_index("ux_notices_subject", "notices", ["user", "rule", "device_id"], unique=True)


def downgrade() -> None:
    for name in (
        "notices",
        "scans",
        "decisions",
        "sightings",
        "holds",
        "verdicts",
        "device_keys",
        "devices",
    ):
        op.drop_table(name)
