"""Keybag, key derivation, RFC 3394 unwrap and decryption, independent of any backup."""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from devicegate.triage import (
    BackupCorruptError,
    PasswordRequiredError,
    WrongPasswordError,
    open_backup,
)
from devicegate.triage.crypto import (
    aes_unwrap,
    decrypt,
    parse_keybag,
    passcode_key,
    unlock,
    unwrap_file_key,
)
from tests.conftest import require

from .builder import Keys, aes_wrap, cbc_encrypt, tlv
from .scenarios import PASSWORD

# RFC 3394 §4.6: 256 bits of key data with a 256-bit KEK.
KEK = bytes(range(32))
KEY_DATA = bytes.fromhex("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F")
WRAPPED = bytes.fromhex(
    "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"
)


def test_rfc3394_vector() -> None:
    assert aes_unwrap(KEK, WRAPPED) == KEY_DATA
    assert aes_wrap(KEK, KEY_DATA) == WRAPPED


def test_unwrap_integrity_failure_is_none() -> None:
    assert aes_unwrap(bytes(32), WRAPPED) is None
    assert aes_unwrap(KEK, WRAPPED[:-1]) is None
    assert aes_unwrap(KEK, b"") is None


def test_passcode_key_uses_both_pbkdf2_rounds() -> None:
    keys = Keys("secret")
    keybag = parse_keybag(keys.keybag())
    assert passcode_key(keybag, b"secret") == keys.passcode_key()


def test_legacy_keybag_without_dpsl_uses_sha1_only() -> None:
    salt = os.urandom(20)
    kek = hashlib.pbkdf2_hmac("sha1", b"old", salt, 5, 32)
    class_key = os.urandom(32)
    blob = b"".join(
        [
            tlv("VERS", struct.pack(">L", 3)),
            tlv("UUID", os.urandom(16)),
            tlv("SALT", salt),
            tlv("ITER", struct.pack(">L", 5)),
            tlv("UUID", os.urandom(16)),
            tlv("CLAS", struct.pack(">L", 3)),
            tlv("WRAP", struct.pack(">L", 2)),
            tlv("WPKY", aes_wrap(kek, class_key)),
        ]
    )
    assert unlock(parse_keybag(blob), b"old") == {3: class_key}


def test_wrong_password_is_a_clear_error() -> None:
    keybag = parse_keybag(Keys("right").keybag())
    with pytest.raises(WrongPasswordError, match="does not unlock"):
        unlock(keybag, b"wrong")


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        tlv("VERS", b"\x00\x00\x00\x04")[:-2],
        tlv("UUID", os.urandom(16)) + tlv("UUID", os.urandom(16)) + tlv("WPKY", os.urandom(40)),
        tlv("VERS", b"\x00\x00\x00\x04") + b"junk",
    ],
)
def test_malformed_keybags_are_corrupt(blob: bytes) -> None:
    with pytest.raises(BackupCorruptError):
        parse_keybag(blob)


def test_file_key_and_decrypt_round_trip() -> None:
    keys = Keys("pw")
    class_keys = unlock(parse_keybag(keys.keybag()), b"pw")
    key = os.urandom(32)
    blob = keys.wrapped(3, key)
    assert unwrap_file_key(class_keys, blob, "x") == key
    plain = b"hello, backup" * 7
    assert decrypt(key, cbc_encrypt(key, plain), "x") == plain
    assert decrypt(key, cbc_encrypt(key, plain), "x", size=len(plain)) == plain
    with pytest.raises(BackupCorruptError):
        unwrap_file_key(class_keys, struct.pack("<L", 99) + blob[4:], "x")
    with pytest.raises(BackupCorruptError):
        decrypt(key, b"short", "x")


def test_encrypted_backup_opens_with_the_password(make: Callable[[str], Path]) -> None:
    root = make("clean")
    with open_backup(root, password=lambda: PASSWORD) as backup:
        entry = backup.find("HomeDomain", "Library/SMS/sms.db")
        assert entry is not None
        assert backup.read(entry).startswith(b"SQLite format 3\x00")
    assert not (root / "Manifest.db").read_bytes().startswith(b"SQLite")


def test_encrypted_backup_wrong_password(make: Callable[[str], Path]) -> None:
    with pytest.raises(WrongPasswordError):
        open_backup(make("clean"), password=lambda: "not the password")


def test_encrypted_backup_without_password(make: Callable[[str], Path]) -> None:
    with pytest.raises(PasswordRequiredError):
        open_backup(make("clean"), password=None)


def test_triangle_check_reads_our_synthetic_encryption(make: Callable[[str], Path]) -> None:
    """Kaspersky's independent implementation decrypts what our builder writes."""
    try:
        import triangle_check
    except ImportError:
        require(False, "triangle_check not installed (the test extra installs it)")
    found = triangle_check.IOSBackupChecker().scan_dir(
        str(make("triangulation")), PASSWORD.encode(), lambda: None
    )
    assert any(item[0] == "exact" for items in found.values() for item in items)
