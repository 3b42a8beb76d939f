"""Devices known only from sightings: what the servers saw of devices never held or judged.

`devicegate serve` links identifiers to a device (`device_keys`) only when it holds the
device or triage records a verdict, but it records a sighting of every request that carries
device signals. So "every device the store knows" (`devices list --all`, `devices show`) is
the `devices` table *and* the devices these sightings show, identified again from their
signals — the same identification the servers ran. Sightings of one device share a stable
identifier (an ActiveSync DeviceId, a MAC); sightings without one are grouped per user and
identified profile, and are marked as having no stable identifier.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime

import sqlalchemy as sa

from devicegate.errors import SignalError
from devicegate.model import DeviceProfile, Signals, device_label
from devicegate.serialize import signals_from_json
from devicegate.store import tables as t
from devicegate.timeutil import assume_utc

Identify = Callable[[Signals], DeviceProfile]


@dataclass(frozen=True, slots=True)
class SightedDevice:
    """One device as the sightings show it (newest signals first)."""

    user: str
    keys: tuple[tuple[str, str], ...]
    vendor: str | None
    platform: str | None
    model: str | None
    adapters: tuple[str, ...]
    first_seen: datetime
    last_seen: datetime
    sightings: int
    signals: Signals  # the newest signals seen from it

    @property
    def label(self) -> str:
        return device_label(self.vendor, self.platform, self.model)


def _groups(
    conn: sa.Connection, where: sa.ColumnElement[bool] | None
) -> Iterator[tuple[str, str, str, datetime, datetime, int]]:
    """(user, adapter, signals as JSON text, first, last, count) per distinct signals: the
    text, because PostgreSQL cannot group by a `json` value."""
    text = sa.cast(t.sightings.c.signals, sa.Text)
    query = sa.select(
        t.sightings.c.user,
        t.sightings.c.adapter,
        text.label("signals"),
        sa.func.min(t.sightings.c.at),
        sa.func.max(t.sightings.c.at),
        sa.func.count(),
    ).group_by(t.sightings.c.user, t.sightings.c.adapter, text)
    for row in conn.execute(query if where is None else query.where(where)):
        yield (row[0], row[1], row[2], row[3], row[4], int(row[5]))


def sighted_devices(
    engine: sa.Engine, identify: Identify, *, users: Iterable[str] | None = None
) -> list[SightedDevice]:
    """The devices the sightings show (of `users` only, when given), newest first."""
    where = None
    if users is not None:
        where = sa.func.lower(t.sightings.c.user).in_(sorted({u.lower() for u in users}))
    found: list[SightedDevice] = []
    by_key: dict[tuple[str, ...], int] = {}
    with engine.connect() as conn:
        for user, adapter, raw, first, last, count in _groups(conn, where):
            try:
                signals = signals_from_json(json.loads(raw))
            except (ValueError, TypeError, SignalError):
                continue  # a row a newer version wrote: it says nothing here
            profile = identify(signals)
            seen = SightedDevice(
                user=user,
                keys=profile.keys,
                vendor=profile.vendor,
                platform=profile.platform,
                model=profile.model,
                adapters=(adapter,),
                first_seen=assume_utc(first),
                last_seen=assume_utc(last),
                sightings=int(count),
                signals=signals,
            )
            names = (
                [(user.lower(), *key) for key in profile.keys]
                if profile.keys
                else [(user.lower(), "", seen.label)]
            )
            index = next((by_key[n] for n in names if n in by_key), None)
            if index is None:
                index = len(found)
                found.append(seen)
            else:
                found[index] = _merge(found[index], seen)
            for name in [(user.lower(), *key) for key in found[index].keys] + names:
                by_key[name] = index
    return sorted(found, key=lambda d: d.last_seen, reverse=True)


def _merge(old: SightedDevice, new: SightedDevice) -> SightedDevice:
    """One device seen twice: the newer sighting's profile and signals, every key and
    adapter, the whole span."""
    newer, older = (new, old) if new.last_seen >= old.last_seen else (old, new)
    return replace(
        newer,
        keys=tuple(dict.fromkeys(newer.keys + older.keys)),
        vendor=newer.vendor or older.vendor,
        platform=newer.platform or older.platform,
        model=newer.model or older.model,
        adapters=tuple(sorted(set(old.adapters) | set(new.adapters))),
        first_seen=min(old.first_seen, new.first_seen),
        sightings=old.sightings + new.sightings,
    )


__all__ = ["SightedDevice", "sighted_devices"]
