"""What the overview and unit pages show, read from the rollups (never the raw log).

*Seen* users of a rule in a window: distinct users with a `rollup_seen` day in it; *of them
excepted*: those whose every such decision in the window an exception lifted; *ready*: the
share of users in scope not seen without an exception — (in scope − (seen − excepted)) / in
scope. Subtrees add up per unit, since a user is counted under one unit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from devicegate.console.units import under, unit_index
from devicegate.directory.names import normalise_name
from devicegate.model import Action
from devicegate.policy import Snapshot
from devicegate.policy.compile import CompiledException, CompiledRule
from devicegate.store import Store
from devicegate.store import tables as t
from devicegate.store.rollups import REPORT_ONLY
from devicegate.timeutil import assume_utc

TREND_DAYS = 14


def rollout_rules(snapshot: Snapshot) -> list[CompiledRule]:
    """The rules a rollout tracks: enforced, and taking something away (not allow rules)."""
    return [r for r in snapshot.rules if not r.report_only and r.effect is not Action.ALLOW]


@dataclass
class UnitRow:
    unit: str
    in_scope: int = 0
    seen: int = 0
    excepted: int = 0
    trend: list[int] = field(default_factory=list)

    @property
    def ready(self) -> float | None:
        if not self.in_scope:
            return None
        return max(0.0, (self.in_scope - (self.seen - self.excepted)) / self.in_scope)


@dataclass
class RuleProgress:
    rule: CompiledRule
    days_left: int
    units: list[UnitRow]


def window(today: date, days: int) -> tuple[date, date]:
    return today - timedelta(days=days - 1), today


def _seen_per_unit(
    conn: sa.Connection, first: date, last: date
) -> dict[tuple[str, str], tuple[int, int]]:
    """(rule, stored unit) → (seen users, of them only excepted) in [first, last]: from the
    per-user summary when the window reaches the newest rolled-up day (the usual case: one
    row a user and rule), else from the days themselves (looking back with `--at`)."""
    newest = conn.execute(sa.select(sa.func.max(t.rollup_seen.c.day))).scalar()
    if newest is None or newest <= last:
        u = t.rollup_users
        excepted = sa.case(
            (sa.or_(u.c.last_unexcepted_day.is_(None), u.c.last_unexcepted_day < first), 1),
            else_=0,
        )
        rows = conn.execute(
            sa.select(u.c.rule, u.c.unit, sa.func.count(), sa.func.sum(excepted))
            .where(u.c.last_day >= first)
            .group_by(u.c.rule, u.c.unit)
        ).all()
        return {(r[0], r[1]): (int(r[2]), int(r[3] or 0)) for r in rows}
    s = t.rollup_seen
    per_user = (
        sa.select(
            s.c.rule,
            s.c.unit,
            s.c.user,
            sa.func.min(sa.case((s.c.excepted_only, 1), else_=0)).label("ex"),
        )
        .where(s.c.day >= first, s.c.day <= last)
        .group_by(s.c.rule, s.c.unit, s.c.user)
        .subquery()
    )
    rows = conn.execute(
        sa.select(
            per_user.c.rule, per_user.c.unit, sa.func.count(), sa.func.sum(per_user.c.ex)
        ).group_by(per_user.c.rule, per_user.c.unit)
    ).all()
    return {(r[0], r[1]): (int(r[2]), int(r[3] or 0)) for r in rows}


def _daily(conn: sa.Connection, first: date, last: date) -> dict[tuple[str, str, date], int]:
    """(rule, stored unit, day) → users seen that day."""
    d = t.rollup_daily
    rows = conn.execute(
        sa.select(d.c.rule, d.c.unit, d.c.day, d.c.users).where(d.c.day >= first, d.c.day <= last)
    ).all()
    return {(r[0], r[1], r[2]): int(r[3]) for r in rows}


def progress(store: Store, snapshot: Snapshot, today: date, days: int) -> list[RuleProgress]:
    """Per rollout rule, per unit: in scope, seen, excepted, ready, a per-day trend."""
    index = unit_index(snapshot)
    first, last = window(today, days)
    trend_first = today - timedelta(days=TREND_DAYS - 1)
    with store.engine.connect() as conn:
        seen = _seen_per_unit(conn, first, last)
        daily = _daily(conn, trend_first, last)
    out = []
    for rule in rollout_rules(snapshot):
        rows: dict[str, UnitRow] = {}
        for (rule_index, unit), count in index.in_scope.items():
            if rule_index == rule.index:
                rows.setdefault(unit, UnitRow(unit)).in_scope += count
        for (rule_id, stored), (users, excepted) in seen.items():
            if rule_id == rule.id:
                row = rows.setdefault(index.shown(stored), UnitRow(index.shown(stored)))
                row.seen += users
                row.excepted += excepted
        trend: dict[str, list[int]] = defaultdict(lambda: [0] * TREND_DAYS)
        for (rule_id, stored, day), users in daily.items():
            if rule_id == rule.id:
                trend[index.shown(stored)][(day - trend_first).days] += users
        for row in rows.values():
            row.trend = trend.get(row.unit, [0] * TREND_DAYS)
        days_left = (rule.start_at.astimezone(snapshot.timezone).date() - today).days
        out.append(RuleProgress(rule, days_left, sorted(rows.values(), key=lambda r: r.unit)))
    return out


def decisions_on(store: Store, day: date) -> dict[str, int]:
    """Decisions on `day` by action (the rollups' counts)."""
    c = t.rollup_counts
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(c.c.action, sa.func.sum(c.c.decisions))
            .where(c.c.day == day, c.c.action != REPORT_ONLY)
            .group_by(c.c.action)
        ).all()
    return {r[0]: int(r[1]) for r in rows}


