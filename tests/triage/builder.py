"""Synthetic iOS backups, written from the documented formats (test code, not shipped).

`BackupBuilder` writes Manifest.plist, Info.plist, Status.plist, Manifest.db and the
files at `<fileID[:2]>/<fileID>`, with NSKeyedArchiver MBFile metadata. With a password it
writes an *encrypted* backup: a keybag whose class keys are RFC 3394-wrapped under the
PBKDF2 passcode key (small iteration counts so tests stay fast), Manifest.db encrypted
under ManifestKey, and every file under its own wrapped key — the encryption side of what
`devicegate.triage.crypto` decrypts, implemented independently here.

Values are reserved ones: example.org, 198.51.100.0/24, made-up serials.
"""

from __future__ import annotations

import hashlib
import os
import plistlib
import sqlite3
import struct
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from Crypto.Cipher import AES

COCOA = 978307200
BASE = datetime(2023, 6, 1, 10, 0, tzinfo=UTC)
SERIAL = "F2LXTEST0001"
UDID = "00008030-000A1B2C3D4E5F60"
DPIC = 1000
ITER = 10


def unix(when: datetime) -> int:
    return int(when.timestamp())


def cocoa(when: datetime) -> float:
    return when.timestamp() - COCOA


def aes_wrap(kek: bytes, key: bytes) -> bytes:
    """RFC 3394 §2.2.1 key wrap (the inverse of what the reader unwraps)."""
    cipher = AES.new(kek, AES.MODE_ECB)
    a = 0xA6A6A6A6A6A6A6A6
    r = [struct.unpack(">Q", key[i : i + 8])[0] for i in range(0, len(key), 8)]
    n = len(r)
    for j in range(6):
        for i in range(1, n + 1):
            b = cipher.encrypt(struct.pack(">QQ", a, r[i - 1]))
            a = struct.unpack(">Q", b[:8])[0] ^ (n * j + i)
            r[i - 1] = struct.unpack(">Q", b[8:])[0]
    return struct.pack(">Q", a) + b"".join(struct.pack(">Q", x) for x in r)


def cbc_encrypt(key: bytes, data: bytes) -> bytes:
    pad = 16 - len(data) % 16
    return AES.new(key, AES.MODE_CBC, b"\x00" * 16).encrypt(data + bytes([pad]) * pad)


def tlv(tag: str, value: bytes) -> bytes:
    return tag.encode() + struct.pack(">L", len(value)) + value


@dataclass
class Keys:
    password: str
    salt: bytes = field(default_factory=lambda: os.urandom(20))
    dpsl: bytes = field(default_factory=lambda: os.urandom(20))
    class_keys: dict[int, bytes] = field(
        default_factory=lambda: {n: os.urandom(32) for n in range(1, 12)}
    )

    def passcode_key(self) -> bytes:
        first = hashlib.pbkdf2_hmac("sha256", self.password.encode(), self.dpsl, DPIC, 32)
        return hashlib.pbkdf2_hmac("sha1", first, self.salt, ITER, 32)

    def keybag(self) -> bytes:
        kek = self.passcode_key()
        blob = b"".join(
            [
                tlv("VERS", struct.pack(">L", 4)),
                tlv("TYPE", struct.pack(">L", 1)),
                tlv("UUID", os.urandom(16)),
                tlv("HMCK", os.urandom(40)),
                tlv("WRAP", struct.pack(">L", 0)),
                tlv("SALT", self.salt),
                tlv("ITER", struct.pack(">L", ITER)),
                tlv("DPWT", struct.pack(">L", 1)),
                tlv("DPIC", struct.pack(">L", DPIC)),
                tlv("DPSL", self.dpsl),
            ]
        )
        for number, key in sorted(self.class_keys.items()):
            blob += tlv("UUID", os.urandom(16))
            blob += tlv("CLAS", struct.pack(">L", number))
            blob += tlv("WRAP", struct.pack(">L", 2))
            blob += tlv("KTYP", struct.pack(">L", 0))
            blob += tlv("WPKY", aes_wrap(kek, key))
        return blob

    def wrapped(self, protection_class: int, key: bytes) -> bytes:
        return struct.pack("<L", protection_class) + aes_wrap(
            self.class_keys[protection_class], key
        )


