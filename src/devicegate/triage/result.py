"""The frozen vocabulary of a triage scan: detections, coverage, verdict, report.

Values only (frozen, slotted dataclasses), so a report crosses a process boundary in
`scan-many` and renders to JSON, CSV and the store without any dict of `Any` in between.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Verdict(StrEnum):
    """Outcome of a scan. Ordered by `VERDICT_RANK`: the worst finding decides."""

    CLEAN = "clean"
    INCONCLUSIVE = "inconclusive"
    SUSPICIOUS = "suspicious"
    COMPROMISED = "compromised"


VERDICT_RANK: dict[Verdict, int] = {
    Verdict.CLEAN: 0,
    Verdict.INCONCLUSIVE: 1,
    Verdict.SUSPICIOUS: 2,
    Verdict.COMPROMISED: 3,
}


class Coverage(StrEnum):
    """What became of one artefact: read and checked, absent from the backup, or broken."""

    PARSED = "parsed"
    MISSING = "missing"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Detection:
    """One finding. `level` is the verdict this finding alone would justify.

    `kind` names the rule (`triangulation-exact`, `process-indicator`, …), `source` the
    artefact it was found in, `value` what matched (a process name, a domain, a path) and
    `indicator_set` the file the indicator came from (None for built-in rules).
    """

    kind: str
    source: str
    value: str
    level: Verdict
    time: datetime | None = None
    indicator_set: str | None = None
    detail: str = ""


class Heuristic(StrEnum):
    """Event classes of the Triangulation heuristic (see `heuristics`)."""

    FILE = "file"
    NET = "net"
    LOCATION = "location"
    SMS_DIR = "sms-dir"
    SMS_ATTACHMENT = "sms-attachment"


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One timestamped event for timeline.csv, optionally an input of the heuristic.

    `event` is a short code (`modified`, `changed`, `born`, `net-first`, `visit`, …);
    `subject` is what it happened to (a path, a process, a URL host).
    """

    time: datetime
    source: str
    event: str
    subject: str
    heuristic: Heuristic | None = None


@dataclass(frozen=True, slots=True)
class ArtefactResult:
    """What one artefact module produced. `note` says why it is missing or broken;
    `not_checked` what it left unchecked on purpose, and how to check it."""

    name: str
    coverage: Coverage
    required: bool
    note: str = ""
    not_checked: tuple[str, ...] = ()
    detections: tuple[Detection, ...] = ()
    timeline: tuple[TimelineEvent, ...] = ()
    facts: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """Identity of the backed-up device as Info.plist and Manifest.plist state it."""

    serial: str | None = None
    udid: str | None = None
    ios_version: str | None = None
    build: str | None = None
    product_type: str | None = None
    device_name: str | None = None
    encrypted: bool = False
    backup_date: datetime | None = None


@dataclass(frozen=True, slots=True)
class IndicatorSetInfo:
    """A loaded indicator file: its name, digest and how many usable indicators it gave."""

    name: str
    path: str
    sha256: str
    count: int
    skipped: int = 0
    malware: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RiskAttributes:
    """Facts that raise or lower risk without being findings (recorded, never a verdict)."""

    lockdown_mode: str = "unknown"  # "enabled" | "disabled" | "unknown"
    ios_version: str | None = None
    triangulation_chain_patched: bool | None = None


@dataclass(frozen=True, slots=True)
class ScanReport:
    """Everything a scan concluded about one backup."""

    backup: str
    scan_id: str
    verdict: Verdict
    reasons: tuple[str, ...]
    detections: tuple[Detection, ...]
    artefacts: tuple[ArtefactResult, ...]
    indicators: tuple[IndicatorSetInfo, ...]
    device: DeviceInfo
    risk: RiskAttributes
    started: datetime
    seconds: float
    timeline: tuple[TimelineEvent, ...] = field(default=(), repr=False)

    @property
    def coverage(self) -> dict[str, Coverage]:
        return {artefact.name: artefact.coverage for artefact in self.artefacts}
