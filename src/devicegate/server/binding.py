"""What a request may claim about *whose* device it is.

Identification works on signals alone (`identify.Identifier`, cached per Signals), but two
kinds of evidence only mean something together with the user who presented them:

* a client certificate (or MDM id) makes a device *attested* only when the inventory's owner
  of that certificate is the requesting user (or the record names no owner): someone holding a
  colleague's certificate does not borrow the colleague's attested laptop;
* a quarantine hold lands on an inventory device only when the request's link to it is
  attested or its owner is the requesting user. A link through a client-chosen identifier —
  an ActiveSync `DeviceId` copied from a colleague — holds only what was actually seen: this
  user presenting these identifiers (`scoped_keys`), so the colleague's own requests are not
  refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import replace

from devicegate.identify import identify
from devicegate.inventory import InventoryDevice, normalise_key
from devicegate.model import DeviceProfile, Signals, Trust
from devicegate.policy import Snapshot

#: a device key that holds only for one user: `user+<kind>`, the value a digest of both
SCOPED_PREFIX = "user+"
_ATTESTING = (("tls_fingerprint", "cert_fingerprint"), ("mdm_id", "mdm_id"))


def _owned_by_other(snapshot: Snapshot, device: InventoryDevice | None, user: str) -> bool:
    if device is None or not device.user:
        return False
    return not _owned_by(snapshot, device, user)


def _owned_by(snapshot: Snapshot, device: InventoryDevice | None, user: str) -> bool:
    if device is None or not device.user:
        return False
    owner = snapshot.resolve_user(device.user)
    return owner is not None and owner.id == user


def bind_signals(snapshot: Snapshot, user: str, signals: Signals) -> tuple[Signals, str | None]:
    """`signals` without the attesting identifiers that belong to another user's device, and
    a note saying what was set aside (None when nothing was). `user` is canonical."""
    if signals.tls_fingerprint is None and signals.mdm_id is None:
        return signals, None
    dropped: dict[str, None] = {}
    notes = []
    for field, kind in _ATTESTING:
        value = getattr(signals, field)
        device = snapshot.inventory.lookup(kind, value) if value else None
        if _owned_by_other(snapshot, device, user):
            assert device is not None
            dropped[field] = None
            notes.append(
                f"{kind} of inventory device `{device.device_id}` belongs to another user: "
                "not attested for this user"
            )
    if not dropped:
        return signals, None
    return replace(signals, **dropped), "; ".join(notes)  # type: ignore[arg-type]


def scoped_key(user: str, kind: str, value: str) -> tuple[str, str]:
    """The key of an identifier seen with one user: it holds only when that user presents it."""
    digest = hashlib.sha256(f"{user}\n{kind}\n{normalise_key(kind, value)}".encode()).hexdigest()
    return SCOPED_PREFIX + kind, digest[:40]


def scoped_keys(user: str, keys: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple(scoped_key(user, kind, value) for kind, value in keys)


def hold_keys(
    snapshot: Snapshot, user: str, signals: Signals, profile: DeviceProfile
) -> tuple[tuple[str, str], ...]:
    """The keys a quarantine hold for this request lands on (see the module docstring)."""
    device_id = profile.key("device_id")
    if device_id is not None:
        attested = any(
            ev.trust is Trust.ATTESTED and ev.source.startswith("inventory/")
            for ev in profile.evidence
        )
        device = snapshot.inventory.lookup("device_id", device_id)
        if attested or _owned_by(snapshot, device, user):
            return profile.keys
    own = identify(signals).keys  # what the request itself carried, without the inventory
    return scoped_keys(user, own)
