"""The result of an audit, engine-independent: small Arrow tables plus the totals.

Both engines fill an `AuditTables`; `compliance` turns it into the JSON summary and the
files in `--out`. Keeping this shape engine-neutral is what lets a test compare DuckDB
and Spark table by table.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

#: Columns of the per-unit-per-day compliance table, in order.
DAILY_COLUMNS = (
    "unit",
    "day",
    "events",
    "violations",
    "excepted",
    "warned",
    "report_only_hits",
    "users",
    "users_violating",
)
#: Columns of the devices-per-user table, in order.
DEVICE_COLUMNS = (
    "user",
    "unit",
    "device",
    "vendor",
    "platform",
    "model",
    "os_version",
    "device_id",
    "events",
    "violations",
    "warned",
    "excepted",
    "first_seen",
    "last_seen",
    "last_flagged",
)
#: Columns of the per-unit totals.
UNIT_COLUMNS = (
    "unit",
    "events",
    "violations",
    "excepted",
    "warned",
    "report_only_hits",
    "users",
    "users_violating",
)
#: Columns of the report-only table: what rules in report-only mode would have done.
REPORT_ONLY_COLUMNS = ("rule", "action", "unit", "events", "users")


@dataclass
class AuditTables:
    daily: pa.Table
    devices: pa.Table
    units: pa.Table
    report_only: pa.Table
    totals: dict[str, object]  # events, violations, excepted, report_only_hits, warned, first/last


def sort_table(table: pa.Table, keys: tuple[str, ...]) -> pa.Table:
    return table.sort_by([(k, "ascending") for k in keys])


def shape(table: pa.Table, columns: tuple[str, ...], keys: tuple[str, ...]) -> pa.Table:
    """Fixed column order and types, sorted: the form both engines are compared in."""
    table = table.select(list(columns))
    fields = [pa.field(name, _type(name)) for name in columns]
    return sort_table(table.cast(pa.schema(fields)), keys)


_TIMES = {"first_seen", "last_seen", "last_flagged"}
_TEXT = {
    "unit",
    "user",
    "device",
    "vendor",
    "platform",
    "model",
    "os_version",
    "device_id",
    "rule",
    "action",
}


def _type(name: str) -> pa.DataType:
    """Column types by name, the same whatever the engine returned."""
    if name in _TIMES:
        return pa.timestamp("us", tz="UTC")
    if name == "day":
        return pa.date32()
    if name in _TEXT:
        return pa.string()
    return pa.int64()


#: Sort keys of the devices table (every column that tells two rows apart).
DEVICE_KEYS = ("user", "device", "device_id", "vendor", "platform", "model")
