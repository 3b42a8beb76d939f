"""Read an iOS backup as Finder, iTunes or `idevicebackup2` write it.

Layout: `Manifest.plist` (keybag, `IsEncrypted`, `Lockdown` device facts), `Info.plist`,
`Manifest.db` (SQLite, table `Files(fileID, domain, relativePath, flags, file)`) and the
files themselves at `<fileID[:2]>/<fileID>`, where fileID = SHA1("<domain>-<relativePath>").

A folder with a plaintext `Manifest.db` but no `Manifest.plist` is a backup copied in part:
it opens as unencrypted, with the device taken from `Info.plist`, and `manifest_plist` is
False so that the scan reports the gap (it can never be clean). Without `Manifest.plist`
an encrypted `Manifest.db` cannot be read at all: its keybag is in that file.

Trust nothing in it:
* a file is located only through its fileID, recomputed from domain and path and required
  to match the row before the row is used: a `relativePath` full of `../` never reaches the
  file system, and a row whose fileID disagrees is reported as an anomaly and never read;
* on opening, SQLite surveys every row (on the indexes, at C speed) for traversal-shaped
  paths, so a tampered manifest is reported even where no check would have used the row;
* the resolved location must be a regular file inside the backup folder (no symlinks);
* sizes are checked against `Limits` before anything is read into memory.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devicegate.triage import crypto
from devicegate.triage.dbfile import SQLITE_MAGIC
from devicegate.triage.errors import (
    ArtefactError,
    BackupCorruptError,
    NotABackupError,
    PasswordRequiredError,
)
from devicegate.triage.manifestdb import (
    DOMAINS,
    SUSPECT_QUERIES,
    open_manifest_db,
    problem,
)
from devicegate.triage.mbfile import decode_mbfile
from devicegate.triage.plists import as_str, as_utc, load_plist_dict
from devicegate.triage.result import DeviceInfo

PasswordSource = Callable[[], str]

FLAG_FILE = 1
MAX_ANOMALIES_KEPT = 50


@dataclass(frozen=True, slots=True)
class Limits:
    """Ceilings that turn a huge or hostile input into an error instead of an OOM."""

    manifest_db_bytes: int = 1 << 30
    file_bytes: int = 1 << 30
    plist_bytes: int = 64 << 20


@dataclass(frozen=True, slots=True)
class Entry:
    """One `Files` row that passed the integrity checks."""

    file_id: str
    domain: str
    relative_path: str
    flags: int


@dataclass(slots=True)
class Backup:
    """An opened backup. Use `open_backup`; close it (or use `with`) when done."""

    root: Path
    manifest: dict[str, Any]
    #: False when the folder has no Manifest.plist (a partial copy, read as unencrypted).
    manifest_plist: bool
    device: DeviceInfo
    encrypted_files: bool
    limits: Limits
    _db: sqlite3.Connection
    anomalies: list[str] = field(default_factory=list)
    anomaly_count: int = 0
    row_count: int = 0
    _class_keys: dict[int, bytes] = field(default_factory=dict)
    _seen: set[str] = field(default_factory=set)

    def __enter__(self) -> Backup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def note_anomaly(self, text: str) -> None:
        """Record a row that cannot be trusted (each once; only the first few kept)."""
        if text in self._seen:
            return
        self._seen.add(text)
        self.anomaly_count += 1
        if len(self.anomalies) < MAX_ANOMALIES_KEPT:
            self.anomalies.append(text)

    def _verified(self, row: tuple[object, ...]) -> Entry | None:
        file_id, domain, relative_path, flags = row
        why = problem(file_id, domain, relative_path)
        if why is not None:
            self.note_anomaly(f"{str(domain)[:80]}/{str(relative_path)[:200]}: {why}")
            return None
        assert isinstance(file_id, str) and isinstance(domain, str)
        assert isinstance(relative_path, str)
        return Entry(file_id, domain, relative_path, flags if isinstance(flags, int) else 0)

    def find(self, domain: str, relative_path: str) -> Entry | None:
        """The verified row for one file; a row failing verification counts as absent."""
        rows = self._query(
            "SELECT fileID, domain, relativePath, flags FROM Files "
            "WHERE domain = ? AND relativePath = ?",
            (domain, relative_path),
        )
        found = [entry for entry in map(self._verified, rows) if entry is not None]
        return found[0] if found else None

    def entries(self, domain: str | None = None, prefix: str | None = None) -> Iterator[Entry]:
        """Verified rows, optionally of one domain and under one path prefix."""
        for entry, _blob in self.entries_with_metadata(domain, prefix, metadata=False):
            yield entry

    def entries_with_metadata(
        self, domain: str | None = None, prefix: str | None = None, *, metadata: bool = True
    ) -> Iterator[tuple[Entry, bytes | None]]:
        """Verified rows with their MBFile blob (one query instead of one per row)."""
        blob = "file" if metadata else "NULL"
        sql = f"SELECT fileID, domain, relativePath, flags, {blob} FROM Files"
        clauses: list[str] = []
        params: list[str] = []
        if domain is not None:
            clauses.append("domain = ?")
            params.append(domain)
        if prefix is not None:
            clauses.append("substr(relativePath, 1, ?) = ?")
            params.extend([str(len(prefix)), prefix])
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        for row in self._query(sql, tuple(params)):
            entry = self._verified(row[:4])
            if entry is not None:
                yield entry, row[4] if isinstance(row[4], bytes) else None

    def named(self, name: str) -> Iterator[Entry]:
        """Verified rows whose file name (last path component) is exactly `name`."""
        # rowids first, from the relativePath index alone, then only the matching rows
        rowids = self._query(
            "SELECT rowid FROM Files WHERE substr(relativePath, -?) = ? "
            "AND (length(relativePath) = ? OR substr(relativePath, -? - 1, 1) = '/')",
            (len(name), name, len(name), len(name)),
        )
        for (rowid,) in rowids:
            row = self._query(
                "SELECT fileID, domain, relativePath, flags FROM Files WHERE rowid = ?", (rowid,)
            )[0]
            entry = self._verified(row)
            if entry is not None:
                yield entry

    def paths(self) -> Iterator[tuple[str, str]]:
        """Every (domain, relativePath) as stored, *unverified*: for matching names only.

        A bulk pass over 100k rows must not pay for verification; anything a caller
        wants to read or report goes through `find`/`entries`, which verify.
        """
        try:
            cursor = self._db.execute("SELECT domain, relativePath FROM Files")
            for domain, relative_path in cursor:
                if isinstance(domain, str) and isinstance(relative_path, str):
                    yield domain, relative_path
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            raise ArtefactError(f"Manifest.db cannot be read ({exc})") from None

    def _query(self, sql: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
        try:
            return self._db.execute(sql, params).fetchall()
        except (sqlite3.Error, UnicodeDecodeError) as exc:  # a schema name that is not UTF-8
            raise ArtefactError(f"Manifest.db cannot be read ({exc})") from None

    def metadata_blob(self, entry: Entry) -> bytes | None:
        row = self._db.execute("SELECT file FROM Files WHERE fileID = ?", (entry.file_id,))
        found = row.fetchone()
        return found[0] if found and isinstance(found[0], bytes) else None

    def read(self, entry: Entry) -> bytes:
        """The plaintext contents of one file; problems are an `ArtefactError`."""
        what = f"{entry.domain}/{entry.relative_path}"
        if problem(entry.file_id, entry.domain, entry.relative_path) is not None:
            raise ArtefactError(f"`{what[:200]}` failed verification, not read")
        if entry.flags != FLAG_FILE:
            raise ArtefactError(f"`{what}` is not a regular file in the manifest")
        path = self._locate(entry, what)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ArtefactError(f"`{what}` cannot be read ({exc.strerror})") from None
        if not self.encrypted_files:
            return data
        meta = decode_mbfile(self.metadata_blob(entry), what)
        if meta.encryption_key is None:
            raise ArtefactError(f"`{what}` has no encryption key in an encrypted backup")
        try:
            key = crypto.unwrap_file_key(self._class_keys, meta.encryption_key, what)
            return bytes(crypto.decrypt(key, data, what, size=meta.size))
        except BackupCorruptError as exc:
            raise ArtefactError(exc.message) from None

    def _locate(self, entry: Entry, what: str) -> Path:
        root = self.root.resolve()
        for candidate in (root / entry.file_id[:2] / entry.file_id, root / entry.file_id):
            try:
                info = candidate.lstat()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise ArtefactError(f"`{what}` cannot be read ({exc.strerror})") from None
            if not stat.S_ISREG(info.st_mode):
                raise ArtefactError(f"`{what}` is stored as a link or special file, not read")
            if not candidate.resolve().is_relative_to(root):
                raise ArtefactError(f"`{what}` resolves outside the backup folder, not read")
            if info.st_size > self.limits.file_bytes:
                raise ArtefactError(
                    f"`{what}` is {info.st_size} bytes, over the {self.limits.file_bytes} limit"
                )
            return candidate
        raise ArtefactError(f"`{what}` is listed in Manifest.db but its file is absent")


def _read_small(path: Path, limit: int, what: str) -> bytearray:
    """The file's bytes in a buffer of our own (the SQLite reader may patch its header)."""
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode):
            raise BackupCorruptError(f"`{what}` is not a regular file")
        if info.st_size > limit:
            raise BackupCorruptError(f"`{what}` is {info.st_size} bytes, over the {limit} limit")
        data = bytearray(info.st_size)
        with path.open("rb") as handle:
            read = handle.readinto(data)
            if read != info.st_size or handle.read(1):
                raise BackupCorruptError(f"`{what}` changed size while it was read")
        return data
    except OSError as exc:
        raise BackupCorruptError(f"`{what}` cannot be read ({exc.strerror})") from None


