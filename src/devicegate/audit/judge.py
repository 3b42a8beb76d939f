"""Judging in bulk with the online engine: distinct values in, `decide` per distinct case.

The engines (DuckDB, Spark) reduce millions of events to a few distinct things and call
back here; nothing in this module re-implements matching. What it asks of the compiled
policy goes through `devicegate.policy.bulk`, whose docstring says why each reduction is
exact:

* logged user names → `bulk.user` (the scope class, the directory user and the canonical
  name, resolved as `devicegate serve` resolves a presented name);
* raw signal tuples → `Signals` (the same value the online adapters build), identified once
  (`bulk.identify`);
* (class, resource, time segment) → the snapshot's *plan* (`bulk.plan`), then
  (plan, resource, device class) → one `decide(snapshot, Request(…))` call with a presented
  name of that class and an event time of that plan — the engine's decision is a pure
  function of (plan, device class, device state), so every event of the combination gets it.

Device state (compromise verdicts, holds) lives in the store, not in logs: the audit judges
with `NO_STATE`, i.e. what the policy alone says.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

from devicegate.audit.events import SIGNAL_COLUMNS
from devicegate.audit.formats.base import user_or_none
from devicegate.audit.formats.nginx import unescape
from devicegate.model import SEVERITY, Action, Decision, DeviceProfile, Request, Signals
from devicegate.policy import Snapshot, bulk, decide
from devicegate.timeutil import assume_utc

UNKNOWN_UNIT = "(not in directory)"
VIOLATION_ACTIONS = (Action.BLOCK.value, Action.QUARANTINE.value)


def segment_breaks_us(snapshot: Snapshot) -> list[int]:
    """The policy's time breakpoints in integer microseconds (for SQL `seg` columns).

    `bulk.segment(ts)` is the number of breaks at or before `ts`.
    """
    return [round(b * 1_000_000) for b in bulk.breaks(snapshot)]


def segment_sql(column: str, breaks_us: Sequence[int], micros: str = "epoch_us") -> str:
    """A SQL expression equal to `bulk.segment(ts)` for a timestamp column; `micros`
    names the dialect's epoch-microseconds function (DuckDB `epoch_us`, Spark
    `unix_micros`)."""
    if not breaks_us:
        return "0"
    return " + ".join(f"CAST({micros}({column}) >= {b} AS INTEGER)" for b in breaks_us)


def users_table(snapshot: Snapshot, rows: Iterable[tuple[str, bool]]) -> pa.Table:
    """(logged user, escaped) → uid, the user shown, scope class, unit, the name as
    presented (unescaped) and the canonical name sightings are matched on (`bulk.user`)."""
    raw: list[str] = []
    escaped_col: list[bool] = []
    shown: list[str] = []
    classes: list[int] = []
    units: list[str] = []
    names: list[str] = []
    canonical: list[str] = []
    for logged, escaped in sorted(rows):
        name = (user_or_none(unescape(logged)) if escaped else logged) or logged
        found = bulk.user(snapshot, name)
        user = found.user
        raw.append(logged)
        escaped_col.append(bool(escaped))
        shown.append(user.email or user.id if user is not None else name)
        classes.append(found.cls)
        units.append(user.unit if user is not None else UNKNOWN_UNIT)
        names.append(name)
        canonical.append(found.canonical)
    return pa.table(
        {
            "raw": pa.array(raw, pa.string()),
            "escaped": pa.array(escaped_col, pa.bool_()),
            "uid": pa.array(range(len(raw)), pa.int32()),
            "user": pa.array(shown, pa.string()),
            "cls": pa.array(classes, pa.int32()),
            "unit": pa.array(units, pa.string()),
            "name": pa.array(names, pa.string()),
            "ukey": pa.array(canonical, pa.string()),
        }
    )


def signals_of(values: dict[str, str | None], escaped: bool) -> Signals:
    """The `Signals` an online adapter would have built from these logged values."""
    if escaped:
        values = {k: unescape(v) if v is not None else None for k, v in values.items()}
    return Signals(**{k: v for k, v in values.items() if v is not None})


@dataclass
class SignalMap:
    """Raw signal keys mapped to distinct `Signals` (sid) and their identified devices."""

    keys: pa.Table  # sig, escaped, sid
    devices: pa.Table  # sid, device, vendor, platform, model, os_version, device_id, + signals
    signals: list[Signals]
    profiles: list[DeviceProfile]  # per sid: the device `decide` sees

    def sid(self, signals: Signals) -> int | None:
        """The sid of these signals, None when no event carried them."""
        try:
            return self.signals.index(signals)
        except ValueError:
            return None

    def identified(self) -> pa.Table:
        """(sid) of the signals that identify a device: a request with them is a sighting,
        online as here (`DeviceProfile.identified`)."""
        return pa.table(
            {"sid": pa.array([i for i, p in enumerate(self.profiles) if p.identified], pa.int32())}
        )


def signal_map(snapshot: Snapshot, rows: Iterable[Sequence[object]]) -> SignalMap:
    """`rows` are (sig, escaped, *SIGNAL_COLUMNS); equal `Signals` share one sid."""
    sid_of: dict[Signals, int] = {}
    signals: list[Signals] = []
    sig_col: list[int] = []
    esc_col: list[bool] = []
    sid_col: list[int] = []
    for row in sorted(rows, key=lambda r: (int(r[0]), bool(r[1]))):  # type: ignore[call-overload]
        sig, escaped, *values = row
        made = signals_of(dict(zip(SIGNAL_COLUMNS, values, strict=True)), bool(escaped))  # type: ignore[arg-type]
        sid = sid_of.get(made)
        if sid is None:
            sid = sid_of[made] = len(signals)
            signals.append(made)
        sig_col.append(int(sig))  # type: ignore[call-overload]
        esc_col.append(bool(escaped))
        sid_col.append(sid)
    profiles = [bulk.identify(snapshot, s) for s in signals]
    devices: dict[str, list[object]] = {
        "sid": list(range(len(signals))),
        "device": [p.label for p in profiles],
        "vendor": [p.vendor for p in profiles],
        "platform": [p.platform for p in profiles],
        "model": [p.model for p in profiles],
        "os_version": [p.os_version for p in profiles],
        "device_id": [p.device_id for p in profiles],
        "spoofing_suspected": [p.spoofing_suspected for p in profiles],
    }
    for name in SIGNAL_COLUMNS:
        devices[name] = [getattr(s, name) for s in signals]
    keys = pa.table(
        {
            "sig": pa.array(sig_col, pa.uint64()),
            "escaped": pa.array(esc_col, pa.bool_()),
            "sid": pa.array(sid_col, pa.int32()),
        }
    )
    return SignalMap(keys, pa.table(devices), signals, profiles)


def plan_table(snapshot: Snapshot, rows: Iterable[tuple[int, str, int, datetime]]) -> pa.Table:
    """(class, resource, segment, a time in it) → the snapshot's plan id.

    Many classes and segments share a plan (a unit no rule names has the same empty plan in
    every segment), so deciding per plan instead of per (class, segment) saves most calls.
    """
    cols: dict[str, list[object]] = {"cls": [], "resource": [], "seg": [], "pid": []}
    for cls, resource, seg, at in sorted(rows):
        ts = at.timestamp()
        if bulk.segment(snapshot, ts) != seg:
            raise RuntimeError(f"engine put {at.isoformat()} in segment {seg}: a bug")
        cols["cls"].append(cls)
        cols["resource"].append(resource)
        cols["seg"].append(seg)
        cols["pid"].append(bulk.plan(snapshot, cls, resource, ts))
    return pa.table(
        {
            "cls": pa.array(cols["cls"], pa.int32()),
            "resource": pa.array(cols["resource"], pa.string()),
            "seg": pa.array(cols["seg"], pa.int32()),
            "pid": pa.array(cols["pid"], pa.int32()),
        }
    )


DECISION_SCHEMA = pa.schema(
    [
        ("did", pa.int32()),
        ("pid", pa.int32()),
        ("resource", pa.string()),
        ("sid", pa.int32()),
        ("action", pa.string()),
        ("rule", pa.string()),
        ("violation", pa.bool_()),
        ("excepted", pa.string()),
        ("report_only", pa.string()),
        ("report_only_action", pa.string()),
        ("spoofing_suspected", pa.bool_()),
    ]
)


def representatives(users: pa.Table) -> dict[int, str]:
    """One presented name per scope class (any member decides identically)."""
    reps: dict[int, str] = {}
    for cls, name in zip(
        users.column("cls").to_pylist(), users.column("name").to_pylist(), strict=True
    ):
        reps.setdefault(int(cls), str(name))
    return reps


def decide_combos(
    snapshot: Snapshot,
    combos: Iterable[tuple[int, str, int, int, datetime]],
    reps: dict[int, str],
    smap: SignalMap,
) -> pa.Table:
    """One `decide` per (plan, resource, sid). Each combo carries a class of that plan and
    an event time, which `decide` turns back into the same plan."""
    keys: dict[str, list[object]] = {"did": [], "pid": [], "resource": [], "sid": []}
    described: list[tuple[object, ...]] = []
    classes = _device_classes(snapshot, smap)
    made: dict[tuple[int, str, object], tuple[object, ...]] = {}
    for did, (pid, resource, sid, cls, at) in enumerate(combos):
        when = assume_utc(at)
        if bulk.plan(snapshot, cls, resource, when.timestamp()) != pid:
            raise RuntimeError(f"engine put class {cls} at {when.isoformat()} in plan {pid}: a bug")
        key = (pid, resource, classes[sid])
        row = made.get(key)
        if row is None:
            row = made[key] = _described(
                decide(snapshot, Request(reps[cls], resource, when, smap.signals[sid]))
            )
        for name, value in zip(keys, (did, pid, resource, sid), strict=True):
            keys[name].append(value)
        described.append(row)
    cols: dict[str, list[object]] = dict(keys)
    for index, name in enumerate(DECISION_SCHEMA.names[len(keys) :]):
        cols[name] = [row[index] for row in described]
    return pa.table(cols, schema=DECISION_SCHEMA)


def _described(decision: Decision) -> tuple[object, ...]:
    """A decision as the `DECISION_SCHEMA` columns after the keys."""
    ro = decision.report_only
    return (
        decision.action.value,
        decision.rule,
        decision.action.value in VIOLATION_ACTIONS,
        ",".join(decision.excepted) or None,
        ",".join(f"{h.rule}={h.action.value}" for h in ro) or None,
        max((h.action for h in ro), key=_severity).value if ro else None,
        decision.spoofing_suspected,
    )


def _device_classes(snapshot: Snapshot, smap: SignalMap) -> list[int]:
    """The engine's device class per sid: devices the policy cannot tell apart get the
    same action, rule, exceptions and report-only hits, so one `decide` per (plan,
    resource, class) answers for all of them."""
    return [bulk.device_class(snapshot, profile) for profile in smap.profiles]


def severities(decisions: pa.Table) -> pa.Table:
    """(did, severity) of `decide_combos`' decisions: how severe each action is, the order
    in which `serve` picks the decision of an SMTP submission (`model.SEVERITY`)."""
    ranks = {action.value: rank for action, rank in SEVERITY.items()}
    return pa.table(
        {
            "did": decisions.column("did"),
            "severity": pa.array(
                [ranks[a] for a in decisions.column("action").to_pylist()], pa.int32()
            ),
        }
    )


def _severity(action: Action) -> int:
    return SEVERITY[action]
