"""Bad input: a clear error or `inconclusive`, never a crash and never `clean`."""

from __future__ import annotations

import plistlib
from collections.abc import Callable
from pathlib import Path

import pytest

from devicegate.triage import (
    BackupCorruptError,
    Coverage,
    NotABackupError,
    ScanReport,
    TriageError,
    Verdict,
    open_backup,
)

from .builder import BASE, BackupBuilder, file_id
from .scenarios import ARTEFACT_PATHS, PASSWORD, base_builder

Scan = Callable[..., ScanReport]


def _with(tmp_path: Path, replace: str, data: bytes, *, plain: bool = False) -> Path:
    """A clean encrypted phone whose artefact `replace` holds `data` instead."""
    b = base_builder(
        tmp_path / "b", password=None if plain else PASSWORD, skip=frozenset({replace})
    )
    domain, path = ARTEFACT_PATHS[replace]
    b.add_file(domain, path, data)
    return b.write()


# ---- not a backup, corrupt manifest -----------------------------------------------------


def test_empty_folder_is_not_a_backup(tmp_path: Path, scan: Scan) -> None:
    with pytest.raises(NotABackupError, match="not an iOS backup"):
        scan(tmp_path)


def test_a_file_is_not_a_backup(tmp_path: Path, scan: Scan) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotABackupError):
        scan(tmp_path / "f")


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00" * 100, b"SQLite format 3\x00" + b"\xff" * 200, b"bplist00garbage"],
)
def test_corrupt_manifest_db(tmp_path: Path, scan: Scan, content: bytes) -> None:
    root = base_builder(tmp_path / "b").write()
    (root / "Manifest.db").write_bytes(content)
    with pytest.raises(BackupCorruptError):
        scan(root)


