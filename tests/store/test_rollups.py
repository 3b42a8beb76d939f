"""Rollups equal what the raw decision log says, computed here independently; one updater at a
time; ids committed out of order are not skipped; retention never deletes what the rollups
do not hold; heartbeats — on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from devicegate.store import Store
from devicegate.store import tables as t
from devicegate.store.heartbeats import heartbeats, record_heartbeat
from devicegate.store.retention import prune_decisions
from devicegate.store.rollups import RollupUpdater, position
from tests.store.logrows import UNITS, Said, random_log, write

MOSCOW = "Europe/Moscow"


def updater(store: Store, **kw: object) -> RollupUpdater:
    return RollupUpdater(store, UNITS.get, MOSCOW, **kw)  # type: ignore[arg-type]


Rolled = tuple[
    Counter[tuple[object, ...]],
    dict[tuple[object, ...], bool],
    Counter[tuple[object, ...]],
    dict[tuple[object, ...], tuple[object, object]],
]


def expected(store: Store) -> Rolled:
    """The rollups recomputed from the raw log: counts per (day, unit, rule, action); per
    (day, rule, user) seen on a matching device, whether only excepted; users per (day,
    unit, rule); per (rule, user) the last day seen and the last day seen unexcepted."""
    zone = ZoneInfo(MOSCOW)
    counts: Counter[tuple[object, ...]] = Counter()
    seen: dict[tuple[object, ...], bool] = {}
    for row in store.iter_decisions():
        day = row["at"].astimezone(zone).date()
        unit = UNITS.get(row["user"], "")
        detail = row["detail"]
        counts[(day, unit, row["rule"] or "", row["action"])] += 1
        for rule in detail["report_only"]:
            counts[(day, unit, rule, "report-only")] += 1
        rules = set(detail["excepted"])
        if row["rule"] and not row["rule"].startswith("builtin:"):
            rules.add(row["rule"])
        if row["action"] != "allow":
            rules |= set(detail["matched"])
        for rule in rules:
            key = (day, rule, row["user"])
            seen[key] = seen.get(key, True) and rule in detail["excepted"]
    daily: Counter[tuple[object, ...]] = Counter()
    users: dict[tuple[object, ...], tuple[object, object]] = {}
    for (day, rule, user), only_excepted in sorted(seen.items(), key=str):
        daily[(day, UNITS.get(str(user), ""), rule)] += 1
        last, unexcepted = users.get((rule, user), (day, None))
        last = max(last, day)  # type: ignore[type-var]
        if not only_excepted:
            unexcepted = day if unexcepted is None else max(unexcepted, day)  # type: ignore[type-var]
        users[(rule, user)] = (last, unexcepted)
    return counts, seen, daily, users


def stored(store: Store) -> Rolled:
    with store.engine.connect() as conn:
        counts = Counter(
            {
                (r.day, r.unit, r.rule, r.action): int(r.decisions)
                for r in conn.execute(sa.select(t.rollup_counts))
            }
        )
        seen = {
            (r.day, r.rule, r.user): bool(r.excepted_only)
            for r in conn.execute(sa.select(t.rollup_seen))
        }
        daily = Counter(
            {(r.day, r.unit, r.rule): int(r.users) for r in conn.execute(sa.select(t.rollup_daily))}
        )
        users = {
            (r.rule, r.user): (r.last_day, r.last_unexcepted_day)
            for r in conn.execute(sa.select(t.rollup_users))
        }
    return counts, seen, daily, users


def test_rollups_equal_the_raw_log(store: Store) -> None:
    write(store, random_log(1, 1500))
    roll = updater(store, batch=97)  # batches that split days, users and details
    assert roll.catch_up() == 1500
    assert stored(store) == expected(store)
    # later decisions are added to the same rows, not counted again
    write(store, random_log(2, 400))
    assert roll.catch_up() == 400
    assert stored(store) == expected(store)
    assert roll.step() == 0


def test_seen_keeps_last_time_device_and_resources(store: Store) -> None:
    day = datetime(2023, 7, 17, 6, 0, tzinfo=UTC)
    write(
        store,
        [
            (day, Said("a1@x", "block", "wave-1", matched=("wave-1",), resource="web")),
            (day + timedelta(hours=1), Said("a1@x", "allow", None, excepted=("wave-1",))),
            (
                day + timedelta(hours=2),
                Said("a1@x", "block", "wave-1", matched=("wave-1",), platform="iPadOS"),
            ),
        ],
    )
    updater(store, batch=1).catch_up()
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(t.rollup_seen)).one()
    assert (row.user, row.unit, row.rule, row.decisions) == ("a1@x", "gov/a", "wave-1", 3)
    assert row.resources == "email,web" and row.device == "Apple iPadOS"
    assert not row.excepted_only


def test_two_updaters_count_each_decision_once(store: Store) -> None:
    write(store, random_log(3, 3000))
    workers = [updater(store, batch=50) for _ in range(3)]
    threads = [threading.Thread(target=w.catch_up) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert stored(store) == expected(store)


def test_a_gap_waits_until_filled_or_final(store: Store) -> None:
    """Ids committed out of order (two writers on PostgreSQL): the updater stops before the
    gap and counts the late decision when it arrives; a gap older than gap_wait is final."""
    at = datetime(2023, 7, 17, 9, tzinfo=UTC)
    said = Said("a1@x", "block", "wave-1", matched=("wave-1",))
    write(store, [(at, said)], first_id=1)
    write(store, [(at, said)], first_id=3)
    clock = [0.0]
    roll = updater(store, gap_wait=10.0, clock=lambda: clock[0])
    roll._ordered = False  # SQLite commits in id order; test the PostgreSQL path on both
    assert roll.step() == 1
    assert position(store).last_id == 1  # type: ignore[union-attr]
    write(store, [(at, said)], first_id=2)  # the late commit
    assert roll.step() == 2
    write(store, [(at, said)], first_id=5)  # 4 never commits (rolled back)
    assert roll.step() == 0
    clock[0] = 11.0
    assert roll.step() == 1
    assert stored(store) == expected(store)


def test_prune_keeps_what_rollups_do_not_hold(store: Store) -> None:
    log = random_log(4, 1000)
    write(store, log)
    cutoff = log[500][0]
    # no rollups yet: nothing may go
    assert prune_decisions(store, cutoff, batch=64) == 0
    roll = updater(store, batch=100)
    before = expected(store)
    deleted = prune_decisions(store, cutoff, batch=64, updater=roll)
    older = sum(1 for at, _ in log if at < cutoff)
    assert deleted == older
    assert store.count("decisions") == 1000 - older
    roll.catch_up()
    assert stored(store) == before  # the rollups keep every pruned decision
    assert all(row["at"] >= cutoff for row in store.iter_decisions())


def test_prune_by_age_stops_at_the_rollups_position(store: Store) -> None:
    now = datetime.now(UTC)
    write(
        store,
        [
            (now - timedelta(days=100 - i, hours=-12), Said("a1@x", "allow", None))
            for i in range(20)
        ],
    )
    roll = updater(store, batch=5)
    roll.step()  # rollups hold the 5 oldest only
    assert prune_decisions(store, timedelta(days=90), batch=2) == 5
    assert prune_decisions(store, timedelta(days=90), batch=2, updater=roll) == 5
    assert store.count("decisions") == 10


def test_heartbeats(store: Store) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    record_heartbeat(store, "srv-a", policy_version="v1", started_at=start, now=start)
    record_heartbeat(store, "srv-b", policy_version="v1", started_at=start, now=start)
    later = start + timedelta(minutes=5)
    record_heartbeat(store, "srv-a", policy_version="v2", started_at=start, now=later)
    beats = {b.instance: b for b in heartbeats(store)}
    assert beats["srv-a"].policy_version == "v2" and beats["srv-a"].beat_at == later
    assert beats["srv-b"].stale(later) and not beats["srv-a"].stale(later)
