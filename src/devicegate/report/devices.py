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
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import reduce
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from devicegate.audit.results import DEVICE_COLUMNS

Row = dict[str, Any]

#: The columns a folded device keeps: the devices table's but those no table shows.
COLUMNS = tuple(c for c in DEVICE_COLUMNS if c not in ("os_version", "first_seen", "last_seen"))
_SUMS = ("events", "violations", "warned", "excepted")
_PROFILE = ("vendor", "platform", "model")


def _given(column: pa.ChunkedArray) -> pa.Array:
    """Whether each value is there: neither null nor empty."""
    if pa.types.is_null(column.type):
        return pa.array([0] * len(column), pa.int8())
    return pc.fill_null(pc.not_equal(pc.utf8_length(column), 0), False).cast(pa.int8())


def _precision_order(table: pa.Table) -> pa.Array:
    """Row positions by user, then most precise first: a device id, then how much of the
    profile is known, then events; equal rows in table order (a stable sort)."""
    known = reduce(pc.add, (_given(table.column(k)) for k in _PROFILE))
    events = table.column("events")
    return pc.sort_indices(
        pa.table(
            {
                "user": table.column("user"),
                "id": pc.is_valid(table.column("device_id")),
                "known": known,
                "events": pc.fill_null(events, 0) if events.null_count else events,
                "row": pa.array(range(table.num_rows), pa.int64()),
            }
        ),
        [
            ("user", "ascending"),
            ("id", "descending"),
            ("known", "descending"),
            ("events", "descending"),
            ("row", "ascending"),
        ],
    )


class _Columns:
    """A table's columns as Python lists (one conversion per column, not a dict per row);
    `last_flagged` in integer microseconds (converting 80,000 aware timestamps to
    `datetime` costs 0.6 s a column; `with_times` converts those of the rows shown)."""

    def __init__(self, table: pa.Table) -> None:
        self.names = table.column_names
        self.values: dict[str, list[Any]] = {
            name: (
                table.column(name).cast(pa.int64())
                if name == "last_flagged"
                else table.column(name)
            ).to_pylist()
            for name in self.names
        }

    def fits(self, vague: int, precise: int) -> bool:
        """Whether row `vague` may be the same device as row `precise`, said less precisely.
        The same device id is the same device, whatever each access claimed it to be."""
        ids = self.values["device_id"]
        if ids[vague] is not None:
            return bool(ids[vague] == ids[precise])
        vendor, platform = self.values["vendor"], self.values["platform"]
        if not (vendor[vague] or platform[vague]):
            return False
        for column in (vendor, platform):
            if column[vague] is not None and column[vague] != column[precise]:
                return False
        model, other = self.values["model"][vague], self.values["model"][precise]
        return model is None or (other is not None and str(other).startswith(str(model)))

    def marked(self, rows: list[int], marks: Sequence[str]) -> bool:
        """Whether one of `marks` marks one of `rows`; true when no mark is named."""
        if not marks:
            return True
        return any(self.values[mark][i] for mark in marks for i in rows)

    def device(self, rows: list[int], marks: Sequence[str]) -> Row:
        """The device of `rows` (its most precise first): that row, with the sums of the
        others folded in."""
        values = self.values
        head = rows[0]
        device: Row = {name: values[name][head] for name in self.names}
        folded = rows[1:]
        device["also_seen_as"] = [values["device"][i] for i in folded]
        if not folded:
            return device
        for key in _SUMS:
            column = values[key]
            device[key] = sum(int(column[i] or 0) for i in rows)
        flagged = [t for t in (values["last_flagged"][i] for i in rows) if t is not None]
        device["last_flagged"] = max(flagged, default=None)
        for mark in marks:
            device[mark] = any(values[mark][i] for i in rows)
        return device


def fold_devices(table: pa.Table, marks: Sequence[str] = ()) -> list[Row]:
    """One row per device of each user (see the module docstring): the most precise row
    with the sums of the rows folded into it, `also_seen_as` listing their profiles (most
    precise first); each boolean column named in `marks` is true when any of its rows'
    was; when `marks` are named, only the devices one of them marks are returned.
    `last_flagged` is in integer microseconds (`with_times`)."""
    if table.num_rows == 0:
        return []
    columns = _Columns(table.take(_precision_order(table)))
    users = columns.values["user"]
    out: list[Row] = []
    start = 0
    for end in range(1, len(users) + 1):
        if end < len(users) and users[end] == users[start]:
            continue
        homes: list[list[int]] = []
        for row in range(start, end):
            fitting = [home for home in homes if columns.fits(row, home[0])]
            if len(fitting) == 1:
                fitting[0].append(row)
            else:
                homes.append([row])
        out.extend(columns.device(home, marks) for home in homes if columns.marked(home, marks))
        start = end
    return out


def devices_of(
    devices: pa.Table, marks: Mapping[str, pa.ChunkedArray | pa.Array]
) -> dict[str, list[Row]]:
    """For each mark (a boolean per row of `devices`), the folded devices that stand for a
    row it marks. Every row of a marked user is folded, so a device's vaguer profiles count
    with it even when only one of them was marked; the rows of all marked users are folded
    once, whichever marks they carry. `last_flagged` is in integer microseconds
    (`with_times`)."""
    masks = {name: pc.fill_null(mask, False) for name, mask in marks.items()}
    users = pc.unique(devices.filter(reduce(pc.or_, masks.values())).column("user"))
    if len(users) == 0:
        return {name: [] for name in masks}
    table = devices.select(list(COLUMNS))
    for name, mask in masks.items():
        table = table.append_column(name, mask)
    folded = fold_devices(
        table.filter(pc.is_in(table.column("user"), value_set=users)), list(masks)
    )
    return {name: [d for d in folded if d[name]] for name in masks}


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


__all__ = ["by_model", "devices_of", "fold_devices", "with_times"]
