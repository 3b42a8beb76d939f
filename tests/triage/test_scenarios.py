"""Every synthetic triage scenario gets its expected verdict, evidence and coverage."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from devicegate.triage import Coverage, ScanReport, Verdict

from .builder import SERIAL, UDID

Scan = Callable[..., ScanReport]
Make = Callable[[str], Path]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("clean", Verdict.CLEAN),
        ("clean-plain", Verdict.INCONCLUSIVE),
        ("triangulation", Verdict.COMPROMISED),
        ("heuristic", Verdict.SUSPICIOUS),
        ("missing", Verdict.INCONCLUSIVE),
    ],
)
def test_scenario_verdicts(make: Make, scan: Scan, kind: str, expected: Verdict) -> None:
    assert scan(make(kind)).verdict is expected


def test_clean_parses_every_required_artefact(make: Make, scan: Scan) -> None:
    report = scan(make("clean"))
    required = {a.name: a.coverage for a in report.artefacts if a.required}
    assert set(required) == {
        "manifest",
        "manifest_plist",
        "datausage",
        "osanalytics_addaily",
        "safari_history",
        "configuration_profiles",
        "sms",
    }
    assert set(required.values()) == {Coverage.PARSED}
    assert report.detections == ()
    assert report.device.serial == SERIAL and report.device.udid == UDID
    assert report.device.ios_version == "16.5" and report.device.encrypted
    assert report.risk.lockdown_mode == "disabled"
    assert report.risk.triangulation_chain_patched is False


def test_triangulation_exact_hits_in_both_artefacts(make: Make, scan: Scan) -> None:
    report = scan(make("triangulation"))
    exact = [d for d in report.detections if d.kind == "triangulation-exact"]
    assert {d.source for d in exact} == {"datausage", "osanalytics_addaily"}
    assert all(d.value == "BackupAgent" and d.time is not None for d in exact)
    assert all(d.indicator_set == "operation_triangulation.stix2" for d in exact)
    # one detection per process and artefact, not one per timestamp
    assert len(exact) == 2


def test_heuristic_only_is_suspicious_with_the_kinds_named(make: Make, scan: Scan) -> None:
    report = scan(make("heuristic"))
    (hit,) = [d for d in report.detections if d.kind == "triangulation-heuristic"]
    assert hit.value.startswith("file+net+sms within 5 minutes")
    assert "Library/SMS/Attachments/0a/02" in hit.detail
    assert not any(d.kind == "triangulation-exact" for d in report.detections)


def test_missing_artefacts_are_reported_not_fatal(make: Make, scan: Scan) -> None:
    report = scan(make("missing"))
    assert report.coverage["datausage"] is Coverage.MISSING
    assert report.coverage["osanalytics_addaily"] is Coverage.MISSING
    assert report.coverage["sms"] is Coverage.PARSED
    assert any("datausage" in reason for reason in report.reasons)


def test_unencrypted_backup_says_to_encrypt(make: Make, scan: Scan) -> None:
    report = scan(make("clean-plain"))
    assert report.coverage["safari_history"] is Coverage.MISSING
    assert any("enable backup encryption" in reason for reason in report.reasons)
    assert not report.device.encrypted


def test_indicator_hashes_are_reported(make: Make, scan: Scan) -> None:
    report = scan(make("clean"))
    names = {s.name: s for s in report.indicators}
    assert set(names) == {
        "operation_triangulation.stix2",
        "pegasus.stix2",
        "predator.stix2",
    }
    assert all(len(s.sha256) == 64 and s.count > 0 for s in names.values())