def _plist(path: Path, limits: Limits) -> dict[str, Any]:
    data = _read_small(path, limits.plist_bytes, path.name)
    try:
        return load_plist_dict(bytes(data), path.name)
    except ArtefactError as exc:
        raise BackupCorruptError(exc.message) from None


def device_info(manifest: dict[str, Any], info: dict[str, Any], encrypted: bool) -> DeviceInfo:
    """Device identity; Info.plist first (what Finder shows), Manifest.plist's Lockdown next."""
    lockdown = manifest.get("Lockdown")
    lock: dict[str, Any] = lockdown if isinstance(lockdown, dict) else {}

    def pick(info_key: str, lockdown_key: str) -> str | None:
        value = as_str(info.get(info_key)) or as_str(lock.get(lockdown_key))
        return value[:128] if value else None

    return DeviceInfo(
        serial=pick("Serial Number", "SerialNumber"),
        udid=pick("Unique Identifier", "UniqueDeviceID") or pick("Target Identifier", ""),
        ios_version=pick("Product Version", "ProductVersion"),
        build=pick("Build Version", "BuildVersion"),
        product_type=pick("Product Type", "ProductType"),
        device_name=pick("Device Name", "DeviceName"),
        encrypted=encrypted,
        backup_date=as_utc(info.get("Last Backup Date")) or as_utc(manifest.get("Date")),
    )


