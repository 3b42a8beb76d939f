"""Who a policy affects, per rule, before its date: the list a unit needs before its Monday.

Impact asks the engine, not a second matcher: for every inventory device of a user in a
rule's scope, it decides a request at the moment the rule takes effect (or at `--at` if
later) and reads whether that rule decided, would have decided (report-only), or was lifted
by an exception.

Every rule gets an entry, in policy order. One that reaches no device says so ("matches
nobody", and why as far as impact can tell): a rule switched off by a mistake must show up
as such, not vanish from the list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from devicegate.inventory import InventoryDevice
from devicegate.model import Request, Signals, device_label
from devicegate.policy import Snapshot, decide
from devicegate.policy.compile import CompiledRule


@dataclass(frozen=True, slots=True)
class ImpactRow:
    rule: str
    unit: str
    user: str
    device_id: str
    device: str
    effective: datetime
    status: str  # "block", "quarantine", "warn", "allow", "report-only:block", "excepted", …
    detail: str


@dataclass(frozen=True, slots=True)
class RuleImpact:
    """One rule's reach: its devices, the users its scope covers, and a note when it reaches
    no device (`None` when it does)."""

    rule: CompiledRule
    users_in_scope: int
    rows: tuple[ImpactRow, ...]
    note: str | None


def inventory_signals(device: InventoryDevice) -> Signals:
    """The signals a service would present for an inventory device (strongest first)."""
    if device.mdm_id:
        return Signals(mdm_id=device.mdm_id)
    if device.cert_fingerprint:
        return Signals(tls_fingerprint=device.cert_fingerprint)
    if device.activesync_id:
        return Signals(activesync_device_id=device.activesync_id)
    return Signals(mac=device.mac)


def impact(snapshot: Snapshot, at: datetime) -> list[RuleImpact]:
    """Every rule of the snapshot, in policy order, with the inventory devices it reaches."""
    return [_rule_impact(snapshot, rule, at) for rule in snapshot.rules]


def _rule_impact(snapshot: Snapshot, rule: CompiledRule, at: datetime) -> RuleImpact:
    in_scope = {user.id for user in snapshot.directory.users if rule.scope_depth(user) is not None}
    if rule.until_at is not None and rule.until_at <= at:
        ended = f"matches nobody: it is no longer in force on {at.date()}"
        return RuleImpact(rule, len(in_scope), (), ended)
    moment = max(at, rule.start_at)
    resources = sorted(rule.resources) if rule.resources else sorted(snapshot.resources)
    rows: list[ImpactRow] = []
    for device in snapshot.inventory:
        user = snapshot.directory.get(device.user) if device.user else None
        if user is None or user.id not in in_scope:
            continue
        found = _outcome(snapshot, rule, user.id, moment, inventory_signals(device), resources)
        if found is None:
            continue
        label = device_label(device.vendor, device.platform, device.model)
        rows.append(
            ImpactRow(
                rule.id, user.unit, user.id, device.device_id, label, moment, found[0], found[1]
            )
        )
    note = None if rows else _why_nobody(rule, in_scope)
    return RuleImpact(rule, len(in_scope), tuple(rows), note)


def _outcome(
    snapshot: Snapshot,
    rule: CompiledRule,
    user: str,
    moment: datetime,
    signals: Signals,
    resources: list[str],
) -> tuple[str, str] | None:
    """(status, detail) of the first resource on which `rule` decides, is lifted by an
    exception, or would decide (report-only); None when it plays no part."""
    for resource in resources:
        decision = decide(snapshot, Request(user, resource, moment, signals))
        if decision.rule == rule.id:
            return decision.action.value, f"{resource}: {decision.message}"
        if rule.id in decision.excepted:
            reason = next((r for r in decision.reasons if f"`{rule.id}`" in r), "exception")
            return "excepted", reason
        hit = next((h for h in decision.report_only if h.rule == rule.id), None)
        if hit is not None:
            return f"report-only:{hit.action.value}", f"{resource}: {hit.reason}"
    return None


def _why_nobody(rule: CompiledRule, in_scope: set[str]) -> str:
    if not in_scope:
        return "matches nobody: no user in the directory is in its scope"
    count = len(in_scope)
    text = (
        f"matches nobody: no inventory device of the {count} user{'s' if count != 1 else ''} "
        "in its scope matches it"
    )
    live = [
        f"`{name}`"
        for name in ("spoofing_suspected", "compromised")
        if rule.when is not None and getattr(rule.when, name) is True
    ]
    if live:
        return f"{text} ({' and '.join(live)}: known from live signals and verdicts only)"
    return f"{text} (or a deeper or more severe rule decides first)"