def mbfile(
    relative_path: str,
    *,
    size: int,
    mode: int,
    times: tuple[int, int, int],
    protection_class: int = 3,
    encryption_key: bytes | None = None,
) -> bytes:
    """An NSKeyedArchiver MBFile archive as Manifest.db stores it."""
    modified, changed, born = times
    root: dict[str, object] = {
        "$class": plistlib.UID(3),
        "LastModified": modified,
        "LastStatusChange": changed,
        "Birth": born,
        "Size": size,
        "Mode": mode,
        "InodeNumber": 4242,
        "UserID": 501,
        "GroupID": 501,
        "Flags": 0,
        "ProtectionClass": protection_class,
        "RelativePath": plistlib.UID(2),
    }
    objects: list[object] = [
        "$null",
        root,
        relative_path,
        {"$classname": "MBFile", "$classes": ["MBFile", "NSObject"]},
    ]
    if encryption_key is not None:
        root["EncryptionKey"] = plistlib.UID(4)
        objects.append({"NS.data": encryption_key, "$class": plistlib.UID(5)})
        objects.append({"$classname": "NSMutableData", "$classes": ["NSMutableData", "NSData"]})
    archive = {
        "$version": 100000,
        "$archiver": "NSKeyedArchiver",
        "$top": {"root": plistlib.UID(1)},
        "$objects": objects,
    }
    return plistlib.dumps(archive, fmt=plistlib.FMT_BINARY)


def file_id(domain: str, relative_path: str) -> str:
    return hashlib.sha1(f"{domain}-{relative_path}".encode()).hexdigest()


Statement = tuple[str, tuple[object, ...]]
#: How iOS leaves its databases in a backup: header in write-ahead-log mode (bytes 18–19
#: = 2), the log checkpointed and absent. "delete" is the rollback mode of older tools.
JOURNALS = ("wal", "delete")


def sqlite_bytes(script: str, rows: list[Statement], *, journal: str = "wal") -> bytes:
    """A database file built from a schema script and (sql, params) inserts."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "db.sqlite"
        db = sqlite3.connect(path)
        db.execute(f"PRAGMA journal_mode={JOURNALS[JOURNALS.index(journal)]}")
        db.executescript(script)
        for sql, params in rows:
            db.execute(sql, params)
        db.commit()
        db.close()  # checkpoints and removes the log; the header keeps saying WAL
        return path.read_bytes()


def with_journal(data: bytes, journal: str) -> bytes:
    """The same database with its header in `journal` mode (SQLite rewrites it)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "db.sqlite"
        path.write_bytes(data)
        db = sqlite3.connect(path)
        db.execute(f"PRAGMA journal_mode={JOURNALS[JOURNALS.index(journal)]}")
        db.close()
        return path.read_bytes()


