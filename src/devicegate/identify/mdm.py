"""The device inventory (MDM) as an extractor: what an enrolment knows for certain.

Look-ups, in order of how far the identifier can be believed (inventory.KEY_KINDS):

=====================  ================================  =========
signal                 inventory key                     trust
=====================  ================================  =========
`mdm_id`               `mdm_id`                          attested
`tls_fingerprint`      `cert_fingerprint` (mTLS, EAP)    attested
ActiveSync DeviceId    `activesync_id`                   reported
MAC address            `mac`                             inferred
=====================  ================================  =========

The DeviceId and the MAC are taken from the keys earlier extractors found (so a base64
ActiveSync query or a Cisco-notation MAC need decoding only once). A record found through
a weak key is only as credible as that key: someone who copies a colleague's DeviceId gets
the colleague's record, at `reported` trust, never `attested`.
"""

from __future__ import annotations

from collections.abc import Mapping

from devicegate.identify import apple
from devicegate.identify.base import NOTHING, Extracted, ExtractFn, clean, make_evidence
from devicegate.identify.names import canonical_platform, canonical_vendor, implied_vendor
from devicegate.inventory import Inventory, InventoryDevice
from devicegate.model import DeviceKind, Evidence, Ownership, Signals, Trust

_CONFIDENCE = {Trust.ATTESTED: 0.95, Trust.REPORTED: 0.7, Trust.INFERRED: 0.5}

_KIND = {
    "macOS": DeviceKind.DESKTOP,
    "Windows": DeviceKind.DESKTOP,
    "Linux": DeviceKind.DESKTOP,
    "ChromeOS": DeviceKind.DESKTOP,
    "iPadOS": DeviceKind.TABLET,
    "watchOS": DeviceKind.WATCH,
    "tvOS": DeviceKind.TV,
}


def _record_evidence(device: InventoryDevice, signal: str, key: str, trust: Trust) -> Evidence:
    platform = canonical_platform(device.platform)
    vendor = canonical_vendor(device.vendor) or implied_vendor(platform)
    model = device.model
    kind = _KIND.get(platform or "")
    if model:
        decoded = apple.hardware(model)
        if decoded is not None:
            model, hw_platform, hw_kind = decoded
            kind = hw_kind
            platform = platform or hw_platform
        model = clean(model, 64)
    says: list[tuple[str, str | None]] = [
        ("vendor", vendor),
        ("platform", platform),
        ("model", model),
        ("os_version", device.os_version),
        ("kind", kind.value if kind else None),
        ("device_id", device.device_id),
    ]
    if device.ownership is not Ownership.UNKNOWN:
        says.append(("ownership", device.ownership.value))
    if device.managed is not None:
        says.append(("managed", str(device.managed).lower()))
    if device.mdm_threat is not None:
        # attested data a rule can name (`mdm_threat`); it quarantines nothing by itself
        says.append(("mdm_threat", clean(device.mdm_threat, 64)))
    return make_evidence(
        signal,
        trust,
        f"inventory/{key}",
        says,
        confidence=_CONFIDENCE[trust],
        note=f"inventory record `{clean(device.device_id, 64)}` matched by {key}",
    )


def inventory_extractor(inventory: Inventory) -> ExtractFn:
    """An extractor bound to one immutable inventory snapshot."""

    def extract_inventory(signals: Signals, keys: Mapping[str, str]) -> Extracted:
        attempts = (
            ("mdm_id", "mdm_id", signals.mdm_id, Trust.ATTESTED),
            ("tls_fingerprint", "cert_fingerprint", signals.tls_fingerprint, Trust.ATTESTED),
            (
                "activesync_device_id",
                "activesync_id",
                keys.get("activesync_id") or signals.activesync_device_id,
                Trust.REPORTED,
            ),
            ("mac", "mac", keys.get("mac"), Trust.INFERRED),
        )
        if not any(value for _, _, value, _ in attempts):
            return NOTHING
        evidence: list[Evidence] = []
        found_keys: list[tuple[str, str]] = []
        seen: set[str] = set()
        for signal, kind, value, trust in attempts:
            if not value or len(value) > 512:
                continue
            device = inventory.lookup(kind, value)
            if device is None:
                if trust is Trust.ATTESTED:
                    evidence.append(
                        make_evidence(
                            signal,
                            Trust.REPORTED,
                            f"inventory/{kind}",
                            (),
                            confidence=0.0,
                            note=f"{kind} `{clean(value, 64)}` is not in the inventory: "
                            "nothing attested",
                        )
                    )
                continue
            if device.device_id in seen:
                continue
            seen.add(device.device_id)
            evidence.append(_record_evidence(device, signal, kind, trust))
            found_keys.extend(device.identifiers())
        if len(seen) > 1:
            evidence.append(
                make_evidence(
                    "inventory",
                    Trust.REPORTED,
                    "inventory",
                    (),
                    confidence=0.0,
                    note="identifiers of this access match different inventory records: "
                    + ", ".join(f"`{clean(d, 64)}`" for d in sorted(seen)),
                )
            )
        return Extracted(evidence=tuple(evidence), keys=tuple(found_keys))

    return extract_inventory
