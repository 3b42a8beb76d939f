"""Databases as iOS leaves them in a backup: a write-ahead-log header, with or without the log.

Every SQLite artefact devicegate reads (Manifest.db, DataUsage.sqlite, Safari History.db,
sms.db) is triaged from a WAL-header file without a `-wal`, and from one whose `-wal` holds
rows the main file lacks. A damaged or doctored log — truncated, a frame or its header
altered, a transaction without its commit, a header that lies — gives coverage `error`
(never `clean`) and still reports what could be read. The plist artefacts have no log.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from devicegate.triage import (
    BackupCorruptError,
    Coverage,
    ScanReport,
    Verdict,
    load_indicators,
    open_backup,
    scan_backup,
)
from devicegate.triage.artefacts import Options

from . import fakes
from .builder import BASE, COCOA, Statement, with_wal
from .scenarios import ARTEFACT_PATHS, PASSWORD, base_builder

Scan = Callable[..., ScanReport]
LATER = BASE + timedelta(days=1)
ATTACKER = "NonBaguette@yahoo.com"  # Triangulation's sender (bundled indicator set)
BAD_HOST = "https://cdn.backuprabbit.com/x"  # Triangulation's C2 (bundled indicator set)
PAGE = 4096
FRAME = 24 + PAGE


def kinds(report: ScanReport) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for d in report.detections:
        found.setdefault(d.kind, set()).add(d.source)
    return found


def note(report: ScanReport, artefact: str) -> str:
    return next(a.note for a in report.artefacts if a.name == artefact)


# ---- a WAL header without its log: every kind --------------------------------------------


@pytest.mark.parametrize("password", [PASSWORD, None], ids=["encrypted", "unencrypted"])
@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_every_sqlite_artefact_is_read_in_either_journal_mode(
    tmp_path: Path, scan: Scan, password: str | None, journal: str
) -> None:
    b = base_builder(
        tmp_path / "b",
        password=password,
        journal=journal,
        processes=[("BackupAgent", LATER)],
        history=fakes.history([(BAD_HOST, LATER)]),
        sms=fakes.sms([(ATTACKER, "", LATER)]),
    )
    b.add_file("RootDomain", "Library/LaunchDaemons/roleaccountd.plist", b"<plist/>")
    root = b.write()
    header = b"\x02\x02" if journal == "wal" else b"\x01\x01"
    with open_backup(root, password=lambda: PASSWORD) as backup:
        for name in ("datausage", "history", "sms"):
            entry = backup.find(*ARTEFACT_PATHS[name])
            assert entry is not None and backup.read(entry)[18:20] == header, name
    if password is None:
        assert (root / "Manifest.db").read_bytes()[18:20] == header
    report = scan(root)
    for artefact in ("manifest", "datausage", "safari_history", "sms"):
        assert report.coverage[artefact] is Coverage.PARSED, note(report, artefact)
    found = kinds(report)
    assert found["triangulation-exact"] >= {"datausage"}
    assert found["domain-indicator"] == {"safari_history"}
    assert found["email-indicator"] == {"sms"}
    assert found["file-indicator"] == {"manifest"}
    assert report.verdict is Verdict.COMPROMISED


def test_a_clean_wal_header_backup_is_clean(tmp_path: Path, scan: Scan) -> None:
    root = base_builder(tmp_path / "b", password=PASSWORD, journal="wal").write()
    report = scan(root)
    assert report.verdict is Verdict.CLEAN, report.reasons


# ---- a real -wal file with rows the main file lacks --------------------------------------

LOG_ONLY: dict[str, tuple[str, bytes, list[Statement], str, str]] = {
    # artefact key: (coverage key, main file, rows only in the log, detection kind, source)
    "datausage": (
        "datausage",
        fakes.datausage([("apsd", BASE)]),
        [
            (
                "INSERT INTO ZPROCESS (Z_PK, ZFIRSTTIMESTAMP, ZTIMESTAMP, ZPROCNAME) "
                "VALUES (9, ?, ?, 'BackupAgent')",
                (LATER.timestamp() - COCOA, LATER.timestamp() - COCOA),
            )
        ],
        "triangulation-exact",
        "datausage",
    ),
    "sms": (
        "sms",
        fakes.sms([("friend@example.org", "hi", BASE)]),
        [
            ("INSERT INTO handle (ROWID, id, service) VALUES (9, ?, 'iMessage')", (ATTACKER,)),
            (
                "INSERT INTO message (guid, handle_id, service, date) "
                "VALUES ('g9', 9, 'iMessage', ?)",
                (int((LATER.timestamp() - COCOA) * 1e9),),
            ),
        ],
        "email-indicator",
        "sms",
    ),
    "history": (
        "safari_history",
        fakes.history([("https://www.example.org/", BASE)]),
        [
            ("INSERT INTO history_items (id, url, visit_count) VALUES (9, ?, 1)", (BAD_HOST,)),
            (
                "INSERT INTO history_visits (history_item, visit_time) VALUES (9, ?)",
                (LATER.timestamp() - COCOA,),
            ),
        ],
        "domain-indicator",
        "safari_history",
    ),
}


@pytest.mark.parametrize("with_log", [True, False], ids=["with-wal", "main-only"])
@pytest.mark.parametrize("artefact", sorted(LOG_ONLY))
def test_rows_only_in_the_write_ahead_log_are_read(
    tmp_path: Path, scan: Scan, artefact: str, with_log: bool
) -> None:
    name, main_db, statements, kind, source = LOG_ONLY[artefact]
    main, wal = with_wal(main_db, statements)
    assert main[18:20] == b"\x02\x02" and len(wal) > 32
    b = base_builder(tmp_path / "b", password=PASSWORD, skip=frozenset({artefact}))
    domain, path = ARTEFACT_PATHS[artefact]
    b.add_file(domain, path, main)
    if with_log:
        b.add_file(domain, path + "-wal", wal)
    report = scan(b.write())
    assert report.coverage[name] is Coverage.PARSED, note(report, name)
    # the row lives only in the log: found with it, absent without it
    assert (source in kinds(report).get(kind, set())) is with_log


def test_manifest_db_rows_only_in_its_log_are_read(tmp_path: Path, scan: Scan) -> None:
    b = base_builder(tmp_path / "b")
    b.add_file(
        "RootDomain", "Library/LaunchDaemons/roleaccountd.plist", b"<plist/>", in_manifest_wal=True
    )
    root = b.write()
    assert (root / "Manifest.db-wal").stat().st_size > 32
    report = scan(root)
    assert kinds(report)["file-indicator"] == {"manifest"}
    assert report.verdict is Verdict.COMPROMISED
    assert (root / "Manifest.db-wal").stat().st_size > 32  # the evidence is not checkpointed


def test_an_encrypted_manifest_db_log_is_reported_not_replayed(tmp_path: Path, scan: Scan) -> None:
    b = base_builder(tmp_path / "b", password=PASSWORD)
    b.add_file("HomeDomain", "Library/Preferences/other.plist", b"<plist/>", in_manifest_wal=True)
    report = scan(b.write())
    assert any("Manifest.db-wal" in d.value for d in report.detections)
    assert report.verdict is Verdict.INCONCLUSIVE


def test_the_backup_is_never_written(tmp_path: Path, scan: Scan) -> None:
    main, wal = with_wal(*LOG_ONLY["datausage"][1:3])
    b = base_builder(tmp_path / "b", skip=frozenset({"datausage"}))
    domain, path = ARTEFACT_PATHS["datausage"]
    b.add_file(domain, path, main)
    b.add_file(domain, path + "-wal", wal)
    root = b.write()
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    scan(root)
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


# ---- hostile logs ------------------------------------------------------------------------


def _checksum(data: bytes, order: str, s1: int = 0, s2: int = 0) -> tuple[int, int]:
    """SQLite's WAL checksum, written here from the file-format document (not the reader's)."""
    words = struct.unpack(f"{order}{len(data) // 4}I", data)
    for first, second in zip(words[::2], words[1::2], strict=True):
        s1 = (s1 + first + s2) & 0xFFFFFFFF
        s2 = (s2 + second + s1) & 0xFFFFFFFF
    return s1, s2


def _order(wal: bytes) -> str:
    return ">" if struct.unpack(">I", wal[:4])[0] & 1 else "<"


def _resign(wal: bytes) -> bytes:
    """Recompute the header checksum and every frame's: a forger's log, valid to SQLite."""
    log = bytearray(wal)
    order = _order(wal)
    log[24:32] = struct.pack(">II", *_checksum(bytes(log[:24]), order))
    sums = struct.unpack(">II", log[24:32])
    for start in range(32, len(log) - FRAME + 1, FRAME):
        sums = _checksum(
            bytes(log[start : start + 8] + log[start + 24 : start + FRAME]), order, *sums
        )
        log[start + 16 : start + 24] = struct.pack(">II", *sums)
    return bytes(log)


def _flip(wal: bytes, at: int) -> bytes:
    return wal[:at] + bytes([wal[at] ^ 0x5A]) + wal[at + 1 :]


def _set(wal: bytes, at: int, value: bytes) -> bytes:
    return wal[:at] + value + wal[at + len(value) :]


def _commit_lie(wal: bytes) -> bytes:
    """Every commit frame states a database of 2^31 pages, checksums made to match."""
    log = bytearray(wal)
    for start in range(32, len(log) - FRAME + 1, FRAME):
        if log[start + 4 : start + 8] != b"\x00" * 4:
            log[start + 4 : start + 8] = struct.pack(">I", 0x7FFFFFFF)
    return _resign(bytes(log))


def _stale_tail(wal: bytes) -> bytes:
    """A frame of an earlier generation of the log after the live ones (another salt)."""
    frame = bytearray(wal[32 : 32 + FRAME])
    frame[8:16] = bytes(8)
    return wal + bytes(frame)


def _layout() -> tuple[bytes, bytes, int]:
    """DataUsage with BackupAgent in a first logged transaction and a second, larger one;
    and how many frames the first transaction wrote."""
    main = fakes.datausage([("apsd", BASE)])
    first = LOG_ONLY["datausage"][2]
    second: list[Statement] = [
        (
            "INSERT INTO ZPROCESS (Z_PK, ZPROCNAME, ZBUNDLENAME) VALUES (?, ?, ?)",
            (n, "x", "y" * 900),
        )
        for n in range(100, 130)
    ]
    _, only_first = with_wal(main, first)
    main, wal = with_wal(main, first, second)
    return main, wal, (len(only_first) - 32) // FRAME


# damage: (how, the verdict a scan must reach, the reason it must give); the first logged
# transaction holds BackupAgent, so a verdict of `compromised` shows the intact part was read
HOSTILE: dict[str, tuple[Callable[[bytes, int], bytes], Verdict, str]] = {
    "header-checksum": (lambda w, n: _flip(w, 20), Verdict.INCONCLUSIVE, "header checksum"),
    "not-a-log": (lambda w, n: b"\x00" * 4 + w[4:], Verdict.INCONCLUSIVE, "not an SQLite write"),
    "version": (
        lambda w, n: _resign(_set(w, 4, struct.pack(">I", 3007001))),
        Verdict.INCONCLUSIVE,
        "impossible version",
    ),
    "page-size-lie": (
        lambda w, n: _resign(_set(w, 8, struct.pack(">I", 8192))),
        Verdict.INCONCLUSIVE,
        "states 8192-byte pages, its database 4096-byte pages",
    ),
    "shorter-than-header": (lambda w, n: w[:20], Verdict.INCONCLUSIVE, "shorter than"),
    "cut-in-first-frame": (
        lambda w, n: w[: 32 + 100],
        Verdict.INCONCLUSIVE,
        "ends inside frame 1 (truncated)",
    ),
    "first-frame-damaged": (
        lambda w, n: _flip(w, 32 + 24 + 100),
        Verdict.INCONCLUSIVE,
        "frames 1–11 of the write-ahead log not replayed",
    ),
    "commit-states-huge-size": (
        lambda w, n: _commit_lie(w),
        Verdict.INCONCLUSIVE,
        "cannot be replayed (database disk image is malformed)",
    ),
    "garbage": (lambda w, n: bytes(range(256)) * 40, Verdict.INCONCLUSIVE, "not an SQLite write"),
    # damage after the first transaction: BackupAgent is still read, the gap still reported
    "later-frame-damaged": (
        lambda w, n: _flip(w, 32 + n * FRAME + 24 + 7),
        Verdict.COMPROMISED,
        "frames 2–11 of the write-ahead log not replayed",
    ),
    "cut-in-later-frame": (
        lambda w, n: w[: 32 + n * FRAME + 50],
        Verdict.COMPROMISED,
        "ends inside frame 2 (truncated)",
    ),
    "later-transaction-without-commit": (
        lambda w, n: w[: 32 + (n + 1) * FRAME],
        Verdict.COMPROMISED,
        "frame 2 of the write-ahead log not replayed",
    ),
    # legitimate: frames of an earlier generation are skipped without a word, as SQLite does
    "stale-frame-after-the-log": (lambda w, n: _stale_tail(w), Verdict.COMPROMISED, ""),
}


@pytest.mark.parametrize("damage", sorted(HOSTILE))
def test_hostile_logs_are_reported_never_clean(tmp_path: Path, scan: Scan, damage: str) -> None:
    main, wal, first_frames = _layout()
    assert first_frames == 1 and (len(wal) - 32) // FRAME == 11  # the layout the cases assume
    how, expected, reason = HOSTILE[damage]
    b = base_builder(tmp_path / "b", password=PASSWORD, skip=frozenset({"datausage"}))
    domain, path = ARTEFACT_PATHS["datausage"]
    b.add_file(domain, path, main)
    b.add_file(domain, path + "-wal", how(wal, first_frames))
    report = scan(b.write())
    text = note(report, "datausage")
    assert "\n" not in text and "Traceback" not in text
    assert report.verdict is expected, report.reasons
    if not reason:
        assert report.coverage["datausage"] is Coverage.PARSED, text
        return
    assert report.coverage["datausage"] is Coverage.ERROR
    assert text.startswith("`DataUsage.sqlite-wal`") and reason in text, text
    assert any("DataUsage.sqlite-wal" in r for r in report.reasons)


def test_a_damaged_manifest_db_log_is_an_integrity_finding(tmp_path: Path, scan: Scan) -> None:
    b = base_builder(tmp_path / "b")
    b.add_file("HomeDomain", "Library/Preferences/x.plist", b"<plist/>", in_manifest_wal=True)
    root = b.write()
    wal = (root / "Manifest.db-wal").read_bytes()
    (root / "Manifest.db-wal").write_bytes(_flip(wal, 32 + 24 + 9))
    report = scan(root)
    assert any("Manifest.db-wal" in d.value for d in report.detections)
    assert report.verdict is Verdict.INCONCLUSIVE


# ---- main files whose header lies ----------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "value"),
    [(18, b"\x03"), (19, b"\x07"), (16, b"\x03\x00"), (16, b"\x00\x00")],
    ids=["write-version", "read-version", "page-size-odd", "page-size-zero"],
)
def test_artefact_header_lies_are_errors(tmp_path: Path, scan: Scan, at: int, value: bytes) -> None:
    data = _set(fakes.sms([(ATTACKER, "", LATER)]), at, value)
    b = base_builder(tmp_path / "b", password=PASSWORD, sms=data)
    report = scan(b.write())
    assert report.coverage["sms"] is Coverage.ERROR
    assert "header" in note(report, "sms")
    assert report.verdict is Verdict.INCONCLUSIVE


def test_manifest_db_header_lie_is_a_backup_error(tmp_path: Path, scan: Scan) -> None:
    root = base_builder(tmp_path / "b").write()
    data = (root / "Manifest.db").read_bytes()
    (root / "Manifest.db").write_bytes(_set(data, 18, b"\x09"))
    with pytest.raises(BackupCorruptError, match="file-format versions"):
        scan(root)


def test_message_text_in_the_log_is_read_on_opt_in(tmp_path: Path) -> None:
    """The log replay and the opt-in compose: a link only the log holds is found."""
    main, wal = with_wal(
        fakes.sms([("friend@example.org", "hi", BASE)]),
        [("UPDATE message SET text = ?", (f"see {BAD_HOST}",))],
    )
    b = base_builder(tmp_path / "b", password=PASSWORD, skip=frozenset({"sms"}))
    domain, path = ARTEFACT_PATHS["sms"]
    b.add_file(domain, path, main)
    b.add_file(domain, path + "-wal", wal)
    report = scan_backup(
        b.write(),
        load_indicators(),
        password=lambda: PASSWORD,
        options=Options(include_message_text=True),
    )
    assert kinds(report)["domain-indicator"] == {"sms"}