def open_backup(
    path: str | Path, *, password: PasswordSource | None = None, limits: Limits | None = None
) -> Backup:
    """Open and index a backup; whole-backup problems raise a `TriageError`."""
    limits = limits or Limits()
    root = Path(path)
    if not root.is_dir():
        raise NotABackupError(f"`{root}` is not a folder")
    if not (root / "Manifest.db").is_file():
        raise NotABackupError(
            f"`{root}` is not an iOS backup: Manifest.db is missing",
            hint="give the folder that holds Manifest.db and Manifest.plist (one per device)",
        )
    has_plist = (root / "Manifest.plist").is_file()
    manifest = _plist(root / "Manifest.plist", limits) if has_plist else {}
    info = _plist(root / "Info.plist", limits) if (root / "Info.plist").is_file() else {}
    encrypted = manifest.get("IsEncrypted") is True
    raw_db: bytes | bytearray = _read_small(
        root / "Manifest.db", limits.manifest_db_bytes, "Manifest.db"
    )
    if not has_plist and not raw_db.startswith(SQLITE_MAGIC):
        raise BackupCorruptError(
            "Manifest.db is encrypted or not an SQLite database, and Manifest.plist, which "
            "holds the backup's keybag, is missing",
            hint="copy Manifest.plist from the original backup folder",
        )
    class_keys: dict[int, bytes] = {}
    encrypted_files = encrypted and not raw_db.startswith(SQLITE_MAGIC)
    if encrypted_files:
        class_keys, raw_db = _decrypt_manifest(manifest, raw_db, password)
    wal_path = root / "Manifest.db-wal"
    wal = bytearray()
    if os.path.lexists(wal_path):  # a link is refused by _read_small, not skipped
        wal = _read_small(wal_path, limits.manifest_db_bytes, wal_path.name)
    db, wal_problem = open_manifest_db(raw_db, None if encrypted_files else wal)
    backup = Backup(
        root=root,
        manifest=manifest,
        manifest_plist=has_plist,
        device=device_info(manifest, info, encrypted),
        encrypted_files=encrypted_files,
        limits=limits,
        _db=db,
        _class_keys=class_keys,
    )
    if encrypted_files and wal:
        backup.note_anomaly(
            "Manifest.db-wal: the log of an encrypted Manifest.db is not replayed; "
            "files it lists are not seen"
        )
    if wal_problem is not None:
        backup.note_anomaly(f"{wal_problem}; files it lists may not be seen")
    _survey(backup)
    return backup


