"""Open SQLite artefacts from bytes, without ever writing into the evidence.

An artefact is read into memory (decrypted if need be) and deserialised into an in-memory
database, so neither the backup nor a temporary file is touched. `PRAGMA quick_check` runs
before any query: a truncated or corrupt database is an `ArtefactError`, never a partial
read that looks clean.

**Write-ahead-log headers.** iOS keeps most databases in WAL mode, and a backup copies the
main file with its header as it is (bytes 18–19 = 2), usually without the `-wal` file.
Those two bytes only tell SQLite how to journal *future* writes, but SQLite cannot open an
in-memory database in WAL mode ("unable to open database file"). `rollback_image` sets
them to 1 in the in-memory copy — the bytes in the backup are never changed — and the
database then reads exactly as SQLite reads it from disk without a log: as of its last
checkpoint.

**A real `-wal` file** is replayed (`replay`): both files are copied to a private
temporary folder, SQLite checkpoints the log into the copy, and the result is read back;
the folder is deleted at once. SQLite skips log frames that fail their checksum *without a
word*, which would let a damaged or doctored log hide rows. So the log's header is checked
here first (magic, version, page size, header checksum), SQLite's count of replayed frames
is compared with the frames in the file, and a frame of the log's current generation that
was not replayed (bad checksum, or a transaction without its commit) or a frame cut short
is returned as the reason the log was not replayed in full. What could be replayed is
still read — findings outrank gaps — and the caller reports the reason (coverage `error`,
or a backup anomaly for Manifest.db). Frames of an earlier generation (another salt) are
what SQLite leaves behind after a checkpoint, and are skipped as SQLite skips them.
"""

from __future__ import annotations

import sqlite3
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devicegate.triage.errors import ArtefactError

SQLITE_MAGIC = b"SQLite format 3\x00"
HEADER_BYTES = 100
#: Header bytes 18 and 19 (file-format write and read versions): 1 rollback, 2 WAL.
JOURNAL_BYTES = slice(18, 20)
ROLLBACK = b"\x01\x01"
JOURNAL_VERSIONS = frozenset({1, 2})

WAL_HEADER_BYTES = 32
WAL_FRAME_HEADER_BYTES = 24
#: The WAL magic; its lowest bit says whether checksums read words big-endian.
WAL_MAGICS = {0x377F0682: "<", 0x377F0683: ">"}
WAL_VERSION = 3007000


def page_size(header: bytes | bytearray) -> int:
    """The page size a database or log header states (1 means 65536); 0 when invalid."""
    size = int.from_bytes(header, "big")
    size = 65536 if size == 1 else size
    return size if 512 <= size <= 65536 and size & (size - 1) == 0 else 0


def check_header(data: bytes | bytearray, what: str) -> None:
    """Refuse what is not an SQLite database, or whose header states impossible values."""
    if not data.startswith(SQLITE_MAGIC):
        raise ArtefactError(f"`{what}` is not an SQLite database")
    if len(data) < HEADER_BYTES:
        raise ArtefactError(f"`{what}` is shorter than an SQLite header")
    if not page_size(data[16:18]):
        raise ArtefactError(f"`{what}` states an impossible page size in its header")
    write, read = data[JOURNAL_BYTES]
    if write not in JOURNAL_VERSIONS or read not in JOURNAL_VERSIONS:
        raise ArtefactError(
            f"`{what}` states file-format versions {write}/{read} in its header; SQLite "
            "writes 1 (rollback) or 2 (write-ahead log)"
        )


def rollback_image(data: bytes | bytearray) -> bytes | bytearray:
    """`data` with its header in rollback mode.

    A `bytearray` is the caller's own buffer (a file read or decrypted into memory) and is
    patched in place, so a Manifest.db of a gigabyte is not copied once more; `bytes` are
    copied when the header says WAL.
    """
    if data[JOURNAL_BYTES] == ROLLBACK:
        return data
    image = data if isinstance(data, bytearray) else bytearray(data)
    image[JOURNAL_BYTES] = ROLLBACK
    return image


@dataclass(frozen=True, slots=True)
class WalHeader:
    """The parts of a write-ahead-log header that decide which frames belong to it."""

    page_size: int
    salts: bytes


def _checksum(data: bytes, order: str) -> tuple[int, int]:
    """SQLite's WAL checksum (a Fletcher-like sum of 32-bit word pairs) from zero."""
    s1 = s2 = 0
    words = struct.unpack(f"{order}{len(data) // 4}I", data)
    for first, second in zip(words[::2], words[1::2], strict=True):
        s1 = (s1 + first + s2) & 0xFFFFFFFF
        s2 = (s2 + second + s1) & 0xFFFFFFFF
    return s1, s2


