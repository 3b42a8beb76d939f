"""Raw rows for the user, device and live pages: always through an index or the primary key,
always bounded by time or count, never a scan of the decision log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from devicegate.store import Store
from devicegate.store import tables as t
from devicegate.store.rollups import STATE as ROLLUP_STATE
from devicegate.timeutil import assume_utc

RECENT = 50
LIVE_BATCH = 200
#: how far back the live page's first screen looks for matching decisions, and the user and
#: device pages for decisions the rollups do not hold yet (ids)
LIVE_LOOKBACK = 20_000
FILTERS = ("action", "resource", "rule", "adapter")


@dataclass(frozen=True, slots=True)
class LoggedDecision:
    id: int
    at: datetime
    user: str
    resource: str
    adapter: str
    action: str
    rule: str | None
    policy_version: str
    device_ref: str | None
    vendor: str | None
    platform: str | None
    detail: Mapping[str, Any]

    @property
    def device(self) -> str:
        return " ".join(x for x in (self.vendor, self.platform) if x) or "unidentified"

    @property
    def signals(self) -> Mapping[str, str]:
        found = self.detail.get("signals")
        return found if isinstance(found, Mapping) else {}


def _select(*, via_refs: bool = False) -> sa.Select[Any]:
    """A logged decision's columns: from `decisions` joined to its details, or (`via_refs`)
    from `decision_refs`, whose key leads from a details id to its decisions."""
    d, x, r = t.decisions, t.decision_details, t.decision_refs
    query = sa.select(
        d.c.id,
        d.c.at,
        x.c.user,
        x.c.resource,
        x.c.adapter,
        x.c.action,
        x.c.rule,
        x.c.policy_version,
        x.c.device_ref,
        x.c.vendor,
        x.c.platform,
        x.c.detail,
    )
    if via_refs:
        return query.select_from(
            r.join(x, x.c.id == r.c.detail_id).join(d, d.c.id == r.c.decision_id)
        )
    return query.join_from(d, x, d.c.detail_id == x.c.id)


def _decisions(conn: sa.Connection, query: sa.Select[Any]) -> list[LoggedDecision]:
    out = []
    for r in conn.execute(query).mappings():
        detail = r["detail"]
        out.append(
            LoggedDecision(
                **{k: r[k] for k in r if k not in ("at", "detail", "id")},
                id=int(r["id"]),
                at=assume_utc(r["at"]),
                detail=detail if isinstance(detail, Mapping) else {},
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class Recent:
    """A user's or a device's most recent decisions, newest first. `unseen` (first, last):
    the decisions with ids in that range were not searched — the rollups trail the log by
    more than `LIVE_LOOKBACK` ids — so the rows are complete up to `first - 1` and from
    `last + 1` on; None: complete."""

    decisions: list[LoggedDecision]
    unseen: tuple[int, int] | None = None


def _recent(
    store: Store, matches: sa.ColumnElement[bool], *, since: datetime, limit: int
) -> Recent:
    """The newest `limit` decisions since `since` whose details match `matches`.

    Decisions up to the rollups' position are found through `decision_refs` (details by
    user or device, then refs by details id); those after it by the decisions' primary key,
    at most `LIVE_LOOKBACK` ids back from the newest, joined to their details. A larger
    distance leaves a range unsearched, which the answer names."""
    d, r = t.decisions, t.decision_refs
    with store.engine.connect() as conn:
        rolled = conn.execute(
            sa.select(t.rollup_state.c.last_id).where(t.rollup_state.c.name == ROLLUP_STATE)
        ).scalar()
        rolled = int(rolled or 0)
        top = _newest_id(conn)
        low = max(rolled, top - LIVE_LOOKBACK)
        tail = _decisions(
            conn,
            _select()
            .where(d.c.id > low, d.c.id <= top, matches, d.c.at >= since)
            .order_by(d.c.id.desc())
            .limit(limit),
        )
        if len(tail) >= limit:
            return Recent(tail)
        older = _decisions(
            conn,
            _select(via_refs=True)
            .where(matches, r.c.decision_id <= rolled, d.c.at >= since)
            .order_by(r.c.decision_id.desc())
            .limit(limit - len(tail)),
        )
    return Recent(tail + older, (rolled + 1, low) if low > rolled else None)


def decisions_of_user(store: Store, user: str, *, since: datetime, limit: int = RECENT) -> Recent:
    """The user's most recent decisions since `since` (`_recent`)."""
    return _recent(store, t.decision_details.c.user == user, since=since, limit=limit)


