"""FreeRADIUS `rlm_rest` (authorize section): office Wi-Fi (802.1X) and VPN.

rlm_rest POSTs the request's attributes as JSON, each one
`{"type": "string", "value": ["…"]}`. devicegate reads `User-Name`, `Calling-Station-Id`
(the client's MAC on Wi-Fi; an address on most VPNs), `NAS-Port-Type`, `NAS-Identifier`
and `NAS-IP-Address`. The device is identified from the MAC (vendor prefix; a randomised,
locally administered address is recognised as telling nothing) and the inventory (a MAC an
MDM registered is attested).

Answers (rlm_rest maps the HTTP status to the module's return code):

    allow       → 200 {}                                   (ok)
    warn        → 200 {"reply:Reply-Message": …}           (updated: accepted, told why)
    quarantine  → 200 Tunnel-Type VLAN, Tunnel-Medium-Type IEEE-802,
                  Tunnel-Private-Group-Id <quarantine VLAN>, Reply-Message   (accepted, fenced)
    block       → 401 {"reply:Reply-Message": …}           (reject)

A body that is not usable (not JSON, no `User-Name`, wrong shapes) is answered 401 with a
Reply-Message: the access is rejected, never let through. With devicegate down rlm_rest
returns `fail` and FreeRADIUS rejects.

The request carries the user's clear-text password (`User-Password`). This module never
keeps, logs or returns it: only the attributes named above are read.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from devicegate.adapters.base import Adapter, DecisionRequest, DecisionService
from devicegate.errors import SignalError
from devicegate.model import Action, Decision, Signals

log = logging.getLogger("devicegate.adapters.radius")

ADAPTER = Adapter("radius")
#: An answer: the HTTP status rlm_rest maps to its return code, and the reply attributes.
Answer = tuple[int, dict[str, object]]
DEFAULT_QUARANTINE_VLAN = "999"
MAX_BODY = 64 * 1024
MAX_VALUE = 253  # a RADIUS attribute value is at most 253 octets
MALFORMED_MESSAGE = "devicegate: malformed authorization request"
#: Attributes read; everything else (User-Password above all) is never looked at.
READ = ("User-Name", "Calling-Station-Id", "NAS-Port-Type", "NAS-Identifier", "NAS-IP-Address")


@dataclass(frozen=True, slots=True)
class RadiusRequest:
    """The attributes of one rlm_rest request devicegate uses."""

    user: str
    calling_station: str | None
    nas_port_type: str | None
    nas_identifier: str | None
    nas_ip: str | None

    @property
    def resource(self) -> str:
        """`vpn` for a virtual port (tunnels), `wifi` for everything else (802.1X)."""
        return "vpn" if (self.nas_port_type or "").lower() == "virtual" else "wifi"

    def signals(self) -> Signals:
        """A MAC-shaped Calling-Station-Id is a device signal; an address is not."""
        value = self.calling_station
        if not value:
            return Signals()
        if _mac_shaped(value):
            return Signals(mac=value)
        return Signals(client_ip=value)

    def decision_request(self) -> DecisionRequest:
        return DecisionRequest(self.user, self.resource, self.signals())


_HEX = frozenset("0123456789abcdefABCDEF")


def _mac_shaped(value: str) -> bool:
    digits = [ch for ch in value if ch not in ":-. "]
    return len(digits) == 12 and all(ch in _HEX for ch in digits)


def _first(data: dict[str, object], name: str) -> str | None:
    entry = data.get(name)
    if entry is None:
        return None
    value: object = entry.get("value") if isinstance(entry, dict) else entry
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise SignalError(f"radius attribute `{name}` has no string value")
    text = str(value)
    if len(text) > MAX_VALUE:
        raise SignalError(f"radius attribute `{name}` is longer than {MAX_VALUE} characters")
    return text


def parse_request(body: bytes) -> RadiusRequest:
    """rlm_rest JSON → RadiusRequest; SignalError for anything unusable (never other errors)."""
    if len(body) > MAX_BODY:
        raise SignalError(f"radius request is longer than {MAX_BODY} bytes")
    try:
        data = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):  # JSONDecodeError, bad UTF-8, a 5,000-digit number
        raise SignalError("radius request is not JSON") from None
    if not isinstance(data, dict):
        raise SignalError("radius request is not a JSON object")
    user = _first(data, "User-Name")
    if user is None or not user.strip():
        raise SignalError("radius request has no `User-Name`")
    return RadiusRequest(
        user=user.strip(),
        calling_station=_first(data, "Calling-Station-Id"),
        nas_port_type=_first(data, "NAS-Port-Type"),
        nas_identifier=_first(data, "NAS-Identifier"),
        nas_ip=_first(data, "NAS-IP-Address"),
    )


def _message(decision: Decision) -> str:
    return (" ".join(decision.message.split()) or "access refused by device policy")[:MAX_VALUE]


#: A request that cannot be used: rejected, never let through.
MALFORMED: Answer = (401, {"reply:Reply-Message": MALFORMED_MESSAGE})


def parse(body: bytes) -> DecisionRequest | Answer:
    """The adapter's `parse`: the request to decide, or the rejection of a malformed one
    (logged)."""
    try:
        return parse_request(body).decision_request()
    except SignalError as exc:
        log.warning("radius: rejected a malformed request: %s", exc.message)
        return MALFORMED


def render(decision: Decision, *, quarantine_vlan: str = DEFAULT_QUARANTINE_VLAN) -> Answer:
    """The adapter's `render`: a decision as rlm_rest's (HTTP status, reply attributes)."""
    if decision.action is Action.BLOCK:
        return 401, {"reply:Reply-Message": _message(decision)}
    if decision.action is Action.QUARANTINE:
        return 200, {
            "reply:Tunnel-Type": "VLAN",
            "reply:Tunnel-Medium-Type": "IEEE-802",
            "reply:Tunnel-Private-Group-Id": quarantine_vlan,
            "reply:Reply-Message": _message(decision),
        }
    if decision.action is Action.WARN:
        return 200, {"reply:Reply-Message": _message(decision)}
    return 200, {}


def answer(
    service: DecisionService,
    body: bytes,
    *,
    quarantine_vlan: str = DEFAULT_QUARANTINE_VLAN,
) -> Answer:
    """`POST /v1/radius/authorize` through any `DecisionService` (the route of `devicegate
    serve` calls this)."""
    parsed = parse(body)
    if not isinstance(parsed, DecisionRequest):
        return parsed
    decision = service.decide(parsed.user, parsed.resource, parsed.signals, adapter=ADAPTER)
    return render(decision, quarantine_vlan=quarantine_vlan)