def wal_header(wal: bytes | bytearray, what: str) -> WalHeader:
    """Parse and verify the 32-byte log header; SQLite would ignore a bad one silently."""
    if len(wal) < WAL_HEADER_BYTES:
        raise ArtefactError(f"`{what}-wal` is shorter than a write-ahead-log header")
    magic, version, size = struct.unpack(">III", wal[:12])
    order = WAL_MAGICS.get(magic)
    if order is None:
        raise ArtefactError(f"`{what}-wal` is not an SQLite write-ahead log")
    if version != WAL_VERSION or size & (size - 1) or not 512 <= size <= 65536:
        raise ArtefactError(f"`{what}-wal` states an impossible version or page size")
    if _checksum(bytes(wal[:24]), order) != struct.unpack(">II", wal[24:32]):
        raise ArtefactError(f"`{what}-wal` fails its header checksum (damaged or altered)")
    return WalHeader(page_size=size, salts=bytes(wal[16:24]))


def unreplayed(wal: bytes | bytearray, header: WalHeader, replayed: int) -> str | None:
    """Why log frames after the `replayed` ones matter, or None when they are stale."""
    frame = WAL_FRAME_HEADER_BYTES + header.page_size
    whole, tail = divmod(len(wal) - WAL_HEADER_BYTES, frame)
    if replayed < whole:
        start = WAL_HEADER_BYTES + replayed * frame
        if wal[start + 8 : start + 16] == header.salts:
            frames = f"frame {whole}" if replayed + 1 == whole else f"frames {replayed + 1}–{whole}"
            return (
                f"{frames} of the write-ahead log not replayed (a damaged frame, or a "
                "transaction without its commit: cut or copied mid-write)"
            )
        return None  # an earlier generation of the log, which SQLite skips by design
    if tail:
        start = WAL_HEADER_BYTES + whole * frame
        salts = wal[start + 8 : start + 16]
        if len(salts) < len(header.salts) or salts == header.salts:
            return f"the write-ahead log ends inside frame {whole + 1} (truncated)"
    return None


def replay(
    data: bytes | bytearray, wal: bytes | bytearray, what: str
) -> tuple[bytes | bytearray, str | None]:
    """The database in `data` with the committed transactions of `wal` applied, and why
    the log could not be replayed in full (None when it was).

    Runs on private copies in a temporary folder (SQLite replays a log only from disk)
    and returns the checkpointed main file. A log that cannot be used at all leaves `data`
    as it is; a damaged one still gives what SQLite replayed before the damage. Either
    way the reason is returned, never swallowed: a frame SQLite would skip silently,
    other than a stale one, is a gap the caller must report. Only a main file that is
    not a database raises (`ArtefactError`).
    """
    check_header(data, what)
    try:
        header = wal_header(wal, what)
    except ArtefactError as exc:
        return data, f"{exc.message}; read without it"
    if header.page_size != page_size(data[16:18]):
        return data, (
            f"`{what}-wal` states {header.page_size}-byte pages, its database "
            f"{page_size(data[16:18])}-byte pages; read without it"
        )
    with tempfile.TemporaryDirectory(prefix="devicegate-triage-") as folder:
        path = Path(folder) / "artefact.sqlite"
        try:
            path.write_bytes(data)
            Path(f"{path}-wal").write_bytes(wal)
            connection = sqlite3.connect(path)
            try:
                busy, frames, copied = connection.execute("PRAGMA wal_checkpoint(FULL)").fetchone()
            finally:
                connection.close()
            if busy or frames != copied:
                return data, f"`{what}-wal` cannot be replayed in full; read without it"
            why = unreplayed(wal, header, int(frames))
            return path.read_bytes(), (f"`{what}-wal`: {why}" if why else None)
        except sqlite3.Error as exc:
            return data, f"`{what}-wal` cannot be replayed ({exc}); read without it"
        except OSError as exc:
            raise ArtefactError(f"`{what}` cannot be copied to replay its log ({exc})") from None


def _lenient_text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def load(data: bytes | bytearray, what: str) -> sqlite3.Connection:
    """An in-memory connection to the database in `data` (header checked, not the pages)."""
    check_header(data, what)
    connection = sqlite3.connect(":memory:")
    # Text that is not UTF-8 (a corrupt or forged row) reads with U+FFFD in place of the bad
    # bytes instead of raising mid-query: the row then fails verification like any other
    # bad row (Manifest.db: its fileID no longer matches) and is reported, not a crash.
    connection.text_factory = _lenient_text
    try:
        connection.deserialize(rollback_image(data))
    except sqlite3.Error as exc:
        connection.close()
        raise ArtefactError(f"`{what}` cannot be opened ({exc})") from None
    return connection


@contextmanager
def open_db(data: bytes | bytearray, what: str) -> Iterator[sqlite3.Connection]:
    """Yield a checked connection to the database in `data`; close it afterwards."""
    connection = load(data, what)
    try:
        check(connection, what)
        yield connection
    finally:
        connection.close()


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