def decisions_of_device(
    store: Store, device_ref: str, *, since: datetime, limit: int = RECENT
) -> Recent:
    """The device's most recent decisions since `since` (`_recent`)."""
    return _recent(store, t.decision_details.c.device_ref == device_ref, since=since, limit=limit)


def sightings_of_device(
    store: Store, device_ref: str, *, since: timedelta, now: datetime, limit: int = RECENT
) -> list[dict[str, Any]]:
    s = t.sightings
    with store.engine.connect() as conn:
        rows = (
            conn.execute(
                sa.select(s)
                .where(s.c.device_ref == device_ref, s.c.at >= now - since)
                .order_by(s.c.at.desc())
                .limit(limit)
            )
            .mappings()
            .all()
        )
    return [dict(r) | {"at": assume_utc(r["at"])} for r in rows]


def newest_id(store: Store) -> int:
    with store.engine.connect() as conn:
        return _newest_id(conn)


def _newest_id(conn: sa.Connection) -> int:
    """The id of the newest decision logged, 0 for none."""
    return int(conn.execute(sa.select(sa.func.max(t.decisions.c.id))).scalar() or 0)


def _filtered(query: sa.Select[Any], filters: Mapping[str, str]) -> sa.Select[Any]:
    x = t.decision_details
    for name in FILTERS:
        value = filters.get(name)
        if value:
            query = query.where(x.c[name] == value)
    return query


def live_after(
    store: Store, after: int, filters: Mapping[str, str], users: Sequence[str] | None = None
) -> tuple[list[LoggedDecision], int]:
    """Decisions with an id above `after` that pass the filters, oldest first, at most
    `LIVE_BATCH` (the stream's next rows), and the id the next call goes on from. `users`:
    only these (a unit's)."""
    d = t.decisions
    top = newest_id(store)
    query = _filtered(_select().where(d.c.id > after, d.c.id <= top), filters)
    query = query.order_by(d.c.id).limit(LIVE_BATCH)
    with store.engine.connect() as conn:
        rows = _decisions(conn, query)
    upto = rows[-1].id if len(rows) == LIVE_BATCH else max(top, after)
    if users is not None:
        wanted = set(users)
        rows = [r for r in rows if r.user in wanted]
    return rows, upto


def live_recent(
    store: Store, filters: Mapping[str, str], users: Sequence[str] | None, *, limit: int = RECENT
) -> tuple[list[LoggedDecision], int]:
    """The newest decisions that pass the filters among the last `LIVE_LOOKBACK` ids, newest
    first, and the newest id (where the stream goes on from)."""
    newest = newest_id(store)
    d = t.decisions
    query = _filtered(_select().where(d.c.id > newest - LIVE_LOOKBACK), filters)
    query = query.order_by(d.c.id.desc())
    if users is None:
        query = query.limit(limit)
    with store.engine.connect() as conn:
        rows = _decisions(conn, query)
    if users is not None:
        wanted = set(users)
        rows = [r for r in rows if r.user in wanted][:limit]
    return rows, newest


__all__ = [
    "FILTERS",
    "LoggedDecision",
    "Recent",
    "decisions_of_device",
    "decisions_of_user",
    "live_after",
    "live_recent",
    "newest_id",
    "sightings_of_device",
]