def report_only_hits(store: Store, first: date, last: date) -> dict[str, int]:
    """What report-only rules would have done in [first, last], per rule."""
    c = t.rollup_counts
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(c.c.rule, sa.func.sum(c.c.decisions))
            .where(c.c.day >= first, c.c.day <= last, c.c.action == REPORT_ONLY)
            .group_by(c.c.rule)
        ).all()
    return {r[0]: int(r[1]) for r in rows}


@dataclass(frozen=True)
class StillUsing:
    """One user still seen on a device a rule matches, in a unit's subtree."""

    user: str
    unit: str
    rule: str
    effective: datetime
    device: str
    device_ref: str | None
    resources: tuple[str, ...]
    last_seen: datetime
    days_seen: int
    exception: CompiledException | None

    def cells(self, fmt: Any) -> list[str]:
        """The row as the unit page shows it (and its CSV export writes it), by COLUMNS."""
        exception = (
            f"{self.exception.reason} (until {fmt.moment(self.exception.until_at)})"
            if self.exception
            else "—"
        )
        return [
            self.user,
            self.device,
            ", ".join(self.resources),
            fmt.moment(self.last_seen),
            self.rule,
            fmt.moment(self.effective),
            exception,
        ]


COLUMNS = ("user", "device", "resources", "last_seen", "rule", "effective", "exception")


@lru_cache(maxsize=4)
def _exceptions_by_user(snapshot: Snapshot) -> dict[str, tuple[CompiledException, ...]]:
    """Each user's exceptions, by the (normalised) name the exception gives."""
    found: dict[str, list[CompiledException]] = defaultdict(list)
    for exc in snapshot.exceptions:
        if exc.user:
            found[exc.user].append(exc)
    return {name: tuple(excs) for name, excs in found.items()}


def _exception_for(
    snapshot: Snapshot, user: str, rule: str, at: datetime
) -> CompiledException | None:
    """The exception that lifts `rule` for `user` at `at` (the latest ending), if any."""
    by_user = _exceptions_by_user(snapshot)
    if not by_user:
        return None
    found = snapshot.directory.get(user)
    names = {normalise_name(a) for a in found.aliases()} if found else {normalise_name(user)}
    best = None
    ts = at.timestamp()
    for exc in (e for name in names for e in by_user.get(name, ())):
        wanted = exc.user in names and rule in exc.rules and exc.active(ts)
        if wanted and (best is None or exc.end > best.end):
            best = exc
    return best


def still_using(
    store: Store, snapshot: Snapshot, unit: str, today: date, days: int, now: datetime
) -> list[StillUsing]:
    """Who in `unit`'s subtree was seen on a matching device in the window, per rule."""
    rules = {r.id: r for r in rollout_rules(snapshot)}
    first, last = window(today, days)
    s = t.rollup_seen
    query = sa.select(
        s.c.user,
        s.c.unit,
        s.c.rule,
        # as stored: SQLite's ISO text sorts as the times do, and only the newest of each
        # user's days is turned into a datetime (SQLAlchemy's parsing of every row was half
        # of the page's time on a 5,000-user unit)
        sa.type_coerce(s.c.last_at, sa.String),
        s.c.device,
        s.c.device_ref,
        s.c.resources,
    ).where(
        s.c.day >= first,
        s.c.day <= last,
        s.c.rule.in_(sorted(rules)),
        # the subtree's units by name: equality on the (unit, day) index's first column, so
        # the planner never prefers the day range (which spans every unit)
        s.c.unit.in_(sorted(u for u in unit_index(snapshot).every if under(u, unit))),
    )
    merged: dict[tuple[str, str], list[Any]] = {}
    with store.engine.connect() as conn:
        for user, stored_unit, rule, at, device, ref, resources in conn.execute(query):
            entry = merged.get((user, rule))
            if entry is None:
                merged[(user, rule)] = [stored_unit, at, device, ref, set(resources.split(",")), 1]
                continue
            entry[4].update(resources.split(","))
            entry[5] += 1
            if at > entry[1]:
                entry[1:4] = [at, device, ref]
    out = []
    for (user, rule_id), (stored_unit, at, device, ref, resources, days_seen) in merged.items():
        rule = rules[rule_id]
        out.append(
            StillUsing(
                user=user,
                unit=stored_unit,
                rule=rule_id,
                effective=rule.start_at,
                device=device,
                device_ref=ref,
                resources=tuple(sorted(resources - {""})),
                last_seen=_moment(at),
                days_seen=days_seen,
                exception=_exception_for(snapshot, user, rule_id, now),
            )
        )
    return out


def _moment(value: datetime | str) -> datetime:
    """A stored time (a datetime from PostgreSQL, ISO text from SQLite), aware."""
    return assume_utc(value if isinstance(value, datetime) else datetime.fromisoformat(value))


def sort_rows(rows: Iterable[StillUsing], key: str, descending: bool) -> list[StillUsing]:
    keys = {
        "user": lambda r: (r.user, r.rule),
        "device": lambda r: (r.device, r.user),
        "resources": lambda r: (r.resources, r.user),
        "last_seen": lambda r: (r.last_seen, r.user),
        "rule": lambda r: (r.rule, r.user),
        "effective": lambda r: (r.effective, r.user),
        "exception": lambda r: (r.exception.end if r.exception else 0.0, r.user),
    }
    return sorted(rows, key=keys.get(key, keys["user"]), reverse=descending)


__all__ = [
    "COLUMNS",
    "RuleProgress",
    "StillUsing",
    "UnitRow",
    "decisions_on",
    "progress",
    "report_only_hits",
    "rollout_rules",
    "sort_rows",
    "still_using",
    "window",
]
