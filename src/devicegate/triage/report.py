"""Render a `ScanReport`: the CLI's JSON, MVT-shaped timeline.csv and alerts.json.

The JSON keys `verdict`, `detections` (`kind`, `source`, `value`, `time`), `coverage`,
`indicators` (file → `sha256`, `count`) and `device` (`serial`, `udid`, `ios_version`) are
the CLI contract; the others (`reasons`, `risk`, `coverage_notes`, `not_checked`, …) are
additions.
`timeline.csv` has MVT's columns (UTC Timestamp, Plugin, Event, Description) so existing
timeline tooling reads it; `alerts.json` is the list of detections.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from devicegate.errors import InputError
from devicegate.triage.result import Detection, ScanReport
from devicegate.triage.timeconv import iso

EXIT_CODES = {"clean": 0, "inconclusive": 3, "suspicious": 4, "compromised": 5}


def detection_dict(detection: Detection) -> dict[str, object]:
    return {
        "kind": detection.kind,
        "source": detection.source,
        "value": detection.value,
        "time": iso(detection.time),
        "level": detection.level.value,
        "indicator_set": detection.indicator_set,
        "detail": detection.detail,
    }


def to_dict(report: ScanReport) -> dict[str, Any]:
    device = report.device
    return {
        "backup": report.backup,
        "scan_id": report.scan_id,
        "verdict": report.verdict.value,
        "exit_code": EXIT_CODES[report.verdict.value],
        "reasons": list(report.reasons),
        "detections": [detection_dict(d) for d in report.detections],
        "coverage": {a.name: a.coverage.value for a in report.artefacts},
        "coverage_notes": {a.name: a.note for a in report.artefacts if a.note},
        "not_checked": {a.name: list(a.not_checked) for a in report.artefacts if a.not_checked},
        "indicators": {
            s.name: {"sha256": s.sha256, "count": s.count, "skipped": s.skipped}
            for s in report.indicators
        },
        "device": {
            "serial": device.serial,
            "udid": device.udid,
            "ios_version": device.ios_version,
            "build": device.build,
            "product_type": device.product_type,
            "device_name": device.device_name,
            "encrypted": device.encrypted,
            "backup_date": iso(device.backup_date),
        },
        "risk": {
            "lockdown_mode": report.risk.lockdown_mode,
            "ios_version": report.risk.ios_version,
            "triangulation_chain_patched": report.risk.triangulation_chain_patched,
        },
        "started": iso(report.started),
        "seconds": report.seconds,
    }


def to_json(report: ScanReport) -> str:
    return json.dumps(to_dict(report), indent=2, ensure_ascii=False)


def write_outputs(report: ScanReport, folder: Path) -> list[Path]:
    """Write timeline.csv, alerts.json and report.json into `folder` (created if needed)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        timeline = folder / "timeline.csv"
        with timeline.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["UTC Timestamp", "Plugin", "Event", "Description"])
            for event in report.timeline:
                writer.writerow([iso(event.time), event.source, event.event, event.subject])
        alerts = folder / "alerts.json"
        alerts.write_text(
            json.dumps([detection_dict(d) for d in report.detections], indent=2) + "\n",
            encoding="utf-8",
        )
        summary = folder / "report.json"
        summary.write_text(to_json(report) + "\n", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write to `{folder}`: {exc.strerror}") from None
    return [timeline, alerts, summary]
