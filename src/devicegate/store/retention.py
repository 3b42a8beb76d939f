"""Decision-log retention: raw decisions older than a cut-off are deleted in small batches.

What the console and reports read of old decisions lives on in the rollups, so nothing is
deleted before the rollups hold it: the pruner first lets the updater catch up (when given
one) and never deletes past the rollups' position, whoever updates them. A decision's ref
(`decision_refs`, the user and device pages' way in) goes in the same transaction, found by
its key (details id, decision id) — no index on the decision id alone. Each batch is its
own short transaction — a few thousand rows by primary key — so `serve`'s writer, which
commits every few milliseconds, never waits long behind it. `decision_details` rows stay
(each is shared by many decisions and the writers keep their ids); sightings are not
decisions and keep their own lifetime.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import sqlalchemy as sa

from devicegate.store import Store
from devicegate.store import tables as t
from devicegate.store.rollups import RollupUpdater, position
from devicegate.timeutil import utc_now

BATCH = 5_000
# a pruned decision's ref, by its primary key (details id, decision id): one seek a row
REFS_DELETE = t.decision_refs.delete().where(
    t.decision_refs.c.detail_id == sa.bindparam("detail"),
    t.decision_refs.c.decision_id == sa.bindparam("decision"),
)


def cutoff_of(older_than: datetime | timedelta, now: datetime | None = None) -> datetime:
    """The moment before which decisions go: a time, or an age (`timedelta(days=90)`)."""
    if isinstance(older_than, timedelta):
        return (now or utc_now()) - older_than
    return older_than


def prune_decisions(
    store: Store,
    older_than: datetime | timedelta,
    *,
    batch: int = BATCH,
    updater: RollupUpdater | None = None,
    pause: float = 0.0,
) -> int:
    """Delete decisions made before `older_than` (a time, or an age), `batch` rows a
    transaction, `pause` seconds between batches; never one the rollups do not hold yet.
    With `updater`, the rollups are caught up to the cut-off first. How many were deleted."""
    if batch <= 0:
        raise ValueError("batch must be positive")
    cutoff = cutoff_of(older_than)
    d = t.decisions
    with store.engine.connect() as conn:
        newest_old = conn.execute(sa.select(sa.func.max(d.c.id)).where(d.c.at < cutoff)).scalar()
    if newest_old is None:
        return 0
    if updater is not None:
        updater.catch_up(until_id=int(newest_old))
    rolled = position(store)
    upto = min(int(newest_old), rolled.last_id if rolled is not None else 0)
    deleted = 0
    while True:
        with store.engine.begin() as conn:
            pruned = conn.execute(
                sa.select(d.c.id, d.c.detail_id)
                .where(d.c.at < cutoff, d.c.id <= upto)
                .order_by(d.c.id)
                .limit(batch)
            ).all()
            if not pruned:
                return deleted
            conn.execute(d.delete().where(d.c.id.in_([row.id for row in pruned])))
            conn.execute(
                REFS_DELETE,
                [{"detail": row.detail_id, "decision": row.id} for row in pruned],
            )
        deleted += len(pruned)
        if pause:
            time.sleep(pause)


__all__ = ["BATCH", "cutoff_of", "prune_decisions"]
