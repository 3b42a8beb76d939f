"""Who a policy affects, per rule, before its date: the list a unit needs before its Monday.

Impact asks the engine, not a second matcher: for every inventory device of a user in a
rule's scope, it decides a request at the moment the rule takes effect (or at `--at` if
later) and reads whether that rule decided, would have decided (report-only), or was lifted
by an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from devicegate.inventory import InventoryDevice
from devicegate.model import Action, Request, Signals
from devicegate.policy import Snapshot, decide


@dataclass(frozen=True, slots=True)
class ImpactRow:
    rule: str
    unit: str
    user: str
    device_id: str
    device: str
    effective: datetime
    status: str  # "block", "quarantine", "warn", "report-only:block", "excepted", …
    detail: str


def inventory_signals(device: InventoryDevice) -> Signals:
    """The signals a service would present for an inventory device (strongest first)."""
    if device.mdm_id:
        return Signals(mdm_id=device.mdm_id)
    if device.cert_fingerprint:
        return Signals(tls_fingerprint=device.cert_fingerprint)
    if device.activesync_id:
        return Signals(activesync_device_id=device.activesync_id)
    return Signals(mac=device.mac)


def impact(snapshot: Snapshot, at: datetime) -> list[ImpactRow]:
    rows: list[ImpactRow] = []
    for rule in snapshot.rules:
        if rule.effect is Action.ALLOW:
            continue
        if rule.until_at is not None and rule.until_at <= at:
            continue
        moment = max(at, rule.start_at)
        resources = sorted(rule.resources) if rule.resources else sorted(snapshot.resources)
        for device in snapshot.inventory:
            if not device.user:
                continue
            user = snapshot.directory.get(device.user)
            if user is None or rule.scope_depth(user) is None:
                continue
            signals = inventory_signals(device)
            found: tuple[str, str] | None = None
            for resource in resources:
                decision = decide(snapshot, Request(user.id, resource, moment, signals))
                if decision.rule == rule.id:
                    found = (decision.action.value, f"{resource}: {decision.message}")
                    break
                if rule.id in decision.excepted:
                    found = (
                        "excepted",
                        next((r for r in decision.reasons if f"`{rule.id}`" in r), "exception"),
                    )
                    break
                hit = next((h for h in decision.report_only if h.rule == rule.id), None)
                if hit is not None:
                    found = (f"report-only:{hit.action.value}", f"{resource}: {hit.reason}")
                    break
            if found is None:
                continue
            label = (
                " ".join(part for part in (device.vendor, device.model or device.platform) if part)
                or "unknown device"
            )
            rows.append(
                ImpactRow(
                    rule.id, user.unit, user.id, device.device_id, label, moment, found[0], found[1]
                )
            )
    return rows
