"""Who is due a notice: users whose device a rule will ban, while the rule is in notice —
or while the exception that spares them is in its last days.

Devices come from the inventory (the MDM knows whose phone is whose) and from the store's
recent sightings (a personal iPhone reading work mail is in no inventory). Each is decided
at `at` for every resource the rule covers; a `warn` from that rule means "tell them"
(docs/semantics.md rule 3 decides who is warned: no one whom the rule will not reach). A
warning from a rule that an exception lifts announces the exception's end: that notice
names the exception (`Notice.exception`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from devicegate.directory import User
from devicegate.impact import inventory_signals
from devicegate.model import Action, Decision, Request, Signals, device_label
from devicegate.policy import Snapshot, decide
from devicegate.policy.compile import device_keys
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
class ExceptionEnd:
    """The exception whose end a notice announces, as the policy states it."""

    until: str  # `until` as written: `2023-07-31`, or `2023-07-31 12:00`
    last_day: date  # the last day it still applies (local to the policy)
    reason: str
    approver: str | None


@dataclass(frozen=True, slots=True)
class Notice:
    """One message to send: this user, this rule, every device of theirs it bans.

    Why now: the rule takes force at `effective_from`, or — when `exception` is set — the
    user's exception to it ends then and the rule applies to them from that moment."""

    user: User
    address: str
    rule: str
    description: str
    devices: tuple[NoticeDevice, ...]
    effective_from: datetime
    message: str
    exception: ExceptionEnd | None = None

    @property
    def ledger_rule(self) -> str:
        """What the ledger records this notice under: the rule for a rule's start; for an
        exception's end, the rule and the end — a user told of the rule before an exception
        was granted must still be told when it ends."""
        if self.exception is None:
            return self.rule
        return f"{self.rule}@exception-until-{self.exception.until}"

    def only(self, device_ids: Iterable[str]) -> Notice:
        """The same notice naming only some of its devices (those not yet notified)."""
        keep = set(device_ids)
        return replace(self, devices=tuple(d for d in self.devices if d.device_id in keep))


def inventory_devices(snapshot: Snapshot) -> list[Device]:
    out = []
    for device in snapshot.inventory:
        if device.user:
            out.append(
                Device(
                    device.user,
                    device.device_id,
                    device_label(device.vendor, device.platform, device.model),
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
            out.append(Device(user, device_id, profile.label, signals, f"seen on {adapter}"))
    return out


def due_notices(snapshot: Snapshot, at: datetime, devices: Iterable[Device]) -> list[Notice]:
    """One notice per (user, rule, announced moment) due at `at`, naming each device warned.

    A rule is a candidate while it is in notice, or while an exception naming it is in its
    last days; `decide` then says, per device and resource, whether that rule warns."""
    ts = at.timestamp()
    candidates = {
        r.id: r
        for r in snapshot.rules
        if r.effect is not Action.ALLOW and not r.report_only and r.notice_start <= ts < r.start
    }
    for exc in snapshot.exceptions:
        if exc.active(ts):
            for rule_id, opens in exc.closing:
                if opens <= ts:
                    candidates.setdefault(rule_id, snapshot.rules_by_id[rule_id])
    found: dict[tuple[str, str, datetime], list[NoticeDevice]] = {}
    ending: dict[tuple[str, str, datetime], ExceptionEnd] = {}
    users: dict[str, User] = {}
    for device in devices:
        user = snapshot.directory.get(device.user)
        if user is None:
            continue
        for rule in candidates.values():
            if rule.scope_depth(user) is None:
                continue
            resources = sorted(rule.resources) if rule.resources else sorted(snapshot.resources)
            warned: dict[datetime, list[str]] = {}
            for resource in resources:
                d = decide(snapshot, Request(user.id, resource, at, device.signals))
                if d.action is not Action.WARN or d.rule != rule.id or d.effective_from is None:
                    continue
                warned.setdefault(d.effective_from, []).append(resource)
                key = (user.id, rule.id, d.effective_from)
                if rule.id in d.excepted and key not in ending:  # lifted, yet warns: it ends
                    announced = _ending(snapshot, user, d, rule.id)
                    if announced is not None:
                        ending[key] = announced
            for when, hits in warned.items():
                named = found.setdefault((user.id, rule.id, when), [])
                if all(n.device_id != device.device_id for n in named):
                    named.append(
                        NoticeDevice(device.device_id, device.label, device.source, tuple(hits))
                    )
                    users[user.id] = user
    notices = [
        Notice(
            user=users[uid],
            address=users[uid].email or uid,
            rule=rid,
            description=snapshot.rules_by_id[rid].description,
            devices=tuple(named),
            effective_from=when,
            message=" ".join(snapshot.rules_by_id[rid].message.split()),
            exception=ending.get((uid, rid, when)),
        )
        for (uid, rid, when), named in found.items()
        if named
    ]
    return sorted(notices, key=lambda n: (n.effective_from, n.rule, n.user.id))


def _ending(
    snapshot: Snapshot, user: User, decision: Decision, rule_id: str
) -> ExceptionEnd | None:
    """The exception whose end `decision` announces: it lifts `rule_id` for this user or for
    the decided device, and ends at the decision's `effective_from`."""
    names = {alias.lower() for alias in user.aliases()}
    profile = decision.device
    keys = device_keys(profile.keys, (profile.device_id,))
    for exc in snapshot.exceptions:
        if rule_id not in exc.rules or exc.until_at != decision.effective_from:
            continue
        if (exc.user is not None and exc.user in names) or (
            exc.device is not None and exc.matches_device(keys)
        ):
            last = exc.until_at - timedelta(days=1) if exc.whole_day else exc.until_at
            return ExceptionEnd(exc.until_text, last.date(), exc.reason, exc.approver)
    return None


def default_seen_since(at: datetime) -> datetime:
    return at - timedelta(days=30)
