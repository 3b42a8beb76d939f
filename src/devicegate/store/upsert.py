"""INSERT … ON CONFLICT DO UPDATE on SQLite and PostgreSQL: both speak it, SQLAlchemy spells it
per dialect. One helper, so rollups, heartbeats and whatever comes next say it once."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

#: (the table's current row, the row being inserted) → the value to keep
Merge = Callable[[sa.Table, Any], sa.ColumnElement[Any]]


def upsert(
    conn: sa.Connection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    keys: Sequence[str],
    merge: Mapping[str, Merge] | None = None,
) -> None:
    """Insert `rows`; a row whose `keys` exist already updates it: every other column takes
    the new value, except those in `merge`, which compute it from both."""
    if not rows:
        return
    dialect = conn.dialect.name
    insert: Any = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    excluded = insert.excluded
    values: dict[str, Any] = {column: excluded[column] for column in rows[0] if column not in keys}
    for column, how in (merge or {}).items():
        values[column] = how(table, excluded)
    statement = insert.on_conflict_do_update(index_elements=list(keys), set_=values)
    conn.execute(statement, list(rows))


def added(column: str) -> Merge:
    """The sum of the stored and the new value (counters)."""
    return lambda table, new: table.c[column] + new[column]


def later(column: str) -> Merge:
    """The later of the stored and the new value; NULL is older than any."""

    def merge(table: sa.Table, new: Any) -> sa.ColumnElement[Any]:
        old = table.c[column]
        return sa.case(
            (old.is_(None), new[column]),
            (new[column].is_(None), old),
            (new[column] > old, new[column]),
            else_=old,
        )

    return merge


__all__ = ["added", "later", "upsert"]
