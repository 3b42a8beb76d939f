"""The record of what people did through the console: who, when, what, on what, why.

Written in the same transaction as the change it describes where there is one
(`release_with_record`), so an action is never done unrecorded nor recorded undone."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from devicegate.store import Store
from devicegate.store import tables as t
from devicegate.timeutil import assume_utc, utc_now


@dataclass(frozen=True, slots=True)
class AdminAction:
    id: int
    at: datetime
    actor: str
    role: str
    action: str
    target: str
    reason: str
    detail: Mapping[str, Any] = field(default_factory=dict)


def record_action(
    conn: sa.Connection,
    *,
    actor: str,
    role: str,
    action: str,
    target: str,
    reason: str,
    detail: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Add one action to the record inside the caller's transaction."""
    conn.execute(
        t.admin_actions.insert().values(
            at=at or utc_now(),
            actor=actor[:320],
            role=role[:16],
            action=action[:64],
            target=target[:320],
            reason=reason,
            detail=dict(detail or {}),
        )
    )


def actions(store: Store, *, limit: int = 200, before_id: int | None = None) -> list[AdminAction]:
    """The most recent actions first, `limit` of them (older than `before_id` when given)."""
    a = t.admin_actions
    query = sa.select(a).order_by(a.c.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(a.c.id < before_id)
    with store.engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [
        AdminAction(
            id=int(r["id"]),
            at=assume_utc(r["at"]),
            actor=r["actor"],
            role=r["role"],
            action=r["action"],
            target=r["target"],
            reason=r["reason"],
            detail=r["detail"] if isinstance(r["detail"], Mapping) else {},
        )
        for r in rows
    ]


__all__ = ["AdminAction", "actions", "record_action"]
