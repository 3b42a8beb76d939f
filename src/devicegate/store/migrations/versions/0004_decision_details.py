"""The decision log in two tables: what a decision says, kept once in `decision_details`,
and one narrow row a decision (request id, time, details id) in `decisions`; the view
`decision_log` joins them back into the old shape for SQL clients.

Why: under load most decisions repeat what an earlier one of the same user and device said,
and the writer process spent most of its CPU inserting those ≈ 600-byte rows again
(benchmarks/decision_log.py; see docs/serve.md). Existing rows are moved over in order of
writing, so ids keep their order and every request id is kept.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
DETAIL = (
    "user",
    "resource",
    "adapter",
    "action",
    "rule",
    "policy_version",
    "device_ref",
    "vendor",
    "platform",
    "detail",
)
CHUNK = 5_000


def _digest(values: tuple[Any, ...]) -> str:
    """As `devicegate.store.tables.detail_digest` (copied: a migration must not change when
    the application's code does; a differing digest would only store details twice)."""
    text = json.dumps(list(values), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _detail_columns() -> list[sa.Column[Any]]:
    return [
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
    ]


def _create_view() -> None:
    quote = op.get_bind().dialect.identifier_preparer.quote
    details = ", ".join(f"x.{quote(name)}" for name in DETAIL)
    op.execute(
        "CREATE VIEW decision_log AS SELECT d.id, d.request_id, d.at, "
        f"{details} FROM decisions d JOIN decision_details x ON x.id = d.detail_id"
    )


def upgrade() -> None:
    bind = op.get_bind()
    op.drop_index("ix_decisions_at", table_name="decisions")
    op.rename_table("decisions", "decisions_wide")
    op.create_table(
        "decision_details",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("digest", sa.String(64), nullable=False),
        *_detail_columns(),
        sa.UniqueConstraint("digest", name="uq_decision_details_digest"),
    )
    op.create_index("ix_decision_details_user", "decision_details", ["user"])
    op.create_table(
        "decisions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail_id", Id, nullable=False),
        sa.UniqueConstraint("request_id", name="uq_decisions_request_id"),
    )
    op.create_index("ix_decisions_at", "decisions", ["at"])

    wide = sa.table("decisions_wide", *(sa.column(c) for c in ("id", "request_id", "at", *DETAIL)))
    details = sa.table(
        "decision_details", sa.column("id"), sa.column("digest"), *map(sa.column, DETAIL)
    )
    narrow = sa.table("decisions", sa.column("request_id"), sa.column("at"), sa.column("detail_id"))
    known: dict[str, int] = {}
    last = 0
    while True:
        rows = bind.execute(
            sa.select(
                wide.c.id,
                wide.c.request_id,
                wide.c.at,
                *(wide.c[c] for c in DETAIL[:-1]),
                sa.cast(wide.c.detail, sa.Text),
            )
            .where(wide.c.id > last)
            .order_by(wide.c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            break
        last = rows[-1][0]
        new: dict[str, dict[str, Any]] = {}
        digests = []
        for row in rows:
            values = tuple(row[3:])
            digest = _digest(values)
            digests.append(digest)
            if digest not in known and digest not in new:
                new[digest] = {"digest": digest, **dict(zip(DETAIL, values, strict=True))}
        if new:
            detail_json = (
                sa.cast(sa.bindparam("detail"), sa.JSON)
                if bind.dialect.name != "sqlite"
                else sa.bindparam("detail")
            )
            bind.execute(
                details.insert().values(
                    digest=sa.bindparam("digest"),
                    **{c: sa.bindparam(c) for c in DETAIL[:-1]},
                    detail=detail_json,
                ),
                list(new.values()),
            )
            known.update(
                bind.execute(
                    sa.select(details.c.digest, details.c.id).where(details.c.digest.in_(list(new)))
                ).all()
            )
        bind.execute(
            narrow.insert(),
            [
                {"request_id": row[1], "at": row[2], "detail_id": known[digest]}
                for row, digest in zip(rows, digests, strict=True)
            ],
        )
    op.drop_table("decisions_wide")
    _create_view()


def downgrade() -> None:
    op.execute("DROP VIEW decision_log")
    op.create_table(
        "decisions_wide",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=False, unique=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        *_detail_columns(),
    )
    quote = op.get_bind().dialect.identifier_preparer.quote
    columns = ", ".join(quote(name) for name in DETAIL)
    picked = ", ".join(f"x.{quote(name)}" for name in DETAIL)
    op.execute(
        f"INSERT INTO decisions_wide (request_id, at, {columns}) "
        f"SELECT d.request_id, d.at, {picked} FROM decisions d "
        "JOIN decision_details x ON x.id = d.detail_id ORDER BY d.id"
    )
    op.drop_index("ix_decisions_at", table_name="decisions")
    op.drop_table("decisions")
    op.drop_index("ix_decision_details_user", table_name="decision_details")
    op.drop_table("decision_details")
    op.rename_table("decisions_wide", "decisions")
    op.create_index("ix_decisions_at", "decisions", ["at"])
