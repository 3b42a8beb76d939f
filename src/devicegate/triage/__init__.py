"""Triage of iOS backups for signs of compromise (Operation Triangulation, STIX sets).

Public surface (pinned by tests/triage/test_api.py)::

    load_indicators(paths=(), *, defaults=True) -> IndicatorIndex
    scan_backup(path, indicators, *, password=None, options=None, limits=None) -> ScanReport
    open_backup(path, *, password=None, limits=None) -> Backup
    Options, Limits, ScanReport, Detection, Verdict, Coverage, DeviceInfo
    TriageError and its subclasses (see `errors`)

The CLI is `devicegate.cli.triage_cmd` (`devicegate triage`).
"""

from __future__ import annotations

from devicegate.triage.artefacts import Options
from devicegate.triage.backup import Backup, Limits, open_backup
from devicegate.triage.errors import (
    ArtefactError,
    BackupCorruptError,
    IndicatorError,
    NotABackupError,
    PasswordRequiredError,
    TriageError,
    WrongPasswordError,
)
from devicegate.triage.indicators import IndicatorIndex, load_indicators
from devicegate.triage.result import (
    Coverage,
    Detection,
    DeviceInfo,
    RiskAttributes,
    ScanReport,
    Verdict,
)
from devicegate.triage.scan import scan_backup

__all__ = [
    "ArtefactError",
    "Backup",
    "BackupCorruptError",
    "Coverage",
    "Detection",
    "DeviceInfo",
    "IndicatorError",
    "IndicatorIndex",
    "Limits",
    "NotABackupError",
    "Options",
    "PasswordRequiredError",
    "RiskAttributes",
    "ScanReport",
    "TriageError",
    "Verdict",
    "WrongPasswordError",
    "load_indicators",
    "open_backup",
    "scan_backup",
]
