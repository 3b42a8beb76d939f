"""What the store says about a device, as values: its holds, its verdicts, and what a hold saw.

These cross into the CLI and the admin API; both print them, neither queries tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from devicegate.identify.base import clean
from devicegate.model import DeviceProfile, Signals, device_label
from devicegate.serialize import signals_json
from devicegate.timeutil import when

COMPROMISED = "compromised"

#: Longest signal value a hold keeps in `seen` (adapters bound headers to 4 KiB; a hold is
#: read by people, and a client must not be able to grow the table without bound).
SEEN_VALUE_MAX = 1024


def seen_json(signals: Signals, profile: DeviceProfile) -> dict[str, object]:
    """What a hold records of the request that caused it (`Store.hold(seen=…)`):
    `{"signals": {name: value}, "device": {vendor, platform, model, os_version}}` — every
    signal the request carried (its User-Agent among them) and the device as identified from
    them, the attributes it has. Every value is client-chosen: kept for people to read, cut to
    `SEEN_VALUE_MAX` characters, never trusted or interpreted again."""
    return {
        "signals": {name: value[:SEEN_VALUE_MAX] for name, value in signals_json(signals).items()},
        "device": {
            name: value[:SEEN_VALUE_MAX]
            for name in ("vendor", "platform", "model", "os_version")
            if (value := getattr(profile, name))
        },
    }


def seen_device(seen: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The identified device of a hold's `seen` (empty when it recorded none)."""
    device = (seen or {}).get("device")
    return device if isinstance(device, Mapping) else {}


LABELLED = ("vendor", "platform", "model")


def describe_seen(seen: Mapping[str, Any] | None, *, signals: bool = True) -> str:
    """One line a person reads: `Apple iOS iPhone14,2; user agent `…`` and, with `signals`,
    every other signal; `-` when the hold recorded nothing (holds set before the store kept
    it). Client-chosen text, so control characters are removed (no terminal escapes)."""
    if not seen:
        return "-"
    device = seen_device(seen)
    named = device_label(*(str(device[k]) if device.get(k) else None for k in LABELLED))
    parts = [clean(named, SEEN_VALUE_MAX)]
    carried = seen.get("signals")
    carried = carried if isinstance(carried, Mapping) else {}
    if carried.get("user_agent"):
        parts.append(f"user agent `{clean(str(carried['user_agent']), SEEN_VALUE_MAX)}`")
    others = [
        f"{k}={clean(str(v), SEEN_VALUE_MAX)}"
        for k, v in carried.items()
        if k != "user_agent" and v
    ]
    if signals and others:
        parts.append(", ".join(others))
    return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class HoldRecord:
    """A quarantine hold: set by `created_by` at `created_at` because `user`'s request (what
    it carried: `seen`) met `rule`; in force until `released_at`."""

    id: int
    resource: str
    rule: str | None
    reason: str
    user: str | None
    seen: Mapping[str, Any] | None
    created_at: datetime
    created_by: str | None
    released_at: datetime | None
    released_by: str | None

    @property
    def active(self) -> bool:
        return self.released_at is None


@dataclass(frozen=True, slots=True)
class VerdictRecord:
    """A triage verdict on the device, standing until `cleared_at`."""

    id: int
    verdict: str
    scan_id: str
    source: str
    evidence: tuple[Mapping[str, Any], ...]
    created_at: datetime
    cleared_at: datetime | None
    cleared_by: str | None

    @property
    def active(self) -> bool:
        return self.cleared_at is None


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """A device the store knows (it was held or given a verdict), with every hold and verdict
    it has had, newest first. `held` and `verdict` are the standing ones."""

    device_ref: str
    user: str | None
    vendor: str | None
    platform: str | None
    model: str | None
    keys: tuple[tuple[str, str], ...]
    verdict: str | None
    held: tuple[str, ...]
    last_seen: datetime
    first_seen: datetime | None = None
    holds: tuple[HoldRecord, ...] = ()
    verdicts: tuple[VerdictRecord, ...] = ()

    @property
    def restricted(self) -> bool:
        return bool(self.held) or self.verdict == COMPROMISED

    @property
    def active_holds(self) -> tuple[HoldRecord, ...]:
        return tuple(h for h in self.holds if h.active)

    @property
    def active_verdicts(self) -> tuple[VerdictRecord, ...]:
        return tuple(v for v in self.verdicts if v.active)


def describe_hold(hold: HoldRecord, *, user: str | None = None) -> str:
    """`email: rule R since T (set by forward-auth, request of U); seen: …` (`user`: whom to
    name when the hold did not record it)."""
    return (
        f"{hold.resource}: rule {hold.rule or '-'} since {when(hold.created_at)} "
        f"(set by {hold.created_by or '-'}, request of {hold.user or user or '-'}); "
        f"seen: {describe_seen(hold.seen, signals=False)}"
    )


def describe_verdict(verdict: VerdictRecord) -> str:
    """`verdict compromised since T (scan S, source)`."""
    return (
        f"verdict {verdict.verdict} since {when(verdict.created_at)} "
        f"(scan {verdict.scan_id}, {verdict.source})"
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def hold_json(hold: HoldRecord) -> dict[str, object]:
    return {
        "resource": hold.resource,
        "rule": hold.rule,
        "reason": hold.reason,
        "user": hold.user,
        "seen": dict(hold.seen) if hold.seen is not None else None,
        "since": hold.created_at.isoformat(),
        "by": hold.created_by,
        "released_at": _iso(hold.released_at),
        "released_by": hold.released_by,
    }


def verdict_json(verdict: VerdictRecord) -> dict[str, object]:
    return {
        "verdict": verdict.verdict,
        "scan_id": verdict.scan_id,
        "source": verdict.source,
        "since": verdict.created_at.isoformat(),
        "evidence": [dict(e) for e in verdict.evidence],
        "cleared_at": _iso(verdict.cleared_at),
        "cleared_by": verdict.cleared_by,
    }


def device_record_json(record: DeviceRecord) -> dict[str, object]:
    """A device as JSON: the admin API's keys (`device_ref` … `last_seen`) and its holds and
    verdicts, each with rule or scan, since, by whom and what was seen."""
    return {
        "device_ref": record.device_ref,
        "user": record.user,
        "vendor": record.vendor,
        "platform": record.platform,
        "model": record.model,
        "keys": [{"kind": k, "value": v} for k, v in record.keys],
        "verdict": record.verdict,
        "held": list(record.held),
        "last_seen": record.last_seen.isoformat(),
        "first_seen": _iso(record.first_seen),
        "holds": [hold_json(h) for h in record.holds],
        "verdicts": [verdict_json(v) for v in record.verdicts],
    }


__all__ = [
    "COMPROMISED",
    "DeviceRecord",
    "HoldRecord",
    "VerdictRecord",
    "describe_hold",
    "describe_seen",
    "describe_verdict",
    "device_record_json",
    "hold_json",
    "seen_device",
    "seen_json",
    "verdict_json",
    "when",
]
