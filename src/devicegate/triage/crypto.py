"""Encrypted iOS backups: keybag, passcode key, class keys, file keys.

Written from the published descriptions of the iOS backup format (Apple Platform Security
guide; Bédrune & Sigwald, "iPhone data protection in depth"), not from any tool's code:

* `Manifest.plist` → `BackupKeyBag` is a sequence of TLV records (4-byte tag, 4-byte
  big-endian length, value). Header tags: VERS, TYPE, UUID, HMCK, WRAP, SALT, ITER and,
  since iOS 10.2, DPWT/DPIC/DPSL. Then one group per protection class starting with UUID:
  CLAS (class number), WRAP (2 = wrapped with the passcode key), KTYP, WPKY (wrapped key).
* Passcode key: PBKDF2-HMAC-SHA256(password, DPSL, DPIC) when DPSL is present, then
  PBKDF2-HMAC-SHA1(that, SALT, ITER), 32 bytes. We decide by the presence of DPSL, not by
  parsing the iOS version as some tools do.
* Each class key is the RFC 3394 AES key unwrap of WPKY under the passcode key. A failed
  integrity check on unwrap is the only signal of a wrong password.
* `ManifestKey` = 4-byte little-endian class + wrapped key; `Manifest.db` is AES-256-CBC
  with a zero IV under the unwrapped key. Each file's MBFile `EncryptionKey` has the same
  shape, and its contents are AES-256-CBC, zero IV, PKCS#7-padded.

The AES primitive comes from pycryptodome (the `triage` extra); the key unwrap is the
short RFC 3394 §2.2.2 loop over AES-ECB so it works with every pycryptodome ≥ 3.20.
Large inputs (Manifest.db) decrypt in parallel ranges: CBC decryption allows it.
"""

from __future__ import annotations

import hashlib
import os
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import ModuleType

from devicegate.errors import ExtraMissing
from devicegate.triage.errors import BackupCorruptError, WrongPasswordError

_KW_IV = 0xA6A6A6A6A6A6A6A6
_WRAP_PASSCODE = 2


def _aes() -> ModuleType:
    try:
        from Crypto.Cipher import AES
    except ImportError:  # pragma: no cover - depends on the environment
        raise ExtraMissing("triage", "pycryptodome") from None
    return AES


@dataclass(frozen=True, slots=True)
class ClassKey:
    protection_class: int
    wrap: int
    wrapped: bytes


@dataclass(frozen=True, slots=True)
class Keybag:
    """The parsed backup keybag: header attributes and the wrapped class keys."""

    header: dict[str, bytes]
    class_keys: dict[int, ClassKey] = field(default_factory=dict)

    def integer(self, tag: str) -> int:
        value = self.header.get(tag)
        if value is None or len(value) != 4:
            raise BackupCorruptError(f"the backup keybag lacks a valid `{tag}` record")
        return int(struct.unpack(">L", value)[0])


def parse_keybag(blob: bytes) -> Keybag:
    """Split the TLV keybag. Truncated or duplicated records are a corrupt backup."""
    header: dict[str, bytes] = {}
    class_keys: dict[int, ClassKey] = {}
    current: dict[str, bytes] | None = None
    offset = 0
    while offset + 8 <= len(blob):
        tag = blob[offset : offset + 4].decode("ascii", "replace")
        (length,) = struct.unpack(">L", blob[offset + 4 : offset + 8])
        value = blob[offset + 8 : offset + 8 + length]
        if len(value) != length:
            raise BackupCorruptError("the backup keybag is truncated")
        offset += 8 + length
        if tag == "UUID":
            if "UUID" in header:  # a later UUID opens a class-key group
                current = {}
            else:
                header[tag] = value
            continue
        target = header if current is None else current
        target[tag] = value
        if current is not None and tag == "WPKY":
            clas, wrap = current.get("CLAS"), current.get("WRAP")
            if clas is None or wrap is None or len(clas) != 4 or len(wrap) != 4:
                raise BackupCorruptError("the backup keybag has a class key without CLAS/WRAP")
            number = int(struct.unpack(">L", clas)[0])
            if number in class_keys:
                raise BackupCorruptError(f"the backup keybag repeats protection class {number}")
            class_keys[number] = ClassKey(number, int(struct.unpack(">L", wrap)[0]), value)
            current = {}
    if offset != len(blob):
        raise BackupCorruptError("the backup keybag has trailing bytes")
    if not class_keys:
        raise BackupCorruptError("the backup keybag holds no class keys")
    return Keybag(header, class_keys)


