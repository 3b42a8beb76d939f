"""The console's settings, as the command line gives them (`devicegate console`)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROLES = ("viewer", "operator")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class OidcSettings:
    """Sign-in by OpenID Connect: authorization code with PKCE (S256)."""

    issuer: str  # the provider's issuer URL; its discovery document is read from it
    client_id: str
    client_secret: str | None
    groups_claim: str = "groups"
    scopes: str = "openid email profile"


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """Sign-in by a reverse proxy that authenticated the user (oauth2-proxy style): its
    headers are believed only from `trusted` addresses."""

    trusted: tuple[Network, ...]
    user_header: str = "x-auth-request-user"
    groups_header: str = "x-auth-request-groups"


@dataclass(frozen=True, slots=True)
class ConsoleConfig:
    policy: tuple[Path, ...]
    directory: Path | None
    devices: Path | None
    store_url: str
    host: str = "127.0.0.1"
    port: int = 8282
    #: Host header values accepted (DNS rebinding); empty: the listening host and localhost
    allowed_hosts: tuple[str, ...] = ()
    #: the URL people open (for the OIDC redirect; https makes cookies Secure)
    public_url: str | None = None
    session_secret: bytes | None = None
    session_hours: float = 8.0
    dev_login: str | None = None
    oidc: OidcSettings | None = None
    proxy: ProxySettings | None = None
    #: group name → role, for OIDC's groups claim and the proxy's groups header
    groups: dict[str, str] = field(default_factory=dict)
    candidates: Path | None = None
    locale: str | None = None  # a fixed locale; None: from Accept-Language
    window_days: int = 7
    at: datetime | None = None  # the console's "now" (demos, looking back); None: the clock
    rollup_interval: float = 2.0
    #: seconds of rollup work a round at most: under heavy traffic the rollups trail the log
    #: rather than take a core from `serve` (the pruner catches them up before it deletes)
    rollup_budget: float = 0.2
    reload_interval: float = 2.0
    live_poll: float = 0.5

    @property
    def secure_cookies(self) -> bool:
        return bool(self.public_url and self.public_url.startswith("https://"))

    def hosts(self) -> list[str]:
        if self.allowed_hosts:
            return list(self.allowed_hosts)
        return sorted({self.host, "127.0.0.1", "localhost", "::1", "[::1]"})


def is_loopback(host: str) -> bool:
    """Whether listening on `host` reaches this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


__all__ = ["ROLES", "ConsoleConfig", "OidcSettings", "ProxySettings", "is_loopback"]
