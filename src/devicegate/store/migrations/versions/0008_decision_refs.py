"""Take the console's index off the decision-log writer's path: drop `decisions (detail_id,
id)` and keep (details id, decision id) pairs in `decision_refs`, written by the rollup
updater in the transaction that advances the rollups (`devicegate.store.rollups`).

The index cost `serve`'s writer a random leaf page a decision at every commit
(benchmarks/decision_log.py). Refs exist exactly for the decisions up to the rollups'
position, so the upgrade fills them for those (under the position row's lock, so no updater
moves it meanwhile) and the updater adds the rest as it reaches them. The downgrade builds
the index again.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.drop_index("ix_decisions_detail_id", table_name="decisions")
    op.create_table(
        "decision_refs",
        sa.Column("detail_id", Id, primary_key=True, autoincrement=False),
        sa.Column("decision_id", Id, primary_key=True, autoincrement=False),
        sqlite_with_rowid=False,
    )
    # take the position row's lock (as every rollup step does) before reading it
    op.execute("UPDATE rollup_state SET updated_at = updated_at WHERE name = 'decisions'")
    op.execute(
        "INSERT INTO decision_refs (detail_id, decision_id) "
        "SELECT d.detail_id, d.id FROM decisions d "
        "WHERE d.id <= (SELECT s.last_id FROM rollup_state s WHERE s.name = 'decisions')"
    )


def downgrade() -> None:
    op.drop_table("decision_refs")
    op.create_index("ix_decisions_detail_id", "decisions", ["detail_id", "id"])
