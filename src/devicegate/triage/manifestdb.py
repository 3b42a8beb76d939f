"""Manifest.db checks that need no open backup: header, opening, and row verification.

Split from `backup` so the rules that decide whether a row may be trusted read on one page.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3

from devicegate.triage.dbfile import SQLITE_MAGIC, check, load, replay
from devicegate.triage.errors import ArtefactError, BackupCorruptError

_FILE_ID = re.compile(r"[0-9a-f]{40}")


def whole_by_header(raw_db: bytes | bytearray) -> bool:
    """True when the SQLite header's page count fits the data; a truncated file is corrupt.

    The header (offset 28) records the database size in pages, valid when the change
    counter (offset 24) equals the version-valid-for number (offset 92). That settles
    truncation — the usual damage — in microseconds; a full `quick_check` over 100k rows
    of blobs runs only when the header cannot tell. Damage elsewhere surfaces as an SQLite
    error when the damaged page is read, which becomes an artefact or backup error.
    """
    if len(raw_db) < 100:
        return False
    page_size = int.from_bytes(raw_db[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(raw_db[28:32], "big")
    if raw_db[24:28] != raw_db[92:96] or pages == 0 or page_size < 512:
        return False
    if len(raw_db) < page_size * pages:
        raise BackupCorruptError("Manifest.db is truncated (shorter than its header says)")
    return True


def open_manifest_db(
    raw_db: bytes | bytearray, wal: bytes | bytearray | None = None
) -> tuple[sqlite3.Connection, str | None]:
    """Manifest.db in memory, checked enough to be trusted, with its `-wal` replayed when
    given; and why that log could not be replayed in full (None when it was)."""
    if not raw_db.startswith(SQLITE_MAGIC):
        raise BackupCorruptError("Manifest.db is not an SQLite database")
    problem = None
    try:
        if wal:
            raw_db, problem = replay(raw_db, wal, "Manifest.db")
        db = load(raw_db, "Manifest.db")
    except ArtefactError as exc:
        raise BackupCorruptError(exc.message) from None
    try:
        if not whole_by_header(raw_db):
            check(db, "Manifest.db")
        db.execute("SELECT fileID, domain, relativePath, flags, file FROM Files LIMIT 1")
    except (ArtefactError, BackupCorruptError) as exc:
        db.close()
        raise BackupCorruptError(exc.message) from None
    except (sqlite3.Error, UnicodeDecodeError) as exc:  # names in the schema not UTF-8
        db.close()
        raise BackupCorruptError(f"Manifest.db has no usable `Files` table ({exc})") from None
    return db, problem


def problem(file_id: object, domain: object, relative_path: object) -> str | None:
    """Why a row cannot be trusted, or None. Cheap: runs on every row."""
    if not isinstance(domain, str) or not isinstance(relative_path, str):
        return "domain or relativePath is not text"
    if not isinstance(file_id, str) or not _FILE_ID.fullmatch(file_id):
        return f"fileID `{str(file_id)[:60]}` is not 40 hex digits"
    parts = relative_path.replace("\\", "/").split("/")
    if relative_path.startswith(("/", "\\")) or ".." in parts or "/" in domain or ".." in domain:
        return "path traversal in domain or relativePath"
    if "\x00" in relative_path or "\x00" in domain:
        return "NUL byte in domain or relativePath"
    expected = hashlib.sha1(f"{domain}-{relative_path}".encode(), usedforsecurity=False)
    if expected.hexdigest() != file_id:
        return "fileID does not match SHA1(domain-relativePath)"
    return None


#: Rows whose shape may be untrustworthy, found by SQLite (C speed): absolute paths, `..`,
#: a fileID of the wrong length; domains are few and checked in Python. One query per
#: column, so each runs on that column's index (Manifest.db indexes domain and relativePath,
#: fileID is the primary key) instead of reading 100k rows of MBFile blobs. A superset:
#: `_verified` decides in Python (a file named `a..b` is fine). Everything else (non-text
#: values, NULs, SHA1 mismatches) is caught by `_verified` when a row is used.
SUSPECT_QUERIES = (
    "SELECT rowid FROM Files WHERE instr(relativePath, '..') > 0"
    " OR substr(relativePath, 1, 1) IN ('/', '\\')",
    "SELECT rowid FROM Files WHERE length(fileID) != 40",
)
DOMAINS = "SELECT DISTINCT domain FROM Files"
