"""Decision-log rows as tuples, written with one prepared multi-row statement per table.

The hot path cannot afford SQLAlchemy's per-row bind processing (≈40 µs a row measured
here, more than the decision itself), so rows are plain tuples in the tables' column order,
JSON already serialised, and the writer sends them with `exec_driver_sql` (DBAPI
`executemany`) inside one transaction. The columns are those of `devicegate.store.tables`;
a test writes through here and reads back through the store's own API.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from devicegate.store import Store
from devicegate.store import tables as t

DECISION_COLUMNS = (
    "request_id",
    "at",
    "user",
    "resource",
    "adapter",
    "action",
    "rule",
    "policy_version",
    "device_ref",
    "vendor",
    "platform",
    "detail",
)
SIGHTING_COLUMNS = (
    "at",
    "user",
    "resource",
    "adapter",
    "device_ref",
    "vendor",
    "platform",
    "signals",
)
Row = tuple[Any, ...]


def _sqlite_time(value: datetime) -> str:
    """SQLAlchemy's SQLite DateTime storage format (UTC, no offset)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class RowWriter:
    """Inserts decision and sighting tuples; durable when `write` returns."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine
        dialect = self.engine.dialect
        self.sqlite = dialect.name == "sqlite"
        self.decisions_sql = self._insert(t.decisions, DECISION_COLUMNS, dialect, "detail")
        self.sightings_sql = self._insert(t.sightings, SIGHTING_COLUMNS, dialect, "signals")

    @staticmethod
    def _insert(table: sa.Table, columns: tuple[str, ...], dialect: Any, json_col: str) -> str:
        quote = dialect.identifier_preparer.quote
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        values = [
            f"CAST({mark} AS JSON)" if c == json_col and dialect.name != "sqlite" else mark
            for c in columns
        ]
        return (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
            f"VALUES ({', '.join(values)})"
        )

    def write(self, sightings: list[Row], decisions: list[Row]) -> None:
        if self.sqlite:
            sightings = [(_sqlite_time(r[0]), *r[1:]) for r in sightings]
            decisions = [(r[0], _sqlite_time(r[1]), *r[2:]) for r in decisions]
        with self.engine.begin() as conn:
            if sightings:
                conn.exec_driver_sql(self.sightings_sql, sightings)
            if decisions:
                conn.exec_driver_sql(self.decisions_sql, decisions)
