"""What a hold saw: `holds` gains `user` (whose request caused it), `seen` (the request's
signals and the device profile summary made of them) and `created_by` (the adapter, or
"operator NAME"). Without them the help desk could not explain a refusal: a hold named a
device reference and a reason, but not who was refused, from what, or by which server.

Holds written before this revision keep NULL in all three (unknown, not empty).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("holds") as batch:
        batch.add_column(sa.Column("user", sa.String(320)))
        batch.add_column(sa.Column("seen", sa.JSON))
        batch.add_column(sa.Column("created_by", sa.String(320)))


def downgrade() -> None:
    with op.batch_alter_table("holds") as batch:
        batch.drop_column("created_by")
        batch.drop_column("seen")
        batch.drop_column("user")
