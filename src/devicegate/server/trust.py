"""Who may ask `devicegate serve` to enforce: the trusted proxies.

Every endpoint that takes the user from a header or records evidence (forward-auth, the
Dovecot and RADIUS endpoints, `/v1/decide`, the Postfix policy port) answers only peers whose
address is in `--trusted-proxy` (default: loopback). A proxy on another host is added by its
address and, where the network between them is shared, also proves itself with the shared
secret of `--proxy-secret-file` in the `X-Devicegate-Proxy-Secret` header: an address can be
borrowed on a shared segment, a secret cannot. Anything else gets 403 and nothing is recorded.

`/v1/check` is a dry run that records nothing, and `/healthz`, `/metrics` and `/openapi.json`
reveal no user data: those answer any peer. The admin endpoints need their bearer token.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from devicegate.boundedcache import BoundedCache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

LOOPBACK = ("127.0.0.0/8", "::1/128")
SECRET_HEADER = "x-devicegate-proxy-secret"
SECRET_HEADER_BYTES = SECRET_HEADER.encode()
#: distinct peer addresses remembered (a proxy fleet is small; a scan is not kept)
_PEERS_MAX = 4096


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """CIDR blocks or single addresses; ValueError naming the first bad one."""
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"`{value}` is not an IP address or CIDR block") from None
    return tuple(out)


@dataclass(eq=False)
class ProxyTrust:
    """The trusted proxies of one server: addresses, and the shared secret if one is set."""

    networks: tuple[Network, ...] = field(default_factory=lambda: parse_networks(LOOPBACK))
    secret: bytes | None = None
    _peers: BoundedCache[str, bool] = field(
        default_factory=lambda: BoundedCache(_PEERS_MAX), repr=False
    )

    def address_trusted(self, address: str | None) -> bool:
        """Whether `address` is one of the trusted proxies (cached per address)."""
        if not address:
            return False
        known = self._peers.get(address)
        if known is not None:
            return known
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            trusted = False
        else:
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            trusted = any(ip in network for network in self.networks)
        return self._peers.put(address, trusted)

    def refusal(self, peer: str | None, secret: bytes | str | None) -> str | None:
        """Why this peer may not ask (None: it may). `secret` is the secret header's value."""
        if not self.address_trusted(peer):
            return f"`{peer or 'unknown'}` is not a trusted proxy"
        if self.secret is not None:
            given = secret.encode("latin-1") if isinstance(secret, str) else secret
            if given is None or not hmac.compare_digest(given.strip(), self.secret):
                return "the proxy secret is missing or wrong"
        return None


#: what a refused peer is told, and its hint (the same on every endpoint)
REFUSED_HINT = "add the proxy's address with --trusted-proxy (and its --proxy-secret-file secret)"
