"""What the console reads: rollups of the decision log and where they stand in it, the admin
actions (the activity page), `serve` heartbeats, and indexes for the raw-row pages.

Rollups are filled from the decision log by id (`devicegate.store.rollups`) after this
revision runs, so an existing log is rolled up by the first updater, not here: a migration
holds its transaction for its whole run.

Revision ID: 0007
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "rollup_counts",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("unit", sa.String(256), primary_key=True),
        sa.Column("rule", sa.String(128), primary_key=True),
        sa.Column("action", sa.String(16), primary_key=True),
        sa.Column("decisions", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "rollup_seen",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("rule", sa.String(128), primary_key=True),
        sa.Column("user", sa.String(320), primary_key=True),
        sa.Column("unit", sa.String(256), nullable=False),
        sa.Column("excepted_only", sa.Boolean, nullable=False),
        sa.Column("decisions", sa.BigInteger, nullable=False),
        _ts("last_at"),
        sa.Column("device", sa.String(256), nullable=False),
        sa.Column("device_ref", sa.String(64)),
        sa.Column("resources", sa.String(512), nullable=False),
    )
    op.create_index("ix_rollup_seen_unit_day", "rollup_seen", ["unit", "day"])
    op.create_table(
        "rollup_daily",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("unit", sa.String(256), primary_key=True),
        sa.Column("rule", sa.String(128), primary_key=True),
        sa.Column("users", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "rollup_users",
        sa.Column("rule", sa.String(128), primary_key=True),
        sa.Column("user", sa.String(320), primary_key=True),
        sa.Column("unit", sa.String(256), nullable=False),
        sa.Column("last_day", sa.Date, nullable=False),
        sa.Column("last_unexcepted_day", sa.Date),
    )
    op.create_index("ix_rollup_users_last_day", "rollup_users", ["last_day"])
    op.create_table(
        "rollup_state",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("last_id", sa.BigInteger, nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        _ts("updated_at"),
    )
    op.create_table(
        "admin_actions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        _ts("at"),
        sa.Column("actor", sa.String(320), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(320), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_index("ix_admin_actions_at", "admin_actions", ["at"])
    op.create_table(
        "heartbeats",
        sa.Column("instance", sa.String(64), primary_key=True),
        sa.Column("host", sa.String(256), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("software", sa.String(64), nullable=False),
        sa.Column("policy_version", sa.String(32), nullable=False),
        _ts("started_at"),
        _ts("beat_at"),
    )
    op.create_index("ix_decisions_detail_id", "decisions", ["detail_id", "id"])
    op.create_index("ix_decision_details_device_ref", "decision_details", ["device_ref"])
    op.create_index("ix_sightings_device_ref_at", "sightings", ["device_ref", "at"])


def downgrade() -> None:
    op.drop_index("ix_sightings_device_ref_at", table_name="sightings")
    op.drop_index("ix_decision_details_device_ref", table_name="decision_details")
    op.drop_index("ix_decisions_detail_id", table_name="decisions")
    op.drop_table("heartbeats")
    op.drop_index("ix_admin_actions_at", table_name="admin_actions")
    op.drop_table("admin_actions")
    op.drop_table("rollup_state")
    op.drop_index("ix_rollup_users_last_day", table_name="rollup_users")
    op.drop_table("rollup_users")
    op.drop_table("rollup_daily")
    op.drop_index("ix_rollup_seen_unit_day", table_name="rollup_seen")
    op.drop_table("rollup_seen")
    op.drop_table("rollup_counts")