def _decrypt_manifest(
    manifest: dict[str, Any], raw_db: bytes | bytearray, password: PasswordSource | None
) -> tuple[dict[int, bytes], bytes | bytearray]:
    keybag_blob = manifest.get("BackupKeyBag")
    manifest_key = manifest.get("ManifestKey")
    if not isinstance(keybag_blob, bytes) or not isinstance(manifest_key, bytes):
        raise BackupCorruptError("Manifest.plist of an encrypted backup lacks its keybag")
    keybag = crypto.parse_keybag(keybag_blob)
    if password is None:
        raise PasswordRequiredError(
            "the backup is encrypted and no password was given",
            hint="use --password-env VAR, or run in a terminal to be prompted",
        )
    class_keys = crypto.unlock(keybag, password().encode("utf-8"))
    key = crypto.unwrap_file_key(class_keys, manifest_key, "Manifest.db")
    plain = crypto.decrypt(key, raw_db, "Manifest.db")
    if not plain.startswith(SQLITE_MAGIC):
        raise BackupCorruptError("Manifest.db does not decrypt to an SQLite database")
    return class_keys, plain


def _survey(backup: Backup) -> None:
    """Count rows and record the structurally suspect ones; SHA1 is checked on use."""
    try:
        (count,) = backup._db.execute("SELECT count(*) FROM Files").fetchone()
        rowids = {row[0] for sql in SUSPECT_QUERIES for row in backup._db.execute(sql)}
        for (domain,) in backup._db.execute(DOMAINS).fetchall():
            if not isinstance(domain, str) or "/" in domain or ".." in domain or "\x00" in domain:
                rowids.update(
                    row[0]
                    for row in backup._db.execute(
                        "SELECT rowid FROM Files WHERE domain IS ?", (domain,)
                    )
                )
        suspects = [
            backup._db.execute(
                "SELECT fileID, domain, relativePath, flags FROM Files WHERE rowid = ?", (rowid,)
            ).fetchone()
            for rowid in sorted(rowids)
        ]
    except sqlite3.Error as exc:
        backup.close()
        raise BackupCorruptError(f"Manifest.db cannot be read ({exc})") from None
    backup.row_count = int(count)
    for row in suspects:
        backup._verified(row)
    if backup.row_count == 0:
        backup.close()
        raise BackupCorruptError("Manifest.db lists no files")


def environ_password(variable: str) -> PasswordSource:
    """A password source reading one environment variable (never a command-line value)."""

    def source() -> str:
        value = os.environ.get(variable)
        if value is None:
            raise PasswordRequiredError(f"environment variable `{variable}` is not set")
        return value

    return source
