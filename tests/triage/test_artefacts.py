"""Each artefact module against its indicators, on synthetic backups."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from devicegate.triage import Coverage, ScanReport, Verdict, load_indicators, scan_backup
from devicegate.triage.artefacts import Options

from . import fakes
from .builder import BASE, file_id
from .scenarios import ARTEFACT_PATHS, PASSWORD, PROFILES_DOMAIN, base_builder

Scan = Callable[..., ScanReport]
LATER = BASE + timedelta(days=1)
PREDATOR_PROFILE = "76DAB334-7E17-475D-A5D6-0794EB5818A5"


def kinds(report: ScanReport) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for d in report.detections:
        found.setdefault(d.kind, []).append(d.value)
    return found


def test_safari_visit_to_indicator_domain_is_suspicious(tmp_path: Path, scan: Scan) -> None:
    history = fakes.history(
        [("https://example.org/", LATER), ("https://cdn.backuprabbit.com/a?b=1", LATER)]
    )
    report = scan(base_builder(tmp_path / "b", password=PASSWORD, history=history).write())
    assert report.verdict is Verdict.SUSPICIOUS
    (hit,) = [d for d in report.detections if d.kind == "domain-indicator"]
    assert hit.source == "safari_history" and hit.indicator_set == "operation_triangulation.stix2"
    assert hit.time is not None


def test_imessage_from_attacker_account_is_suspicious(tmp_path: Path, scan: Scan) -> None:
    sms = fakes.sms([("E:NonBaguette@yahoo.com", "", LATER), ("friend@example.org", "hi", LATER)])
    report = scan(base_builder(tmp_path / "b", password=PASSWORD, sms=sms).write())
    assert report.verdict is Verdict.SUSPICIOUS
    assert kinds(report)["email-indicator"] == ["nonbaguette@yahoo.com"]


def test_message_text_is_read_only_on_opt_in(tmp_path: Path, scan: Scan) -> None:
    sms = fakes.sms([("friend@example.org", "look https://www.backuprabbit.com/x now", LATER)])
    root = base_builder(tmp_path / "b", password=PASSWORD, sms=sms).write()
    assert scan(root).verdict is Verdict.CLEAN
    opted = scan(root, options=Options(include_message_text=True))
    assert opted.verdict is Verdict.SUSPICIOUS
    assert kinds(opted)["domain-indicator"] == ["https://www.backuprabbit.com/x"]


def test_apple_threat_notification_is_suspicious(tmp_path: Path, scan: Scan) -> None:
    sms = fakes.sms([("threat-notifications@apple.com", "", LATER)])
    report = scan(base_builder(tmp_path / "b", password=PASSWORD, sms=sms).write())
    assert report.verdict is Verdict.SUSPICIOUS
    assert "threat-notification" in kinds(report)


def test_predator_profile_is_compromised(tmp_path: Path, scan: Scan) -> None:
    root = base_builder(tmp_path / "b", password=PASSWORD, profile_uuid=PREDATOR_PROFILE).write()
    report = scan(root)
    assert report.verdict is Verdict.COMPROMISED
    (hit,) = [d for d in report.detections if d.kind == "profile-indicator"]
    assert hit.indicator_set == "predator.stix2" and hit.value == PREDATOR_PROFILE


def test_unreadable_profile_keeps_the_other_findings(tmp_path: Path, scan: Scan) -> None:
    b = base_builder(tmp_path / "b", password=PASSWORD, profile_uuid=PREDATOR_PROFILE)
    b.add_file(PROFILES_DOMAIN, "Library/ConfigurationProfiles/profile-bad.stub", b"\x00junk")
    report = scan(b.write())
    assert report.coverage["configuration_profiles"] is Coverage.ERROR
    assert report.verdict is Verdict.COMPROMISED


def test_no_profiles_container_is_missing(tmp_path: Path, scan: Scan) -> None:
    root = base_builder(tmp_path / "b", password=PASSWORD, skip=frozenset({"profiles"})).write()
    report = scan(root)
    assert report.coverage["configuration_profiles"] is Coverage.MISSING
    assert report.verdict is Verdict.INCONCLUSIVE


def test_pegasus_process_in_datausage_is_compromised(tmp_path: Path, scan: Scan) -> None:
    root = base_builder(tmp_path / "b", password=PASSWORD, processes=[("bh", LATER)]).write()
    report = scan(root)
    assert report.verdict is Verdict.COMPROMISED
    hits = [d for d in report.detections if d.kind == "process-indicator"]
    assert {d.source for d in hits} == {"datausage", "osanalytics_addaily"}
    assert {d.indicator_set for d in hits} == {"pegasus.stix2"}


def test_legitimate_backupagent2_is_not_triangulation(tmp_path: Path, scan: Scan) -> None:
    root = base_builder(tmp_path / "b", password=PASSWORD, processes=[("BackupAgent2", LATER)])
    assert scan(root.write()).verdict is Verdict.CLEAN


def test_file_name_indicator_in_manifest_is_compromised(tmp_path: Path, scan: Scan) -> None:
    b = base_builder(tmp_path / "b", password=PASSWORD)
    b.add_file("RootDomain", "Library/LaunchDaemons/roleaccountd.plist", b"<plist/>")
    report = scan(b.write())
    assert report.verdict is Verdict.COMPROMISED
    assert kinds(report)["file-indicator"] == [
        "RootDomain/Library/LaunchDaemons/roleaccountd.plist"
    ]


def stix_file(path: Path, pattern: str) -> Path:
    """A STIX 2.1 bundle of one indicator, written to `path`."""
    indicator = {"type": "indicator", "pattern": pattern, "pattern_type": "stix"}
    path.write_text(json.dumps({"type": "bundle", "objects": [indicator]}))
    return path


def test_file_path_indicator_uses_the_domain_location(tmp_path: Path) -> None:
    extra = stix_file(
        tmp_path / "paths.stix2", "[file:path='/private/var/mobile/Library/Implant/']"
    )
    b = base_builder(tmp_path / "b", password=PASSWORD)
    b.add_file("HomeDomain", "Library/Implant/agent.db", b"x")
    report = scan_backup(b.write(), load_indicators([extra]), password=lambda: PASSWORD)
    assert report.verdict is Verdict.COMPROMISED
    assert kinds(report)["file-indicator"] == ["/private/var/mobile/Library/Implant/agent.db"]


def test_lockdown_mode_is_a_risk_attribute(tmp_path: Path, scan: Scan) -> None:
    root = base_builder(tmp_path / "b", password=PASSWORD, lockdown=True, ios_version="17.1")
    report = scan(root.write())
    assert report.risk.lockdown_mode == "enabled"
    assert report.risk.triangulation_chain_patched is True
    assert report.verdict is Verdict.CLEAN


def _datausage_with_wal(tmp_path: Path) -> tuple[bytes, bytes]:
    """A DataUsage database whose BackupAgent row lives only in the write-ahead log."""
    folder = tmp_path / "wal"
    folder.mkdir()
    path = folder / "DataUsage.sqlite"
    path.write_bytes(fakes.datausage([("apsd", BASE)]))
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute(
        "INSERT INTO ZPROCESS (Z_PK, ZFIRSTTIMESTAMP, ZTIMESTAMP, ZPROCNAME) VALUES (9, 1, ?, ?)",
        (LATER.timestamp() - 978307200, "BackupAgent"),
    )
    db.commit()
    shutil.copy(path, folder / "copy.sqlite")
    shutil.copy(f"{path}-wal", folder / "copy.sqlite-wal")
    db.close()
    return (folder / "copy.sqlite").read_bytes(), (folder / "copy.sqlite-wal").read_bytes()


def test_write_ahead_log_is_replayed(tmp_path: Path, scan: Scan) -> None:
    main, wal = _datausage_with_wal(tmp_path)
    b = base_builder(tmp_path / "b", password=PASSWORD, skip=frozenset({"datausage"}))
    domain, path = ARTEFACT_PATHS["datausage"]
    b.add_file(domain, path, main)
    b.add_file(domain, path + "-wal", wal)
    report = scan(b.write())
    assert report.verdict is Verdict.COMPROMISED
    assert kinds(report)["triangulation-exact"] == ["BackupAgent"]


SHUTDOWN_CLEAN = """\
remaining client pid: 100 (/System/Library/PrivateFrameworks/X.framework/xd)
SIGTERM: [1685613600] reboot
"""


def _shutdown(tmp_path: Path, text: str) -> Options:
    path = tmp_path / "shutdown.log"
    path.write_text(text)
    return Options(shutdown_log=path)


def test_shutdown_log_is_only_checked_when_given(make: Callable[[str], Path], scan: Scan) -> None:
    assert "shutdown_log" not in scan(make("clean")).coverage


def test_shutdown_log_clean(tmp_path: Path, make: Callable[[str], Path], scan: Scan) -> None:
    report = scan(make("clean"), options=_shutdown(tmp_path, SHUTDOWN_CLEAN))
    assert report.coverage["shutdown_log"] is Coverage.PARSED
    assert report.verdict is Verdict.CLEAN


def test_shutdown_log_rules(tmp_path: Path, make: Callable[[str], Path], scan: Scan) -> None:
    text = (
        "these clients are still here\n" * 3
        + "remaining client pid: 7 (/private/var/tmp/updater)\n"
        + "SIGTERM: [1685613600]\n"
        + "remaining client pid: 8 (/private/var/db/com.apple.xpc.roleaccountd.staging/bh)\n"
        + "SIGTERM: [1685700000]\n"
    )
    report = scan(make("clean"), options=_shutdown(tmp_path, text))
    found = kinds(report)
    assert report.verdict is Verdict.COMPROMISED
    assert found["process-indicator"] == ["/private/var/db/com.apple.xpc.roleaccountd.staging/bh"]
    assert sorted(found["shutdown-anomaly"]) == ["/private/var/tmp/updater", "3 delays"]


def test_shutdown_log_missing_file_is_an_error(
    tmp_path: Path, make: Callable[[str], Path], scan: Scan
) -> None:
    report = scan(make("clean"), options=Options(shutdown_log=tmp_path / "absent.log"))
    assert report.coverage["shutdown_log"] is Coverage.ERROR
    assert report.verdict is Verdict.INCONCLUSIVE


def test_a_row_for_a_file_that_points_nowhere_does_not_crash(tmp_path: Path, scan: Scan) -> None:
    b = base_builder(tmp_path / "b", password=PASSWORD)
    b.add_row(file_id("HomeDomain", "Library/ghost"), "HomeDomain", "Library/ghost")
    assert scan(b.write()).verdict is Verdict.CLEAN


PAYLOAD = "payload.pkpass"
ATTACHMENT_PATH = f"~/Library/SMS/Attachments/0a/10/AB12-34/{PAYLOAD}"


@pytest.mark.parametrize(
    ("transfer_name", "filename"),
    [(PAYLOAD, ATTACHMENT_PATH), (None, ATTACHMENT_PATH), (PAYLOAD, None)],
    ids=["both", "path-only", "sent-name-only"],
)
def test_indicator_in_a_message_attachment_is_suspicious(
    tmp_path: Path, transfer_name: str | None, filename: str | None
) -> None:
    """An attachment named by a file-name indicator (an exploit sent by iMessage)."""
    sms = fakes.sms(
        [("friend@example.org", "", LATER)],
        [fakes.attachment("IMG_0001.HEIC", LATER), (transfer_name, filename, LATER)],
    )
    root = base_builder(tmp_path / "b", password=PASSWORD, sms=sms).write()
    with_set = scan_backup(
        root,
        load_indicators([stix_file(tmp_path / "attachments.stix2", f"[file:name='{PAYLOAD}']")]),
        password=lambda: PASSWORD,
    )
    assert next(a.note for a in with_set.artefacts if a.name == "sms").endswith("2 attachments")
    (hit,) = [d for d in with_set.detections if d.kind == "file-indicator"]
    assert hit.source == "sms" and hit.indicator_set == "attachments.stix2"
    assert hit.value == (transfer_name or filename) and hit.time is not None
    assert with_set.verdict is Verdict.SUSPICIOUS
    # the same backup without that indicator set is clean: the attachment alone decided
    plain = scan_backup(root, load_indicators(), password=lambda: PASSWORD)
    assert plain.verdict is Verdict.CLEAN


def test_unchecked_links_are_said_with_how_to_check_them(tmp_path: Path, scan: Scan) -> None:
    root = base_builder(tmp_path / "b", password=PASSWORD).write()
    report = scan(root)
    sms = next(a for a in report.artefacts if a.name == "sms")
    (item,) = sms.not_checked
    assert item.startswith("links in SMS/iMessage text")
    assert "--include-message-text" in item and "DEVICEGATE_TRIAGE_MESSAGE_TEXT=1" in item
    assert report.verdict is Verdict.CLEAN  # the privacy default keeps its verdict …
    assert f"not checked: {item}" in report.reasons  # … and says what it did not check
    opted = scan(root, options=Options(include_message_text=True))
    assert all(not a.not_checked for a in opted.artefacts)
    assert not any(r.startswith("not checked") for r in opted.reasons)
