"""Sightings by lower-cased user: the Postfix path asks for a user's newest sighting by
`lower("user")`, which the (user, at) index cannot serve; without this index every cache miss
scanned the table.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_sightings_lower_user_at",
        "sightings",
        [sa.text('lower("user")'), "at"],
    )


def downgrade() -> None:
    op.drop_index("ix_sightings_lower_user_at", table_name="sightings")
