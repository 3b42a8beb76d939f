"""`serve` heartbeats: which instances share the store, what policy each runs, and whether it
is still there. Each instance upserts its own row; the console lists them and flags those
whose last beat is older than it expects (`stale`)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from devicegate.store import Store
from devicegate.store import tables as t
from devicegate.store.upsert import upsert
from devicegate.timeutil import assume_utc, utc_now

#: how often `serve` should beat, and after how long without one the console calls it stale
INTERVAL = timedelta(seconds=15)
STALE_AFTER = 4 * INTERVAL


@dataclass(frozen=True, slots=True)
class Heartbeat:
    instance: str
    host: str
    pid: int
    software: str
    policy_version: str
    started_at: datetime
    beat_at: datetime

    def stale(self, now: datetime, after: timedelta = STALE_AFTER) -> bool:
        return now - self.beat_at > after


def record_heartbeat(
    store: Store,
    instance: str,
    *,
    policy_version: str,
    started_at: datetime,
    software: str = "",
    host: str | None = None,
    pid: int | None = None,
    now: datetime | None = None,
) -> None:
    """Say that `instance` runs `policy_version` now (one short upsert; call it at start,
    after every reload and every `INTERVAL`)."""
    row = {
        "instance": instance[:64],
        "host": (host or socket.gethostname())[:256],
        "pid": os.getpid() if pid is None else pid,
        "software": software[:64],
        "policy_version": policy_version[:32],
        "started_at": started_at,
        "beat_at": now or utc_now(),
    }
    with store.engine.begin() as conn:
        upsert(conn, t.heartbeats, [row], keys=["instance"])


def heartbeats(store: Store) -> list[Heartbeat]:
    """Every instance that ever beat, the most recent first."""
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(t.heartbeats).order_by(t.heartbeats.c.beat_at.desc())).all()
    return [
        Heartbeat(
            instance=r.instance,
            host=r.host,
            pid=int(r.pid),
            software=r.software,
            policy_version=r.policy_version,
            started_at=assume_utc(r.started_at),
            beat_at=assume_utc(r.beat_at),
        )
        for r in rows
    ]


def forget_heartbeat(store: Store, instance: str) -> bool:
    """Remove an instance that is gone for good (the console lists it as stale until then)."""
    with store.engine.begin() as conn:
        done = conn.execute(t.heartbeats.delete().where(t.heartbeats.c.instance == instance))
    return bool(done.rowcount)


__all__ = [
    "INTERVAL",
    "STALE_AFTER",
    "Heartbeat",
    "forget_heartbeat",
    "heartbeats",
    "record_heartbeat",
]
