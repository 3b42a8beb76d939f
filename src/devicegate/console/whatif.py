"""What-if: a candidate policy against the one in force, per unit.

Candidates come only from the configured folder (`--candidates DIR`): the page lists its
`*.yaml` files and takes a choice by name from that list, never a path from the browser.
A candidate is compiled with the same directory and inventory. Both policies then decide,
with the one engine, for every inventory device (`impact.inventory_signals`, as `impact`
does) and every device seen in the recent sightings, on each resource at the moment
chosen: what the candidate would **newly block** (allowed or warned now, blocked or
quarantined then) and **newly allow**, per unit. `impact` lists the candidate's reach per
rule beside it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from devicegate.console.units import unit_index
from devicegate.errors import DevicegateError, SignalError
from devicegate.impact import RuleImpact, impact, inventory_signals
from devicegate.model import Action, Request, Signals
from devicegate.policy import Snapshot, compile_policy, decide, load_policy
from devicegate.serialize import signals_from_json
from devicegate.store import Store
from devicegate.store import tables as t

SIGHTINGS_DAYS = 7
SIGHTINGS_MAX = 20_000
CANDIDATES_MAX = 200
LISTED_MAX = 200
REFUSED = (Action.BLOCK, Action.QUARANTINE)


def candidates(folder: Path | None) -> list[str]:
    """The candidate files' names (sorted), from the configured folder only."""
    if folder is None or not folder.is_dir():
        return []
    return sorted(p.name for p in folder.glob("*.yaml") if p.is_file())[:CANDIDATES_MAX]


def load_candidate(folder: Path, name: str, current: Snapshot) -> Snapshot:
    """Compile the candidate `name` — which must be one `candidates` lists — with the
    current directory and inventory."""
    if name not in candidates(folder):
        raise KeyError(name)
    loaded = load_policy([folder / name], directory=current.directory)
    return compile_policy(loaded, current.directory, current.inventory)


@dataclass
class UnitChange:
    unit: str
    newly_blocked: set[str] = field(default_factory=set)
    newly_allowed: set[str] = field(default_factory=set)


@dataclass
class Comparison:
    at: datetime
    units: list[UnitChange]
    rules: list[RuleImpact]
    devices: int


def _recent_signals(store: Store, since: datetime) -> list[tuple[str, Signals]]:
    """(user, signals) of the distinct devices seen since `since` (at most SIGHTINGS_MAX)."""
    s = t.sightings
    text = sa.cast(s.c.signals, sa.Text)
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(s.c.user, text)
            .where(s.c.at >= since)
            .group_by(s.c.user, text)
            .limit(SIGHTINGS_MAX)
        ).all()
    out = []
    for user, raw in rows:
        try:
            out.append((user, signals_from_json(json.loads(raw))))
        except (ValueError, TypeError, SignalError):
            continue
    return out


def _severest(snapshot: Snapshot, user: str, signals: Signals, at: datetime) -> Action:
    worst = Action.ALLOW
    for resource in sorted(snapshot.resources):
        action = decide(snapshot, Request(user, resource, at, signals)).action
        if action in REFUSED:
            return action
        if action is Action.WARN:
            worst = action
    return worst


def compare(store: Store, current: Snapshot, candidate: Snapshot, at: datetime) -> Comparison:
    index = unit_index(current)
    subjects: list[tuple[str, Signals]] = []
    for device in current.inventory:
        owner = current.directory.get(device.user) if device.user else None
        if owner is not None:
            subjects.append((owner.id, inventory_signals(device)))
    subjects += _recent_signals(store, at - timedelta(days=SIGHTINGS_DAYS))
    units: dict[str, UnitChange] = {}
    for user, signals in dict.fromkeys(subjects):
        now = _severest(current, user, signals, at)
        then = _severest(candidate, user, signals, at)
        if (now in REFUSED) == (then in REFUSED):
            continue
        found = current.directory.get(user)
        unit = index.shown(found.unit) if found else ""
        change = units.setdefault(unit, UnitChange(unit))
        (change.newly_blocked if then in REFUSED else change.newly_allowed).add(user)
    return Comparison(
        at, sorted(units.values(), key=lambda u: u.unit), impact(candidate, at), len(subjects)
    )


def run(store: Store, folder: Path, name: str, current: Snapshot, at: datetime) -> Comparison:
    """Load `name` from the folder and compare; DevicegateError when it does not load."""
    candidate = load_candidate(folder, name, current)
    return compare(store, current, candidate, at)


__all__ = ["LISTED_MAX", "Comparison", "DevicegateError", "candidates", "run"]
