"""Open SQLite artefacts from bytes, without ever writing into the evidence.

An artefact is read into memory (decrypted if need be) and deserialised into an in-memory
database, so neither the backup nor a temporary file is touched. Only when the backup also
carries a non-empty `-wal` file are both copied to a private temporary folder, because
SQLite can replay a write-ahead log only from disk; the folder is deleted on close.
`PRAGMA quick_check` runs before any query: a truncated or corrupt database is an
`ArtefactError`, never a partial read that looks clean.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devicegate.triage.errors import ArtefactError

SQLITE_MAGIC = b"SQLite format 3\x00"


@contextmanager
def open_db(data: bytes, what: str, *, wal: bytes | None = None) -> Iterator[sqlite3.Connection]:
    """Yield a connection to the database in `data`; close and clean up afterwards."""
    if not data.startswith(SQLITE_MAGIC):
        raise ArtefactError(f"`{what}` is not an SQLite database")
    tempdir: tempfile.TemporaryDirectory[str] | None = None
    try:
        if wal:
            tempdir = tempfile.TemporaryDirectory(prefix="devicegate-triage-")
            path = Path(tempdir.name) / "artefact.sqlite"
            path.write_bytes(data)
            Path(f"{path}-wal").write_bytes(wal)
            connection = sqlite3.connect(path)
        else:
            connection = sqlite3.connect(":memory:")
            connection.deserialize(data)
    except (sqlite3.Error, OSError) as exc:
        if tempdir is not None:
            tempdir.cleanup()
        raise ArtefactError(f"`{what}` cannot be opened ({exc})") from None
    try:
        check(connection, what)
        yield connection
    finally:
        connection.close()
        if tempdir is not None:
            tempdir.cleanup()


def check(connection: sqlite3.Connection, what: str) -> None:
    """Fail on structural corruption before any query can read half a table."""
    try:
        rows = connection.execute("PRAGMA quick_check").fetchall()
    except sqlite3.Error as exc:
        raise ArtefactError(f"`{what}` is corrupt ({exc})") from None
    if rows != [("ok",)]:
        first = str(rows[0][0]) if rows else "no answer"
        raise ArtefactError(f"`{what}` is corrupt ({first[:120]})")


def columns(connection: sqlite3.Connection, table: str) -> set[str]:
    """Column names of `table` (empty when the table does not exist)."""
    rows = connection.execute(f"PRAGMA table_info({quote_ident(table)})").fetchall()
    return {str(row[1]).lower() for row in rows}


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def query(connection: sqlite3.Connection, sql: str, what: str) -> list[tuple[object, ...]]:
    """Run `sql`; any SQLite error (missing table, malformed page) is an `ArtefactError`."""
    try:
        return connection.execute(sql).fetchall()
    except sqlite3.Error as exc:
        raise ArtefactError(f"`{what}` cannot be read ({exc})") from None
