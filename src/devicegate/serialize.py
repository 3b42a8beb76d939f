"""JSON shapes of the vocabulary, shared by the CLI, the HTTP API and the decision log.

One function per noun so that every front end prints exactly the same keys (the decision
corpus runs through all of them and compares these dictionaries).
"""

from __future__ import annotations

from typing import Any

from devicegate.model import SIGNAL_FIELDS, Decision, DeviceProfile, RuleHit, Signals


def profile_json(profile: DeviceProfile) -> dict[str, Any]:
    return {
        "vendor": profile.vendor,
        "platform": profile.platform,
        "model": profile.model,
        "os_version": profile.os_version,
        "kind": profile.kind.value,
        "ownership": profile.ownership.value,
        "managed": profile.managed,
        "device_id": profile.device_id,
        "trust": profile.trust.value if profile.trust else None,
        "confidence": round(profile.confidence, 3),
        "identified": profile.identified,
        "ambiguous": list(profile.ambiguous),
        "claims": {attr: list(values) for attr, values in profile.claims},
        "evidence": [
            {
                "signal": ev.signal,
                "trust": ev.trust.value,
                "source": ev.source,
                "says": dict(ev.says),
                "note": ev.note,
                "confidence": round(ev.confidence, 3),
            }
            for ev in profile.evidence
        ],
        "conflicts": [
            {
                "attribute": c.attribute,
                "claims": [{"signal": s, "value": v} for s, v in c.claims],
                "note": c.note,
            }
            for c in profile.conflicts
        ],
    }


def hit_json(hit: RuleHit) -> dict[str, Any]:
    return {
        "rule": hit.rule,
        "action": hit.action.value,
        "mode": hit.mode,
        "depth": hit.depth,
        "reason": hit.reason,
    }


def decision_json(decision: Decision, *, with_device: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "action": decision.action.value,
        "rule": decision.rule,
        "message": decision.message,
        "report_only": [hit_json(h) for h in decision.report_only],
        "matched": [hit_json(h) for h in decision.matched],
        "excepted": list(decision.excepted),
        "spoofing_suspected": decision.spoofing_suspected,
        "effective_from": decision.effective_from.isoformat() if decision.effective_from else None,
        "reasons": list(decision.reasons),
        "policy_version": decision.policy_version,
    }
    if with_device:
        out["device"] = profile_json(decision.device)
    return out


def signals_json(signals: Signals) -> dict[str, str]:
    """The signals an access carried, without the empty ones (`signals_from_json` reads it
    back)."""
    return {
        name: value
        for name in SIGNAL_FIELDS
        if isinstance(value := getattr(signals, name), str) and value
    }


def signals_from_json(data: dict[str, Any]) -> Signals:
    """Signals from a JSON object; unknown keys are an error naming the key."""
    from devicegate.errors import SignalError

    unknown = set(data) - set(SIGNAL_FIELDS)
    if unknown:
        raise SignalError(
            f"unknown signal `{sorted(unknown)[0]}`", hint="known: " + ", ".join(SIGNAL_FIELDS)
        )
    values = {}
    for key, value in data.items():
        if value is None:
            continue
        if not isinstance(value, str):
            raise SignalError(f"signal `{key}` must be a string")
        values[key] = value
    return Signals(**values)
