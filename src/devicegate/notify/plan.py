"""Who is due a notice: users whose device a rule will ban, while the rule is in notice.

Devices come from the inventory (the MDM knows whose phone is whose) and from the store's
recent sightings (a personal iPhone reading work mail is in no inventory). Each is decided
at `at` for every resource the rule covers; a `warn` from that rule means "tell them".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import sqlalchemy as sa

from devicegate.directory import User
from devicegate.impact import inventory_signals
from devicegate.model import Action, DeviceProfile, Request, Signals
from devicegate.policy import Snapshot, decide
from devicegate.serialize import signals_from_json
from devicegate.store import Store
from devicegate.store import tables as t


@dataclass(frozen=True, slots=True)
class Device:
    """A device of a user, as the inventory or a sighting knows it."""

    user: str
    device_id: str
    label: str
    signals: Signals
    source: str  # "inventory" | "seen on <adapter>"


@dataclass(frozen=True, slots=True)
class NoticeDevice:
    """A device a notice names, and the work services it will lose."""

    device_id: str
    label: str
    source: str
    resources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Notice:
    """One message to send: this user, this rule, every device of theirs it bans."""

    user: User
    address: str
    rule: str
    description: str
    devices: tuple[NoticeDevice, ...]
    effective_from: datetime
    message: str

    def only(self, device_ids: Iterable[str]) -> Notice:
        """The same notice naming only some of its devices (those not yet notified)."""
        keep = set(device_ids)
        return replace(self, devices=tuple(d for d in self.devices if d.device_id in keep))


def _label(profile: DeviceProfile, fallback: str = "unknown device") -> str:
    parts = [profile.vendor, profile.model or profile.platform]
    return " ".join(p for p in parts if p) or fallback


def inventory_devices(snapshot: Snapshot) -> list[Device]:
    out = []
    for device in snapshot.inventory:
        if device.user:
            label = " ".join(p for p in (device.vendor, device.model or device.platform) if p)
            out.append(
                Device(
                    device.user,
                    device.device_id,
                    label or "unknown device",
                    inventory_signals(device),
                    "inventory",
                )
            )
    return out


def seen_devices(store: Store, snapshot: Snapshot, *, since: datetime) -> list[Device]:
    """Distinct (user, signals) sighted since `since`, newest first (one pass over the table)."""
    query = (
        sa.select(t.sightings.c.user, t.sightings.c.adapter, t.sightings.c.signals)
        .where(t.sightings.c.at >= since)
        .order_by(t.sightings.c.at.desc())
    )
    out: list[Device] = []
    done: set[tuple[str, str]] = set()
    with store.engine.connect() as conn:
        for user, adapter, raw in conn.execute(query):
            key = json.dumps(raw, sort_keys=True)
            if (user.lower(), key) in done:
                continue
            done.add((user.lower(), key))
            try:
                signals = signals_from_json(dict(raw))
            except Exception:  # a row written by a newer version: skip, it says nothing here
                continue
            profile = snapshot.identifier.profile(signals)
            device_id = profile.device_id or "seen-" + hashlib.sha256(key.encode()).hexdigest()[:16]
            out.append(Device(user, device_id, _label(profile), signals, f"seen on {adapter}"))
    return out


def due_notices(snapshot: Snapshot, at: datetime, devices: Iterable[Device]) -> list[Notice]:
    """One notice per (user, rule) in its notice period at `at`, naming each device it warns."""
    ts = at.timestamp()
    noticing = [
        r
        for r in snapshot.rules
        if r.effect is not Action.ALLOW and not r.report_only and r.notice_start <= ts < r.start
    ]
    found: dict[tuple[str, str], list[NoticeDevice]] = {}
    users: dict[str, User] = {}
    for device in devices:
        user = snapshot.directory.get(device.user)
        if user is None:
            continue
        for rule in noticing:
            if rule.scope_depth(user) is None:
                continue
            resources = sorted(rule.resources) if rule.resources else sorted(snapshot.resources)
            hits = tuple(
                r
                for r in resources
                if (d := decide(snapshot, Request(user.id, r, at, device.signals))).action
                is Action.WARN
                and d.rule == rule.id
            )
            named = found.setdefault((user.id, rule.id), [])
            if hits and all(n.device_id != device.device_id for n in named):
                named.append(NoticeDevice(device.device_id, device.label, device.source, hits))
                users[user.id] = user
    notices = [
        Notice(
            user=users[uid],
            address=users[uid].email or uid,
            rule=rid,
            description=snapshot.rules_by_id[rid].description,
            devices=tuple(named),
            effective_from=snapshot.rules_by_id[rid].start_at,
            message=" ".join(snapshot.rules_by_id[rid].message.split()),
        )
        for (uid, rid), named in found.items()
        if named
    ]
    return sorted(notices, key=lambda n: (n.effective_from, n.rule, n.user.id))


def default_seen_since(at: datetime) -> datetime:
    return at - timedelta(days=30)
