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
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from devicegate.audit.results import DEVICE_COLUMNS

Row = dict[str, Any]

#: The columns a folded device keeps: the devices table's but those no table shows.
COLUMNS = tuple(c for c in DEVICE_COLUMNS if c not in ("os_version", "first_seen", "last_seen"))
_SUMS = ("events", "violations", "warned", "excepted")
FLAGGED = "flagged"  # the mask column: the row drew what the list is about


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


def _absorb(device: Row, row: Row) -> None:
    for key in _SUMS:
        device[key] = int(device.get(key) or 0) + int(row.get(key) or 0)
    flagged = [t for t in (device.get("last_flagged"), row.get("last_flagged")) if t is not None]
    device["last_flagged"] = max(flagged, default=None)
    device[FLAGGED] = bool(device.get(FLAGGED)) or bool(row.get(FLAGGED))
    device["also_seen_as"].append(row["device"])


def fold_devices(rows: list[Row]) -> list[Row]:
    """One row per device of each user (see the module docstring): the most precise row with
    the sums of the rows folded into it, `also_seen_as` listing their profiles; `flagged` is
    true when any of them was."""
    by_user: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_user[row["user"]].append(row)
    out: list[Row] = []
    for user_rows in by_user.values():
        if len(user_rows) == 1:
            out.append(user_rows[0] | {"also_seen_as": []})
            continue
        devices: list[Row] = []
        for row in sorted(user_rows, key=_precision, reverse=True):
            homes = [d for d in devices if _fits(row, d)]
            if len(homes) == 1:
                _absorb(homes[0], row)
            else:
                devices.append(row | {"also_seen_as": []})
        out.extend(devices)
    return out


def _rows(table: pa.Table) -> list[Row]:
    """The table as row dicts, built column by column, its times as integer microseconds
    (converting 80,000 aware timestamps to `datetime` costs 0.6 s a column; `with_times`
    converts those of the rows shown)."""
    names = table.column_names
    columns = [
        (table.column(n).cast(pa.int64()) if n == "last_flagged" else table.column(n)).to_pylist()
        for n in names
    ]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def with_times(rows: list[Row]) -> list[Row]:
    """`rows` with `last_flagged` as a datetime again (for the rows a table shows)."""
    return [
        row
        | {
            "last_flagged": datetime.fromtimestamp(row["last_flagged"] / 1_000_000, UTC)
            if row.get("last_flagged") is not None
            else None
        }
        for row in rows
    ]


def devices_of(devices: pa.Table, flagged: pa.ChunkedArray | pa.Array) -> list[Row]:
    """The folded devices that stand for a row `flagged` marks (a boolean per row of
    `devices`). Every row of those users is folded, so a device's vaguer profiles count with
    it even when only one of them was flagged. `last_flagged` is in integer microseconds
    (`with_times`)."""
    flagged = pc.fill_null(flagged, False)
    users = pc.unique(devices.filter(flagged).column("user"))
    if len(users) == 0:
        return []
    table = devices.select(list(COLUMNS)).append_column(FLAGGED, flagged)
    rows = _rows(table.filter(pc.is_in(table.column("user"), value_set=users)))
    return [d for d in fold_devices(rows) if d[FLAGGED]]


def violating_devices(devices: pa.Table) -> list[Row]:
    """The devices (not models) that drew a violation, most violations first."""
    found = devices_of(devices, pc.greater(devices.column("violations"), 0))
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


__all__ = ["by_model", "devices_of", "fold_devices", "violating_devices", "with_times"]
