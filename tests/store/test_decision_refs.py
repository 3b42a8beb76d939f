"""`decision_refs`: the rollup updater writes a ref for every decision it rolls up, retention
deletes the refs of what it prunes, and the user and device pages (`console.raw`) find
exactly what a plain query over `decisions JOIN decision_details` finds — with the rollups
current, behind by less than the look-back, and behind by more (then the answer names the
range it did not search) — on SQLite and on PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from devicegate.console import raw
from devicegate.store import Store
from devicegate.store import tables as t
from devicegate.store.retention import prune_decisions
from devicegate.store.rollups import RollupUpdater, position
from devicegate.timeutil import assume_utc
from tests.store.logrows import UNITS, random_log, write

USERS = [*UNITS, "nobody@x"]
DEVICES = ["dev-1", "dev-2", "dev-3"]


def updater(store: Store, **kw: object) -> RollupUpdater:
    return RollupUpdater(store, UNITS.get, "Europe/Moscow", **kw)  # type: ignore[arg-type]


def logged(store: Store, seed: int, count: int) -> list[int]:
    """A random log whose decisions also come from a few devices; the ids written."""
    log = random_log(seed, count)
    with_devices = [
        (at, dataclasses.replace(said, device_ref=DEVICES[n % 4] if n % 4 < 3 else None))
        for n, (at, said) in enumerate(log)
    ]
    return write(store, with_devices)


def refs(store: Store) -> set[tuple[int, int]]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(t.decision_refs.c.detail_id, t.decision_refs.c.decision_id))
        return {(int(a), int(b)) for a, b in rows}


def pairs(store: Store, upto: int | None = None) -> set[tuple[int, int]]:
    """(details id, id) of every decision (up to `upto`)."""
    d = t.decisions
    query = sa.select(d.c.detail_id, d.c.id)
    if upto is not None:
        query = query.where(d.c.id <= upto)
    with store.engine.connect() as conn:
        return {(int(a), int(b)) for a, b in conn.execute(query)}


def reference(store: Store, column: str, value: str, since: datetime) -> list[tuple[Any, ...]]:
    """Every matching decision since `since`, newest first, straight from the log."""
    d, x = t.decisions, t.decision_details
    query = (
        sa.select(d.c.id, x.c.user, x.c.device_ref, x.c.action, x.c.rule, x.c.resource)
        .join_from(d, x, x.c.id == d.c.detail_id)
        .where(x.c[column] == value, d.c.at >= since)
        .order_by(d.c.id.desc())
    )
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(query)]


def found(recent: raw.Recent) -> list[tuple[Any, ...]]:
    return [(d.id, d.user, d.device_ref, d.action, d.rule, d.resource) for d in recent.decisions]


def cases(store: Store) -> list[tuple[str, str, datetime, int]]:
    with store.engine.connect() as conn:
        first = conn.execute(sa.select(sa.func.min(t.decisions.c.at))).scalar()
    assert first is not None
    start = assume_utc(first)
    sinces = [start - timedelta(days=1), start + timedelta(days=9)]
    return [
        (column, value, since, limit)
        for column, values in (("user", USERS), ("device_ref", DEVICES))
        for value in values
        for since in sinces
        for limit in (3, 50, 10_000)
    ]


def page(store: Store, column: str, value: str, since: datetime, limit: int) -> raw.Recent:
    if column == "user":
        return raw.decisions_of_user(store, value, since=since, limit=limit)
    return raw.decisions_of_device(store, value, since=since, limit=limit)


def test_the_updater_writes_a_ref_for_every_decision_it_rolls_up(store: Store) -> None:
    ids = logged(store, 11, 600)
    roll = updater(store, batch=97)
    roll.step()
    assert refs(store) == pairs(store, upto=ids[96])
    roll.catch_up()
    assert refs(store) == pairs(store)
    assert len(refs(store)) == 600


def test_pages_equal_the_raw_log_with_the_rollups_current(store: Store) -> None:
    logged(store, 12, 700)
    updater(store, batch=150).catch_up()
    for column, value, since, limit in cases(store):
        got = page(store, column, value, since, limit)
        assert found(got) == reference(store, column, value, since)[:limit], (column, value)
        assert got.unseen is None


def test_pages_equal_the_raw_log_with_the_rollups_behind(store: Store) -> None:
    """Behind by less than the look-back: refs up to the position, the tail after it."""
    ids = logged(store, 13, 700)
    updater(store, batch=250).step()
    assert position(store).last_id == ids[249]  # type: ignore[union-attr]
    for column, value, since, limit in cases(store):
        got = page(store, column, value, since, limit)
        assert found(got) == reference(store, column, value, since)[:limit], (column, value)
        assert got.unseen is None


def test_a_page_names_what_it_did_not_search(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Behind by more than the look-back: the ids between the position and the look-back are
    not searched, the answer says which, and every other decision is there."""
    monkeypatch.setattr(raw, "LIVE_LOOKBACK", 300)
    ids = logged(store, 14, 700)
    updater(store, batch=100).step()
    rolled, low = ids[99], ids[-1] - 300
    named = 0
    for column, value, since, limit in cases(store):
        got = page(store, column, value, since, limit)
        every = reference(store, column, value, since)
        newer = [r for r in every if int(r[0]) > low]
        searched = [r for r in every if int(r[0]) <= rolled or int(r[0]) > low]
        assert found(got) == searched[:limit], (column, value)
        if len(newer) >= limit:
            assert got.unseen is None  # the newest `limit` are all after the gap
        else:
            assert got.unseen == (rolled + 1, low)
            named += 1
    assert named  # the log makes some answers reach back past the gap


def test_retention_deletes_the_refs_of_what_it_prunes(store: Store) -> None:
    logged(store, 15, 600)
    roll = updater(store, batch=100)
    with store.engine.connect() as conn:
        ats = sorted(conn.execute(sa.select(t.decisions.c.at)).scalars())
    cutoff = ats[300]
    deleted = prune_decisions(store, cutoff, batch=64, updater=roll)
    assert deleted >= 300
    roll.catch_up()
    assert refs(store) == pairs(store)
    assert len(refs(store)) == 600 - deleted