def test_truncated_manifest_db(tmp_path: Path, scan: Scan) -> None:
    root = base_builder(tmp_path / "b").write()
    data = (root / "Manifest.db").read_bytes()
    (root / "Manifest.db").write_bytes(data[: len(data) // 2])
    with pytest.raises(BackupCorruptError):
        scan(root)


def test_corrupt_encrypted_manifest_db(tmp_path: Path, scan: Scan) -> None:
    root = base_builder(tmp_path / "b", password=PASSWORD).write()
    data = (root / "Manifest.db").read_bytes()
    (root / "Manifest.db").write_bytes(data[:-32])
    with pytest.raises(BackupCorruptError):
        scan(root)


def test_manifest_db_without_files_table(tmp_path: Path, scan: Scan) -> None:
    import sqlite3

    root = base_builder(tmp_path / "b").write()
    (root / "Manifest.db").unlink()
    db = sqlite3.connect(root / "Manifest.db")
    db.execute("CREATE TABLE Other (x)")
    db.commit()
    db.close()
    with pytest.raises(BackupCorruptError, match="Files"):
        scan(root)


@pytest.mark.parametrize(
    "content",
    [b"not a plist", plistlib.dumps(["a", "list"]), b"<?xml version='1.0'?><plist><dict>"],
)
def test_garbage_manifest_plist(tmp_path: Path, scan: Scan, content: bytes) -> None:
    root = base_builder(tmp_path / "b").write()
    (root / "Manifest.plist").write_bytes(content)
    with pytest.raises(BackupCorruptError):
        scan(root)


def test_encrypted_flag_without_keybag(tmp_path: Path, scan: Scan) -> None:
    root = base_builder(tmp_path / "b", password=PASSWORD).write()
    manifest = plistlib.loads((root / "Manifest.plist").read_bytes())
    del manifest["BackupKeyBag"]
    (root / "Manifest.plist").write_bytes(plistlib.dumps(manifest))
    with pytest.raises(BackupCorruptError, match="keybag"):
        scan(root)


# ---- broken artefacts -------------------------------------------------------------------


@pytest.mark.parametrize("artefact", ["datausage", "sms", "history"])
def test_truncated_sqlite_artefact_is_an_error_not_clean(
    tmp_path: Path, scan: Scan, artefact: str
) -> None:
    from . import fakes

    full = {
        "datausage": fakes.datausage([("apsd", BASE)] * 300),
        "sms": fakes.sms([("friend@example.org", "hi", BASE)] * 300),
        "history": fakes.history([(f"https://example.org/{n}", BASE) for n in range(300)]),
    }[artefact]
    report = scan(_with(tmp_path, artefact, full[: len(full) // 2]))
    name = {"datausage": "datausage", "sms": "sms", "history": "safari_history"}[artefact]
    assert report.coverage[name] is Coverage.ERROR
    assert report.verdict is Verdict.INCONCLUSIVE


def _deep_binary_plist(depth: int) -> bytes:
    """A binary plist of `depth` nested one-element arrays (plistlib recurses per level)."""
    import struct

    objects = b""
    offsets = []
    for index in range(depth):
        offsets.append(8 + len(objects))
        if index == depth - 1:
            objects += b"\x10\x01"  # int 1
        else:
            objects += b"\xa1" + struct.pack(">H", index + 1)  # array of one ref
    table = b"".join(struct.pack(">L", o) for o in offsets)
    trailer = struct.pack(">6xBBQQQ", 4, 2, depth, 0, 8 + len(objects))
    return b"bplist00" + objects + table + trailer


HOSTILE_PLISTS = {
    "deep": _deep_binary_plist(5000),
    "entity": (
        b'<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><plist><dict><key>k</key>'
        b"<string>&b;</string></dict></plist>"
    ),
    "array": plistlib.dumps([1, 2, 3]),
    "bad-offsets": b"bplist00" + b"\xff" * 40,
    "wrong-type": plistlib.dumps({"netUsageBaseline": ["not", "a", "dict"]}),
    "empty": b"",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_PLISTS))
def test_hostile_plists_make_the_artefact_error(tmp_path: Path, scan: Scan, name: str) -> None:
    report = scan(_with(tmp_path, "addaily", HOSTILE_PLISTS[name]))
    assert report.coverage["osanalytics_addaily"] is Coverage.ERROR
    assert report.verdict is Verdict.INCONCLUSIVE
    note = next(a.note for a in report.artefacts if a.name == "osanalytics_addaily")
    assert "\n" not in note and "Traceback" not in note


def test_hostile_mbfile_metadata_is_an_integrity_finding(tmp_path: Path, scan: Scan) -> None:
    import sqlite3

    b = base_builder(tmp_path / "b", password=None)
    b.add_dir("MediaDomain", "Library/SMS/Attachments/0b", (1, 2, 3))
    root = b.write()
    db = sqlite3.connect(root / "Manifest.db")
    db.execute(
        "UPDATE Files SET file = ? WHERE relativePath = 'Library/SMS/Attachments/0b'",
        (
            plistlib.dumps(
                {"$top": {"root": plistlib.UID(99)}, "$objects": []}, fmt=plistlib.FMT_BINARY
            ),
        ),
    )
    db.commit()
    db.close()
    report = scan(root)
    assert any(d.kind == "backup-anomaly" for d in report.detections)
    assert report.verdict is Verdict.INCONCLUSIVE


# ---- path traversal and links -----------------------------------------------------------


def test_path_traversal_rows_are_never_read_and_never_clean(tmp_path: Path, scan: Scan) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("do not read")
    b = base_builder(tmp_path / "b", password=PASSWORD)
    evil = "../../../../../../../../" + str(outside).lstrip("/")
    b.add_row(file_id("HomeDomain", evil), "HomeDomain", evil)
    b.add_row("../../secret.txt", "HomeDomain", "Library/SMS/sms.db.evil")
    b.add_row(file_id("HomeDomain", "x"), "HomeDomain", "/etc/passwd")
    root = b.write()
    report = scan(root)
    anomalies = [d for d in report.detections if d.kind == "backup-anomaly"]
    assert len(anomalies) == 3
    assert report.verdict is Verdict.INCONCLUSIVE
    with open_backup(root, password=lambda: PASSWORD) as backup:
        assert all(".." not in e.relative_path for e in backup.entries())


def test_fileid_mismatch_redirecting_an_artefact_is_refused(tmp_path: Path, scan: Scan) -> None:
    """A row naming DataUsage but pointing at another file's blob is not trusted."""
    b = base_builder(tmp_path / "b", password=None, skip=frozenset({"datausage"}))
    other = b.add_file("HomeDomain", "Library/Other.sqlite", b"SQLite format 3\x00")
    b.add_row(other, *ARTEFACT_PATHS["datausage"])
    report = scan(b.write())
    assert report.coverage["datausage"] is Coverage.MISSING
    assert any("does not match" in d.value for d in report.detections)


def test_stored_file_that_is_a_symlink_is_not_followed(tmp_path: Path, scan: Scan) -> None:
    root = _with(tmp_path, "datausage", b"placeholder")
    fid = file_id(*ARTEFACT_PATHS["datausage"])
    stored = root / fid[:2] / fid
    target = tmp_path / "outside.sqlite"
    target.write_bytes(b"SQLite format 3\x00")
    stored.unlink()
    stored.symlink_to(target)
    report = scan(root)
    assert report.coverage["datausage"] is Coverage.ERROR
    assert report.verdict is Verdict.INCONCLUSIVE


def test_listed_but_absent_file_is_an_error(tmp_path: Path, scan: Scan) -> None:
    root = _with(tmp_path, "sms", b"x")
    fid = file_id(*ARTEFACT_PATHS["sms"])
    (root / fid[:2] / fid).unlink()
    report = scan(root)
    assert report.coverage["sms"] is Coverage.ERROR


# ---- huge files -------------------------------------------------------------------------


def test_huge_artefact_is_an_error_without_reading_it(tmp_path: Path, scan: Scan) -> None:
    root = _with(tmp_path, "sms", b"x")
    fid = file_id(*ARTEFACT_PATHS["sms"])
    with (root / fid[:2] / fid).open("r+b") as handle:
        handle.truncate(3 << 30)  # sparse: 3 GiB that occupy no disk
    report = scan(root)
    assert report.coverage["sms"] is Coverage.ERROR
    assert "limit" in next(a.note for a in report.artefacts if a.name == "sms")
    assert report.verdict is Verdict.INCONCLUSIVE


def test_huge_manifest_db_is_an_error(tmp_path: Path, scan: Scan) -> None:
    root = base_builder(tmp_path / "b").write()
    with (root / "Manifest.db").open("r+b") as handle:
        handle.truncate(3 << 30)
    with pytest.raises(BackupCorruptError, match="limit"):
        scan(root)


def test_every_error_is_a_triage_error_with_one_line(tmp_path: Path, scan: Scan) -> None:
    root = BackupBuilder(tmp_path / "empty").write()  # a manifest that lists no file
    with pytest.raises(TriageError) as caught:
        scan(root)
    assert "\n" not in caught.value.one_line()