def with_wal(data: bytes, *transactions: list[Statement]) -> tuple[bytes, bytes]:
    """The database in `data` as a main file and a `-wal` file holding `transactions`,
    each committed but none checkpointed: rows only the log has, as a live phone leaves
    them when a backup copies both files."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "db.sqlite"
        path.write_bytes(data)
        db = sqlite3.connect(path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA wal_autocheckpoint=0")
        for statements in transactions:
            for sql, params in statements:
                db.execute(sql, params)
            db.commit()
        main, wal = path.read_bytes(), Path(f"{path}-wal").read_bytes()
        db.close()
        return main, wal


class BackupBuilder:
    """Accumulates rows and files; `write()` lays the backup out in `root`."""

    def __init__(
        self,
        root: Path,
        *,
        password: str | None = None,
        ios_version: str = "16.5",
        serial: str | None = SERIAL,
        udid: str | None = UDID,
        journal: str = "wal",
    ) -> None:
        self.root = root
        self.keys = Keys(password) if password is not None else None
        self.ios_version = ios_version
        self.serial = serial
        self.udid = udid
        self.journal = journal
        self.rows: list[tuple[str, str, str, int, bytes]] = []
        #: Rows written only to Manifest.db-wal (committed, not checkpointed).
        self.wal_rows: list[tuple[str, str, str, int, bytes]] = []
        self.manifest_extra: dict[str, object] = {}

    def add_file(
        self,
        domain: str,
        relative_path: str,
        data: bytes,
        *,
        when: datetime = BASE,
        times: tuple[int, int, int] | None = None,
        in_manifest_wal: bool = False,
    ) -> str:
        fid = file_id(domain, relative_path)
        stamp = times or (unix(when),) * 3
        key_blob = None
        stored = data
        if self.keys is not None:
            key = os.urandom(32)
            key_blob = self.keys.wrapped(3, key)
            stored = cbc_encrypt(key, data)
        meta = mbfile(
            relative_path, size=len(data), mode=0o100644, times=stamp, encryption_key=key_blob
        )
        (self.wal_rows if in_manifest_wal else self.rows).append(
            (fid, domain, relative_path, 1, meta)
        )
        folder = self.root / fid[:2]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / fid).write_bytes(stored)
        return fid

    def add_dir(self, domain: str, relative_path: str, times: tuple[int, int, int]) -> None:
        meta = mbfile(relative_path, size=0, mode=0o40755, times=times)
        self.rows.append((file_id(domain, relative_path), domain, relative_path, 2, meta))

    def add_row(self, fid: str, domain: str, relative_path: str, flags: int = 1) -> None:
        """A raw row, for hostile manifests (no file written, fileID taken as given)."""
        meta = mbfile(relative_path, size=1, mode=0o100644, times=(unix(BASE),) * 3)
        self.rows.append((fid, domain, relative_path, flags, meta))

    def add_raw_row(self, domain: str, relative_path: str) -> None:
        """A consistent row whose file is not written (bulk rows for benchmarks)."""
        self.add_row(file_id(domain, relative_path), domain, relative_path)

    def write(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        insert = "INSERT OR REPLACE INTO Files VALUES (?,?,?,?,?)"
        db = sqlite_bytes(
            "CREATE TABLE Files (fileID TEXT PRIMARY KEY, domain TEXT, relativePath TEXT, "
            "flags INTEGER, file BLOB);"
            "CREATE INDEX FilesDomainIdx ON Files(domain);"
            "CREATE INDEX FilesRelativePathIdx ON Files(relativePath);"
            "CREATE TABLE Properties (key TEXT PRIMARY KEY, value BLOB);",
            [(insert, row) for row in self.rows],
            journal=self.journal,
        )
        if self.wal_rows:
            db, wal = with_wal(db, [(insert, row) for row in self.wal_rows])
            (self.root / "Manifest.db-wal").write_bytes(wal)
        lockdown: dict[str, object] = {
            "ProductVersion": self.ios_version,
            "BuildVersion": "20F66",
            "ProductType": "iPhone14,2",
            "DeviceName": "Test iPhone",
        }
        if self.serial:
            lockdown["SerialNumber"] = self.serial
        if self.udid:
            lockdown["UniqueDeviceID"] = self.udid
        manifest: dict[str, object] = {
            "Version": "10.0",
            "Date": BASE.replace(tzinfo=None) + timedelta(days=30),
            "IsEncrypted": self.keys is not None,
            "WasPasscodeSet": True,
            "Lockdown": lockdown,
            "Applications": {},
        }
        if self.keys is not None:
            manifest_key = os.urandom(32)
            manifest["BackupKeyBag"] = self.keys.keybag()
            manifest["ManifestKey"] = self.keys.wrapped(4, manifest_key)
            db = cbc_encrypt(manifest_key, db)
        manifest.update(self.manifest_extra)
        (self.root / "Manifest.db").write_bytes(db)
        (self.root / "Manifest.plist").write_bytes(
            plistlib.dumps(manifest, fmt=plistlib.FMT_BINARY)
        )
        info: dict[str, object] = {
            "Product Version": self.ios_version,
            "Build Version": "20F66",
            "Product Type": "iPhone14,2",
            "Device Name": "Test iPhone",
            "Last Backup Date": BASE.replace(tzinfo=None) + timedelta(days=30),
        }
        if self.serial:
            info["Serial Number"] = self.serial
        if self.udid:
            info["Unique Identifier"] = self.udid
        (self.root / "Info.plist").write_bytes(plistlib.dumps(info))
        (self.root / "Status.plist").write_bytes(
            plistlib.dumps({"IsFullBackup": False, "Version": "3.3", "BackupState": "new"})
        )
        return self.root
