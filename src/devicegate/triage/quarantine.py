"""Record a verdict in the shared store, which quarantines a compromised device everywhere.

The store links the identifier pairs we give (serial and UDID from the backup, the
inventory `device_id` the operator names) to the inventory device, and so to its
ActiveSync DeviceId, MAC and MDM id; the engine then refuses that device for every
resource, whatever exception it had, until an operator clears the verdict. The store
module is imported here, lazily, so triage works without it when nothing is recorded.
"""

from __future__ import annotations

import re
from typing import Any

from devicegate.errors import DevicegateError, StoreError
from devicegate.inventory import normalise_key
from devicegate.triage.errors import TriageError
from devicegate.triage.report import detection_dict
from devicegate.triage.result import ScanReport


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", url)


def identity_keys(report: ScanReport, device_ref: str | None = None) -> list[tuple[str, str]]:
    """Identifier pairs for the store, normalised the way the inventory indexes them."""
    keys: list[tuple[str, str]] = []
    if report.device.serial:
        keys.append(("serial", normalise_key("serial", report.device.serial)))
    if report.device.udid:
        keys.append(("udid", normalise_key("udid", report.device.udid)))
    if device_ref:
        keys.append(("device_id", device_ref.strip()))
    return keys


def evidence(report: ScanReport) -> list[dict[str, object]]:
    """Detections, then one summary item with coverage and the indicator sets' digests."""
    items: list[dict[str, object]] = [detection_dict(d) for d in report.detections]
    items.append(
        {
            "kind": "scan-summary",
            "verdict": report.verdict.value,
            "reasons": list(report.reasons),
            "coverage": {a.name: a.coverage.value for a in report.artefacts},
            "indicators": {s.name: s.sha256 for s in report.indicators},
        }
    )
    return items


def record(report: ScanReport, store_url: str, *, device_ref: str | None = None) -> str:
    """Write the verdict; return the store's device reference."""
    keys = identity_keys(report, device_ref)
    if not keys:
        raise TriageError(
            f"cannot record the verdict of `{report.backup}`: the backup names no serial or UDID",
            hint="give --device ID (the inventory device_id)",
        )
    try:
        from devicegate.store import open_store
    except ImportError:
        raise StoreError("the store module is not available in this installation") from None
    store: Any = None
    try:
        store = open_store(store_url)
        ref = store.record_verdict(
            keys=keys,
            verdict=report.verdict.value,
            evidence=evidence(report),
            scan_id=report.scan_id,
            source=f"devicegate triage {report.backup}",
        )
    except DevicegateError:
        raise
    except Exception as exc:
        raise StoreError(f"cannot record the verdict in `{redact(store_url)}`: {exc}") from None
    finally:
        close = getattr(store, "close", None)
        if callable(close):
            close()
    return str(ref)
