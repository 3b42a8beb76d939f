"""What the store says about a device, as values: its holds, its verdicts, and what a hold saw.

These cross into the CLI and the admin API; both print them, neither queries tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from devicegate.model import SIGNAL_FIELDS, DeviceProfile, Signals

COMPROMISED = "compromised"

#: Longest signal value a hold keeps in `seen` (adapters bound headers to 4 KiB; a hold is
#: read by people, and a client must not be able to grow the table without bound).
SEEN_VALUE_MAX = 1024


def seen_json(signals: Signals, profile: DeviceProfile) -> dict[str, object]:
    """What a hold records of the request that caused it (`Store.hold(seen=…)`): the device
    as identified (vendor, platform, model, OS version), its User-Agent, and every signal
    the request carried. Every value is client-chosen: it is kept for people to read and is
    never trusted or interpreted again."""
    carried = {
        name: value[:SEEN_VALUE_MAX]
        for name in SIGNAL_FIELDS
        if isinstance(value := getattr(signals, name), str) and value
    }
    return {
        "vendor": profile.vendor,
        "platform": profile.platform,
        "model": profile.model,
        "os_version": profile.os_version,
        "user_agent": carried.get("user_agent"),
        "signals": carried,
    }


def describe_seen(seen: Mapping[str, Any] | None) -> str:
    """One line a person reads: `Apple iOS iPhone14,2, user agent `…``, or `-` when the hold
    recorded nothing (holds set before the store kept it)."""
    if not seen:
        return "-"
    device = " ".join(str(seen[k]) for k in ("vendor", "platform", "model") if seen.get(k))
    parts = [device or "unidentified"]
    agent = seen.get("user_agent")
    if agent:
        parts.append(f"user agent `{agent}`")
    signals = seen.get("signals")
    if isinstance(signals, Mapping):
        others = [f"{k}={v}" for k, v in signals.items() if k != "user_agent" and v]
        if others:
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


__all__ = [
    "COMPROMISED",
    "DeviceRecord",
    "HoldRecord",
    "VerdictRecord",
    "describe_seen",
    "seen_json",
]
