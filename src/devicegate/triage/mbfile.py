"""MBFile metadata: the NSKeyedArchiver blob in each `Manifest.db` row.

The `file` column of `Files` is a binary plist written by NSKeyedArchiver: `$top.root` is a
UID pointing into `$objects`, whose entry is the MBFile dictionary — `Size`, `Mode`,
`LastModified`, `LastStatusChange`, `Birth` (Unix seconds), `ProtectionClass`, and for
encrypted backups `EncryptionKey`, a UID to an NSData dictionary whose `NS.data` is the
wrapped per-file key. We follow the UIDs instead of assuming index 1, and check the type of
every value: the blob is attacker-controllable input like everything else in a backup.
"""

from __future__ import annotations

import plistlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from devicegate.triage.errors import ArtefactError
from devicegate.triage.plists import load_plist_dict
from devicegate.triage.timeconv import from_unix


@dataclass(frozen=True, slots=True)
class MBFile:
    size: int | None
    mode: int | None
    protection_class: int | None
    encryption_key: bytes | None
    last_modified: datetime | None
    last_status_change: datetime | None
    birth: datetime | None


def _deref(objects: list[Any], value: object, what: str) -> Any:
    if isinstance(value, plistlib.UID):
        if not 0 <= value.data < len(objects):
            raise ArtefactError(f"MBFile metadata of `{what}` points outside its object table")
        return objects[value.data]
    return value


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


_TIME_KEYS = (b"LastModified", b"LastStatusChange", b"Birth")


class _Bplist:
    """Just enough of the binary plist format to pull three integers out of an MBFile.

    plistlib builds every object of the archive (~45 per row) in pure Python; the
    Triangulation heuristic needs only the root's three timestamps, for thousands of SMS
    attachment rows. Every read is bounds-checked and anything unexpected returns None,
    whereupon the caller uses the full plistlib decode: this is a fast path, never a
    second opinion (a property test pins that both agree).
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        if len(data) < 40 or not data.startswith(b"bplist00"):
            raise ValueError
        tail = data[-32:]
        self.offset_size, self.ref_size = tail[6], tail[7]
        self.count = int.from_bytes(tail[8:16], "big")
        self.top = int.from_bytes(tail[16:24], "big")
        self.table = int.from_bytes(tail[24:32], "big")
        if not (1 <= self.offset_size <= 8 and 1 <= self.ref_size <= 8):
            raise ValueError
        if self.table + self.count * self.offset_size > len(data) - 32:
            raise ValueError

    def _offset(self, ref: int) -> int:
        if not 0 <= ref < self.count:
            raise ValueError
        start = self.table + ref * self.offset_size
        offset = int.from_bytes(self.data[start : start + self.offset_size], "big")
        if not 8 <= offset < self.table:
            raise ValueError
        return offset

    def _length(self, offset: int) -> tuple[int, int]:
        """(length, position of the payload) of the container or string at `offset`."""
        low = self.data[offset] & 0x0F
        if low != 0x0F:
            return low, offset + 1
        marker = self.data[offset + 1]
        if marker & 0xF0 != 0x10:
            raise ValueError
        size = 1 << (marker & 0x0F)
        return int.from_bytes(self.data[offset + 2 : offset + 2 + size], "big"), offset + 2 + size

    def _refs(self, position: int, n: int) -> list[int]:
        size = self.ref_size
        if position + n * size > self.table:
            raise ValueError
        raw = self.data[position : position + n * size]
        return [int.from_bytes(raw[i : i + size], "big") for i in range(0, n * size, size)]

    def dict_at(self, ref: int) -> dict[bytes, int]:
        offset = self._offset(ref)
        if self.data[offset] & 0xF0 != 0xD0:
            raise ValueError
        n, position = self._length(offset)
        refs = self._refs(position, 2 * n)
        return {self.ascii(k): v for k, v in zip(refs[:n], refs[n:], strict=True)}

    def ascii(self, ref: int) -> bytes:
        offset = self._offset(ref)
        if self.data[offset] & 0xF0 != 0x50:
            raise ValueError
        n, position = self._length(offset)
        if position + n > self.table:
            raise ValueError
        return self.data[position : position + n]

    def array_at(self, ref: int) -> list[int]:
        offset = self._offset(ref)
        if self.data[offset] & 0xF0 != 0xA0:
            raise ValueError
        n, position = self._length(offset)
        return self._refs(position, n)

    def uid_at(self, ref: int) -> int:
        offset = self._offset(ref)
        marker = self.data[offset]
        if marker & 0xF0 != 0x80:
            raise ValueError
        size = (marker & 0x0F) + 1
        return int.from_bytes(self.data[offset + 1 : offset + 1 + size], "big")

    def int_at(self, ref: int) -> int:
        offset = self._offset(ref)
        marker = self.data[offset]
        if marker & 0xF0 != 0x10 or marker & 0x0F > 3:
            raise ValueError  # not a plain integer: leave it to plistlib
        size = 1 << (marker & 0x0F)
        raw = self.data[offset + 1 : offset + 1 + size]
        return int.from_bytes(raw, "big", signed=size == 8)


def fast_times(blob: bytes) -> tuple[datetime | None, datetime | None, datetime | None] | None:
    """(LastModified, LastStatusChange, Birth) of an MBFile blob, or None if not simple."""
    try:
        plist = _Bplist(blob)
        archive = plist.dict_at(plist.top)
        top = plist.dict_at(archive[b"$top"])
        objects = plist.array_at(archive[b"$objects"])
        index = plist.uid_at(top[b"root"])
        if not 0 <= index < len(objects):
            return None
        root = plist.dict_at(objects[index])
        values = [plist.int_at(root[key]) if key in root else None for key in _TIME_KEYS]
    except (ValueError, KeyError, IndexError):
        return None
    first, second, third = (from_unix(v) for v in values)
    return first, second, third


def decode_mbfile(blob: object, what: str) -> MBFile:
    """Decode one `file` column value; malformed metadata is an `ArtefactError`."""
    if not isinstance(blob, bytes):
        raise ArtefactError(f"`{what}` has no MBFile metadata")
    archive = load_plist_dict(blob, f"MBFile metadata of {what}")
    objects = archive.get("$objects")
    top = archive.get("$top")
    if not isinstance(objects, list) or not isinstance(top, dict):
        raise ArtefactError(f"MBFile metadata of `{what}` is not an NSKeyedArchiver archive")
    root = _deref(objects, top.get("root"), what)
    if not isinstance(root, dict):
        raise ArtefactError(f"MBFile metadata of `{what}` has no root dictionary")
    key_blob: bytes | None = None
    key_ref = root.get("EncryptionKey")
    if key_ref is not None:
        key_obj = _deref(objects, key_ref, what)
        data = key_obj.get("NS.data") if isinstance(key_obj, dict) else key_obj
        if not isinstance(data, bytes):
            raise ArtefactError(f"MBFile metadata of `{what}` has a malformed EncryptionKey")
        key_blob = data
    return MBFile(
        size=_int(root.get("Size")),
        mode=_int(root.get("Mode")),
        protection_class=_int(root.get("ProtectionClass")),
        encryption_key=key_blob,
        last_modified=from_unix(root.get("LastModified")),
        last_status_change=from_unix(root.get("LastStatusChange")),
        birth=from_unix(root.get("Birth")),
    )