def passcode_key(keybag: Keybag, password: bytes) -> bytes:
    """Derive the key that wraps the class keys (the slow step: DPIC is ~10 million)."""
    material = password
    if "DPSL" in keybag.header:
        material = hashlib.pbkdf2_hmac(
            "sha256", password, keybag.header["DPSL"], keybag.integer("DPIC"), 32
        )
    salt = keybag.header.get("SALT")
    if salt is None:
        raise BackupCorruptError("the backup keybag lacks a `SALT` record")
    return hashlib.pbkdf2_hmac("sha1", material, salt, keybag.integer("ITER"), 32)


def aes_unwrap(kek: bytes, wrapped: bytes) -> bytes | None:
    """RFC 3394 key unwrap. Returns None when the integrity check fails."""
    if len(wrapped) % 8 or len(wrapped) < 24:
        return None
    cipher = _aes().new(kek, _aes().MODE_ECB)
    blocks = [struct.unpack(">Q", wrapped[i : i + 8])[0] for i in range(0, len(wrapped), 8)]
    a, r = blocks[0], blocks[1:]
    n = len(r)
    for j in range(5, -1, -1):
        for i in range(n, 0, -1):
            b = cipher.decrypt(struct.pack(">QQ", a ^ (n * j + i), r[i - 1]))
            a, r[i - 1] = struct.unpack(">QQ", b)
    if a != _KW_IV:
        return None
    return b"".join(struct.pack(">Q", block) for block in r)


def unlock(keybag: Keybag, password: bytes) -> dict[int, bytes]:
    """Unwrap every passcode-wrapped class key; a wrong password fails the first unwrap."""
    kek = passcode_key(keybag, password)
    keys: dict[int, bytes] = {}
    for number, class_key in sorted(keybag.class_keys.items()):
        if not class_key.wrap & _WRAP_PASSCODE:
            continue  # device-bound keys cannot be used off the device; backups have none
        key = aes_unwrap(kek, class_key.wrapped)
        if key is None:
            raise WrongPasswordError(
                "the password does not unlock this backup",
                hint="check the backup password set in Finder/iTunes for this device",
            )
        keys[number] = key
    if not keys:
        raise BackupCorruptError("the backup keybag holds no passcode-wrapped class keys")
    return keys


def unwrap_file_key(class_keys: dict[int, bytes], blob: bytes, what: str) -> bytes:
    """Unwrap a `ManifestKey` or MBFile `EncryptionKey` (4-byte LE class + wrapped key)."""
    if len(blob) < 4 + 24:
        raise BackupCorruptError(f"the encryption key of `{what}` is too short")
    (number,) = struct.unpack("<L", blob[:4])
    kek = class_keys.get(int(number))
    if kek is None:
        raise BackupCorruptError(f"`{what}` uses protection class {number}, absent from the keybag")
    key = aes_unwrap(kek, blob[4:])
    if key is None:
        raise BackupCorruptError(f"the encryption key of `{what}` does not unwrap")
    return key


#: Above this size CBC decryption is split across threads (pycryptodome releases the GIL).
PARALLEL_BYTES = 8 << 20


def _cbc_into(key: bytes, data: memoryview, out: memoryview, start: int, end: int) -> None:
    """Decrypt blocks [start, end) of `data`: CBC decryption needs only the previous
    ciphertext block as IV, so disjoint ranges decrypt independently."""
    aes = _aes()
    iv = bytes(data[start - 16 : start]) if start else b"\x00" * 16
    aes.new(key, aes.MODE_CBC, iv).decrypt(data[start:end], output=out[start:end])


def decrypt(
    key: bytes, data: bytes | bytearray, what: str, *, size: int | None = None
) -> bytearray:
    """AES-256-CBC with a zero IV; strip PKCS#7 padding, or cut to the recorded size."""
    if len(data) % 16:
        raise BackupCorruptError(f"`{what}` is not a whole number of AES blocks")
    if not data:
        return bytearray()
    plain = bytearray(len(data))
    source, target = memoryview(data), memoryview(plain)
    parts = min(os.cpu_count() or 1, 4) if len(data) >= PARALLEL_BYTES else 1
    step = (len(data) // 16 // parts) * 16
    bounds = [(i * step, len(data) if i == parts - 1 else (i + 1) * step) for i in range(parts)]
    if parts == 1:
        _cbc_into(key, source, target, 0, len(data))
    else:
        with ThreadPoolExecutor(max_workers=parts) as pool:
            for future in [pool.submit(_cbc_into, key, source, target, a, b) for a, b in bounds]:
                future.result()
    source.release()
    target.release()
    if size is not None and 0 <= size <= len(plain) and len(plain) - size <= 16:
        del plain[size:]
        return plain
    pad = plain[-1]
    if 1 <= pad <= 16 and plain[-pad:] == bytes([pad]) * pad:
        del plain[-pad:]
        return plain
    raise BackupCorruptError(f"`{what}` does not decrypt to validly padded data")
