"""Scan one backup: open it, run every artefact module, apply the heuristic, decide.

The loop is the whole error policy: an artefact that is absent becomes coverage
`missing`, one that is broken (even by a bug of ours) coverage `error` with a one-line
note, and the scan goes on. Only problems with the backup as a whole (not a backup, wrong
password, corrupt Manifest.db) end the scan, as a `TriageError`.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from devicegate.triage import heuristics, verdict
from devicegate.triage.artefacts import ARTEFACTS, Context, Findings, Missing, Options
from devicegate.triage.backup import Backup, Limits, PasswordSource, open_backup
from devicegate.triage.errors import ArtefactError
from devicegate.triage.indicators import IndicatorIndex
from devicegate.triage.result import (
    VERDICT_RANK,
    ArtefactResult,
    Coverage,
    Detection,
    RiskAttributes,
    ScanReport,
    TimelineEvent,
    Verdict,
)


def scan_backup(
    path: str | Path,
    indicators: IndicatorIndex,
    *,
    password: PasswordSource | None = None,
    options: Options | None = None,
    limits: Limits | None = None,
    scan_id: str | None = None,
) -> ScanReport:
    """Triage the backup at `path` against `indicators`."""
    options = options or Options()
    started = datetime.now(UTC)
    clock = time.perf_counter()
    with open_backup(path, password=password, limits=limits) as backup:
        results, timeline = _run_all(Context(backup, indicators, options))
        device = backup.device
        anomalies = _anomalies(backup)
    detections: list[Detection] = [d for r in results for d in r.detections]
    detections.extend(anomalies)
    detections.extend(heuristics.evaluate(timeline))
    decided, reasons = verdict.decide(detections, results, encrypted=device.encrypted)
    facts = {key: value for r in results for key, value in r.facts}
    risk = RiskAttributes(
        lockdown_mode=facts.get("lockdown_mode", "unknown"),
        ios_version=device.ios_version,
        triangulation_chain_patched=verdict.triangulation_patched(device.ios_version),
    )
    return ScanReport(
        backup=str(path),
        scan_id=scan_id or uuid.uuid4().hex,
        verdict=decided,
        reasons=reasons,
        detections=tuple(sorted(detections, key=_detection_order)),
        artefacts=tuple(results),
        indicators=tuple(indicators.sets),
        device=device,
        risk=risk,
        started=started,
        seconds=round(time.perf_counter() - clock, 3),
        timeline=tuple(sorted(timeline, key=lambda e: (e.time, e.source, e.subject))),
    )


def _detection_order(detection: Detection) -> tuple[int, str, str]:
    return (-VERDICT_RANK[detection.level], detection.kind, detection.value)


def _anomalies(backup: Backup) -> list[Detection]:
    """Manifest rows that failed verification, wherever a module met them."""
    found = [
        Detection("backup-anomaly", "manifest", text, Verdict.INCONCLUSIVE, detail="row not read")
        for text in backup.anomalies
    ]
    if backup.anomaly_count > len(backup.anomalies):
        more = backup.anomaly_count - len(backup.anomalies)
        found.append(
            Detection("backup-anomaly", "manifest", f"{more} more rows", Verdict.INCONCLUSIVE)
        )
    return found


def _run_all(ctx: Context) -> tuple[list[ArtefactResult], list[TimelineEvent]]:
    results: list[ArtefactResult] = []
    timeline: list[TimelineEvent] = []
    for artefact in ARTEFACTS:
        if not artefact.enabled(ctx):
            continue
        coverage, note = Coverage.PARSED, ""
        found = Findings()
        try:
            found = artefact.run(ctx)
            note = found.note
            if found.error:
                coverage, note = Coverage.ERROR, found.error
        except Missing as exc:
            coverage, note = Coverage.MISSING, str(exc)
        except ArtefactError as exc:
            coverage, note = Coverage.ERROR, exc.message
        except Exception as exc:  # one broken artefact never stops the scan
            coverage, note = Coverage.ERROR, f"internal error {type(exc).__name__}: {exc}"[:300]
        timeline.extend(found.timeline)
        results.append(
            ArtefactResult(
                name=artefact.name,
                coverage=coverage,
                required=artefact.required,
                note=note,
                not_checked=tuple(found.not_checked),
                detections=tuple(found.detections),
                timeline=(),
                facts=tuple(sorted(found.facts.items())),
            )
        )
    return results, timeline


__all__ = ["Backup", "Limits", "Options", "scan_backup"]
