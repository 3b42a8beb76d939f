"""Devices as people count them: one row per phone, not per way a service described it.

The audit's `devices_per_user` table has a row per (user, identified profile): one iPhone
read over ActiveSync (`Apple iOS iPhone14,5`, with its DeviceId), in Safari (`Apple iOS
iPhone`), by its IMAP ID (`Apple iOS`) and by its MAC on Wi-Fi (`Apple`) is four rows. The
report folds each user's vaguer rows into the one more precise row they are consistent with
— same vendor, no other platform, a model that is the same or a family of it (`iPhone` of
`iPhone14,5`) — and keeps a row apart when it fits none, or fits two devices it cannot tell
between (two iPhones of one user). Rows with the same device id are one device whatever
model each access claimed. Unidentified rows (no vendor, no platform) never fold: they could
be any device. The CSV keeps every profile row.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from devicegate.audit.tables import DEVICE_KEYS

Row = dict[str, Any]

_SUMS = ("events", "violations", "warned", "excepted")


def _precision(row: Row) -> tuple[int, int, int]:
    """Most precise first: a device id, then how much of the profile is known, then events."""
    known = sum(1 for k in ("vendor", "platform", "model") if row.get(k))
    return (row.get("device_id") is not None, known, int(row.get("events") or 0))


def _fits(vague: Row, precise: Row) -> bool:
    """Whether `vague` may be the same device as `precise`, said less precisely. The same
    device id is the same device, whatever each access claimed it to be."""
    if vague.get("device_id") is not None:
        return bool(vague["device_id"] == precise.get("device_id"))
    if not (vague.get("vendor") or vague.get("platform")):
        return False
    for key in ("vendor", "platform"):
        if vague.get(key) is not None and vague.get(key) != precise.get(key):
            return False
    model, other = vague.get("model"), precise.get("model")
    return model is None or (other is not None and str(other).startswith(str(model)))


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max((x for x in (a, b) if x is not None), default=None)


def _key(row: Row) -> tuple[object, ...]:
    """What tells two rows of the devices table apart."""
    return tuple(row.get(k) for k in DEVICE_KEYS)


def _absorb(device: Row, row: Row) -> None:
    for key in _SUMS:
        device[key] = int(device.get(key) or 0) + int(row.get(key) or 0)
    if row.get("first_seen") is not None and (
        device.get("first_seen") is None or row["first_seen"] < device["first_seen"]
    ):
        device["first_seen"] = row["first_seen"]
    device["last_seen"] = _latest(device.get("last_seen"), row.get("last_seen"))
    device["last_flagged"] = _latest(device.get("last_flagged"), row.get("last_flagged"))
    device["also_seen_as"] = [*device["also_seen_as"], row["device"]]
    device["members"] = [*device["members"], _key(row)]


def fold_devices(rows: list[Row]) -> list[Row]:
    """One row per device of each user (see the module docstring): the most precise row with
    the sums of the rows folded into it; `also_seen_as` lists their profiles and `members`
    the keys of every row it stands for."""
    by_user: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_user[row["user"]].append(row)
    out: list[Row] = []
    for user_rows in by_user.values():
        devices: list[Row] = []
        for row in sorted(user_rows, key=_precision, reverse=True):
            homes = [d for d in devices if _fits(row, d)]
            if len(homes) == 1:
                _absorb(homes[0], row)
            else:
                devices.append({**row, "also_seen_as": [], "members": [_key(row)]})
        out.extend(devices)
    return out


def devices_of(devices: pa.Table, flagged: pa.Table) -> list[Row]:
    """The folded devices that stand for a row of `flagged` (a subset of `devices`). Every
    row of those users is folded, so a device's vaguer profiles count with it even when only
    one of them was flagged."""
    if flagged.num_rows == 0:
        return []
    wanted = {_key(row) for row in flagged.to_pylist()}
    users = pc.unique(flagged.column("user"))
    rows = devices.filter(pc.is_in(devices.column("user"), value_set=users)).to_pylist()
    return [d for d in fold_devices(rows) if wanted.intersection(d["members"])]


def violating_devices(devices: pa.Table) -> list[Row]:
    """The devices (not models) that drew a violation, most violations first."""
    flagged = devices.filter(pc.greater(devices.column("violations"), 0))
    found = [d for d in devices_of(devices, flagged) if d["violations"] > 0]
    found.sort(key=lambda d: (-d["violations"], d["user"], d["device"]))
    return found


def by_model(devices: list[Row], limit: int) -> list[Row]:
    """Violations per device model (each folded device's most precise profile), with how
    many devices and users: which models are still in use, not which phones."""
    violations: dict[str, int] = defaultdict(int)
    count: dict[str, int] = defaultdict(int)
    users: dict[str, set[str]] = defaultdict(set)
    for device in devices:
        violations[device["device"]] += int(device["violations"])
        count[device["device"]] += 1
        users[device["device"]].add(device["user"])
    ranked = sorted(violations, key=lambda m: (-violations[m], m))[:limit]
    return [
        {"model": m, "violations": violations[m], "devices": count[m], "users": len(users[m])}
        for m in ranked
    ]


__all__ = ["by_model", "devices_of", "fold_devices", "violating_devices"]
