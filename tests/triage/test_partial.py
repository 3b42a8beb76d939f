"""A backup copied in part: Manifest.db and Info.plist, but no Manifest.plist.

It is scanned as unencrypted with the device from Info.plist, the gap is in the coverage
(`manifest_plist` missing) and the verdict is at best `inconclusive` with that reason —
never refused outright, never `clean`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devicegate.cli.triage_cmd import app
from devicegate.triage import BackupCorruptError, Coverage, ScanReport, Verdict

from . import fakes
from .builder import BASE, SERIAL, UDID
from .scenarios import PASSWORD, base_builder

Scan = Callable[..., ScanReport]


def _partial(root: Path, **kwargs: object) -> Path:
    """An unencrypted phone with every artefact (web history too), Manifest.plist removed."""
    history = fakes.history([("https://www.example.org/", BASE)])
    folder = base_builder(root, history=history, **kwargs).write()  # type: ignore[arg-type]
    (folder / "Manifest.plist").unlink()
    return folder


def test_without_manifest_plist_the_gap_is_the_reason(tmp_path: Path, scan: Scan) -> None:
    whole = base_builder(tmp_path / "whole", history=fakes.history([("https://a.example/", BASE)]))
    assert scan(whole.write()).verdict is Verdict.CLEAN  # the same phone, whole, is clean
    report = scan(_partial(tmp_path / "part"))
    assert report.coverage["manifest_plist"] is Coverage.MISSING
    assert report.verdict is Verdict.INCONCLUSIVE
    (reason,) = [r for r in report.reasons if "manifest_plist" in r]
    assert "Manifest.plist is not in the backup folder" in reason and "unencrypted" in reason
    assert report.device.serial == SERIAL and report.device.udid == UDID
    assert report.device.ios_version == "16.5" and not report.device.encrypted
    parsed = {a.name for a in report.artefacts if a.coverage is Coverage.PARSED}
    assert {"manifest", "datausage", "safari_history", "sms"} <= parsed


def test_findings_outrank_the_missing_manifest_plist(tmp_path: Path, scan: Scan) -> None:
    root = _partial(tmp_path / "b", processes=[("BackupAgent", BASE + timedelta(days=1))])
    report = scan(root)
    assert report.verdict is Verdict.COMPROMISED
    assert any("manifest_plist" in r for r in report.reasons)


def test_without_info_plist_either_the_device_is_unknown(tmp_path: Path, scan: Scan) -> None:
    root = _partial(tmp_path / "b")
    (root / "Info.plist").unlink()
    report = scan(root)
    assert report.device.serial is None and report.verdict is Verdict.INCONCLUSIVE
    assert "nowhere" in next(a.note for a in report.artefacts if a.name == "manifest_plist")


def test_encrypted_manifest_db_without_its_keybag_is_an_error(tmp_path: Path, scan: Scan) -> None:
    root = base_builder(tmp_path / "b", password=PASSWORD).write()
    (root / "Manifest.plist").unlink()
    with pytest.raises(BackupCorruptError, match="keybag") as caught:
        scan(root)
    assert "Manifest.plist" in (caught.value.hint or "")


def test_cli_scans_a_partial_backup_and_scan_many_finds_it(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    _partial(fleet / "partial")
    result = CliRunner().invoke(app, ["scan", str(fleet / "partial"), "--json"], env={})
    assert result.exit_code == 3, result.stderr
    data = json.loads(result.stdout)
    assert data["coverage"]["manifest_plist"] == "missing"
    assert data["device"]["serial"] == SERIAL
    result = CliRunner().invoke(app, ["scan-many", str(fleet), "--json"], env={})
    assert [row["verdict"] for row in json.loads(result.stdout)] == ["inconclusive"]
