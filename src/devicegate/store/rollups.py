"""Rollups of the decision log, kept up to date by id, off the hot path.

The console's overview and unit pages would otherwise scan the raw log on every view; a
retained log (`retention.prune_decisions`) would lose what they show. So a `RollupUpdater`
tails `decisions` by id in small transactions and adds each decision to

* `rollup_counts` — day × unit × rule × action (rule "" is the default; for every
  report-only rule that would have acted, one count under action `report-only`);
* `rollup_seen` — per day, rule and user, that the user was seen on a device the rule
  matched: its last time, the device, the resources, and whether every such decision that
  day was lifted by an exception. Distinct users over a week are counted from these days,
  since daily distinct counts cannot be added up;
* `rollup_daily` — users seen per day, unit and rule (the trend charts), and `rollup_users` —
  per rule and user the last day seen and the last day seen without an exception, so that
  "seen in the last 7 days" is one row a user, not seven.

With them it writes each decision's (details id, decision id) to `decision_refs`, where the
user and device pages find a user's or a device's decisions: refs exist exactly up to the
rollups' position, and `serve`'s writer keeps no index for the console.

A user *seen on a matching device* for rule R is one with a decision that R decided, or
that R matched without the access being allowed (a deeper allow rule, such as a test lab's,
is not "still using a banned device"), or that an exception lifted R for.

**One updater at a time**, across processes and servers: each transaction first updates the
position row (`rollup_state`), which takes its lock — PostgreSQL's row lock, SQLite's write
lock — before reading where to go on; a second updater waits and then reads the new
position. **Ids committed out of order** (several `serve` writers on PostgreSQL: id 7 may
commit after id 8) would be skipped by a tail that simply moved past them, so on PostgreSQL
a gap in the ids stops the step before it until the gap fills or `gap_wait` seconds pass (a
rolled-back insert leaves a gap for good). SQLite commits one writer at a time, in id order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from devicegate.store import Store
from devicegate.store import tables as t
from devicegate.store.upsert import added, later, upsert
from devicegate.timeutil import assume_utc, utc_now

STATE = "decisions"
REPORT_ONLY = "report-only"
BATCH = 2_000
GAP_WAIT = 10.0
DETAILS_CACHED = 100_000
RESOURCES_MAX = 512

#: The unit a user is counted under (the directory's, at the time of rollup); None: unknown.
UnitOf = Callable[[str], str | None]


@dataclass(frozen=True, slots=True)
class Position:
    """Where the rollups stand: every decision up to `last_id` is in them."""

    last_id: int
    timezone: str
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class _Detail:
    user: str
    action: str
    rule: str | None
    resource: str
    device: str
    device_ref: str | None
    seen: frozenset[str]  # rules the user was seen on a matching device for
    excepted: frozenset[str]
    report_only: tuple[str, ...]


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _detail(row: Mapping[str, Any]) -> _Detail:
    """What a rollup needs of a decision's details (the explanation's JSON included)."""
    detail = row["detail"]
    detail = detail if isinstance(detail, Mapping) else {}
    rule, action = row["rule"], row["action"]
    excepted = frozenset(_strings(detail.get("excepted")))
    seen = set(excepted)
    if rule and not rule.startswith("builtin:"):
        seen.add(rule)
    if action != "allow":
        seen.update(r for r in _strings(detail.get("matched")) if not r.startswith("builtin:"))
    device = " ".join(x for x in (row["vendor"], row["platform"]) if x) or "unidentified"
    return _Detail(
        user=row["user"],
        action=action,
        rule=rule,
        resource=row["resource"],
        device=device[:256],
        device_ref=row["device_ref"],
        seen=frozenset(seen),
        excepted=excepted,
        report_only=tuple(_strings(detail.get("report_only"))),
    )


def position(store: Store) -> Position | None:
    """Where the rollups stand, or None before the first update."""
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(t.rollup_state).where(t.rollup_state.c.name == STATE)).first()
    if row is None:
        return None
    return Position(int(row.last_id), row.timezone, assume_utc(row.updated_at))


class RollupUpdater:
    """Adds the decision log to the rollups, `batch` decisions a transaction.

    `unit_of` maps a (canonical) user to the unit counted; `timezone` is the zone whose
    calendar days the rollups use — the first updater's, recorded in `rollup_state`; a later
    one with another zone keeps the recorded one, so days never mix."""

    def __init__(
        self,
        store: Store,
        unit_of: UnitOf,
        timezone: str,
        *,
        batch: int = BATCH,
        gap_wait: float = GAP_WAIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.unit_of = unit_of
        self.timezone = timezone
        self.batch = batch
        self.gap_wait = gap_wait
        self._clock = clock
        self._gaps: dict[int, float] = {}  # first missing id → when the gap was first seen
        self._details: dict[int, _Detail] = {}
        self._ordered = store.engine.dialect.name == "sqlite"

    # ---- the position -------------------------------------------------------------------
    def _claim(self, conn: sa.Connection) -> tuple[int, ZoneInfo]:
        """Lock the position row (created at 0 if missing) and read it."""
        state = t.rollup_state
        found = conn.execute(
            state.update()
            .where(state.c.name == STATE)
            .values(updated_at=state.c.updated_at)  # a no-op write: it takes the lock
        ).rowcount
        if not found:
            upsert(
                conn,
                state,
                [{"name": STATE, "last_id": 0, "timezone": self.timezone, "updated_at": utc_now()}],
                keys=["name"],
                merge={
                    "last_id": lambda table, _new: table.c.last_id,
                    "timezone": lambda table, _new: table.c.timezone,
                },
            )
        row = conn.execute(
            sa.select(state.c.last_id, state.c.timezone).where(state.c.name == STATE)
        ).one()
        return int(row.last_id), ZoneInfo(row.timezone)

    # ---- one step -------------------------------------------------------------------------
    def step(self) -> int:
        """Roll up the next decisions, at most `batch`, in one transaction; how many."""
        with self.store.engine.begin() as conn:
            last, zone = self._claim(conn)
            rows = conn.execute(
                sa.select(t.decisions.c.id, t.decisions.c.at, t.decisions.c.detail_id)
                .where(t.decisions.c.id > last)
                .order_by(t.decisions.c.id)
                .limit(self.batch)
            ).all()
            rows = self._contiguous(last, rows)
            if not rows:
                return 0
            details = self._load_details(conn, {row.detail_id for row in rows})
            counts: dict[tuple[date, str, str, str], int] = {}
            seen: dict[tuple[date, str, str], dict[str, Any]] = {}
            for row in rows:
                self._add(row, details[row.detail_id], zone, counts, seen)
            self._write(conn, counts, seen)
            conn.execute(
                t.decision_refs.insert(),
                [{"detail_id": row.detail_id, "decision_id": row.id} for row in rows],
            )
            conn.execute(
                t.rollup_state.update()
                .where(t.rollup_state.c.name == STATE)
                .values(last_id=rows[-1].id, updated_at=utc_now())
            )
        return len(rows)

    def catch_up(self, *, until_id: int | None = None, seconds: float | None = None) -> int:
        """Step until nothing is left (or the position passed `until_id`, or `seconds`
        ran out); how many decisions were rolled up."""
        deadline = None if seconds is None else self._clock() + seconds
        total = 0
        while True:
            done = self.step()
            total += done
            if done == 0 or (deadline is not None and self._clock() > deadline):
                return total
            found = position(self.store) if until_id is not None else None
            if found is not None and until_id is not None and found.last_id >= until_id:
                return total

    def _contiguous(self, last: int, rows: Sequence[Any]) -> list[Any]:
        """The rows up to the first gap in the ids that may still fill (PostgreSQL: an
        insert not yet committed); a gap older than `gap_wait` is taken as final."""
        if self._ordered:
            return list(rows)
        expected = last + 1
        now = self._clock()
        for index, row in enumerate(rows):
            if row.id != expected:
                first = self._gaps.setdefault(expected, now)
                if now - first < self.gap_wait:
                    return list(rows[:index])
                self._gaps.pop(expected, None)
            expected = row.id + 1
        return list(rows)

    def _load_details(self, conn: sa.Connection, ids: set[int]) -> dict[int, _Detail]:
        missing = [i for i in ids if i not in self._details]
        if len(self._details) + len(missing) > DETAILS_CACHED:
            self._details.clear()
            missing = list(ids)
        x = t.decision_details
        columns = (x.c.id, x.c.user, x.c.resource, x.c.action, x.c.rule, x.c.vendor)
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            for row in conn.execute(
                sa.select(*columns, x.c.platform, x.c.device_ref, x.c.detail).where(
                    x.c.id.in_(chunk)
                )
            ).mappings():
                self._details[int(row["id"])] = _detail(dict(row))
        return {i: self._details[i] for i in ids}

    def _add(
        self,
        row: Any,
        detail: _Detail,
        zone: ZoneInfo,
        counts: dict[tuple[date, str, str, str], int],
        seen: dict[tuple[date, str, str], dict[str, Any]],
    ) -> None:
        at = assume_utc(row.at)
        day = at.astimezone(zone).date()
        unit = self.unit_of(detail.user) or ""
        key = (day, unit, detail.rule or "", detail.action)
        counts[key] = counts.get(key, 0) + 1
        for rule in detail.report_only:
            key = (day, unit, rule, REPORT_ONLY)
            counts[key] = counts.get(key, 0) + 1
        for rule in detail.seen:
            entry = seen.get((day, rule, detail.user))
            only_excepted = rule in detail.excepted
            if entry is None:
                seen[(day, rule, detail.user)] = {
                    "day": day,
                    "rule": rule,
                    "user": detail.user,
                    "unit": unit,
                    "excepted_only": only_excepted,
                    "decisions": 1,
                    "last_at": at,
                    "device": detail.device,
                    "device_ref": detail.device_ref,
                    "resources": {detail.resource},
                }
                continue
            entry["excepted_only"] = entry["excepted_only"] and only_excepted
            entry["decisions"] += 1
            entry["resources"].add(detail.resource)
            if at >= entry["last_at"]:
                entry.update(last_at=at, device=detail.device, device_ref=detail.device_ref)

    def _write(
        self,
        conn: sa.Connection,
        counts: Mapping[tuple[date, str, str, str], int],
        seen: dict[tuple[date, str, str], dict[str, Any]],
    ) -> None:
        upsert(
            conn,
            t.rollup_counts,
            [
                {"day": d, "unit": u, "rule": r, "action": a, "decisions": n}
                for (d, u, r, a), n in counts.items()
            ],
            keys=["day", "unit", "rule", "action"],
            merge={"decisions": added("decisions")},
        )
        known: set[tuple[date, str, str]] = set()
        for stored in _stored_seen(conn, seen):
            known.add((stored["day"], stored["rule"], stored["user"]))
            entry = seen[(stored["day"], stored["rule"], stored["user"])]
            entry["excepted_only"] = entry["excepted_only"] and stored["excepted_only"]
            entry["decisions"] += stored["decisions"]
            entry["resources"].update(r for r in stored["resources"].split(",") if r)
            if assume_utc(stored["last_at"]) > entry["last_at"]:
                entry.update(
                    last_at=assume_utc(stored["last_at"]),
                    device=stored["device"],
                    device_ref=stored["device_ref"],
                )
        upsert(
            conn,
            t.rollup_seen,
            [
                entry | {"resources": ",".join(sorted(entry["resources"]))[:RESOURCES_MAX]}
                for entry in seen.values()
            ],
            keys=["day", "rule", "user"],
        )
        daily: dict[tuple[date, str, str], int] = {}
        users: dict[tuple[str, str], dict[str, Any]] = {}
        for (day, rule, user), entry in seen.items():
            if (day, rule, user) not in known:
                key = (day, entry["unit"], rule)
                daily[key] = daily.get(key, 0) + 1
            summary = users.setdefault(
                (rule, user),
                {
                    "rule": rule,
                    "user": user,
                    "unit": entry["unit"],
                    "last_day": day,
                    "last_unexcepted_day": None,
                    "at": entry["last_at"],
                },
            )
            if entry["last_at"] >= summary["at"]:
                summary.update(unit=entry["unit"], at=entry["last_at"])
            summary["last_day"] = max(summary["last_day"], day)
            if not entry["excepted_only"]:
                last = summary["last_unexcepted_day"]
                summary["last_unexcepted_day"] = day if last is None else max(last, day)
        upsert(
            conn,
            t.rollup_daily,
            [{"day": d, "unit": u, "rule": r, "users": n} for (d, u, r), n in daily.items()],
            keys=["day", "unit", "rule"],
            merge={"users": added("users")},
        )
        upsert(
            conn,
            t.rollup_users,
            [{k: v for k, v in s.items() if k != "at"} for s in users.values()],
            keys=["rule", "user"],
            merge={
                "last_day": later("last_day"),
                "last_unexcepted_day": later("last_unexcepted_day"),
            },
        )


def _stored_seen(
    conn: sa.Connection, seen: Mapping[tuple[date, str, str], object]
) -> Iterable[Mapping[str, Any]]:
    """The rows of `rollup_seen` already stored under the keys of `seen`."""
    s = t.rollup_seen
    by_day: dict[date, set[str]] = {}
    for day, _rule, user in seen:
        by_day.setdefault(day, set()).add(user)
    for day, users in by_day.items():
        names = sorted(users)
        for start in range(0, len(names), 500):
            for row in conn.execute(
                sa.select(s).where(s.c.day == day, s.c.user.in_(names[start : start + 500]))
            ).mappings():
                if (row["day"], row["rule"], row["user"]) in seen:
                    yield dict(row)


__all__ = ["REPORT_ONLY", "Position", "RollupUpdater", "UnitOf", "position"]
