"""Settings of one `devicegate serve` process (every CLI flag lands here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from devicegate.adapters.forward_auth import HeaderNames
from devicegate.adapters.postfix import DEFAULT_WINDOW
from devicegate.adapters.radius import DEFAULT_QUARANTINE_VLAN
from devicegate.defaults import POSTFIX_MATCH, REPLAY_CACHE
from devicegate.policy.settled import SETTLE
from devicegate.server.trust import LOOPBACK, Network, parse_networks


@dataclass(frozen=True, slots=True)
class Limits:
    """What one client may hold of the server: bounded so that a slow or hostile peer costs
    a bounded amount (docs/security.md)."""

    header_timeout: float = 10.0  # seconds to send a request's head, once it began
    max_head: int = 64 * 1024  # bytes of request line and headers
    max_connections: int = 4096  # open HTTP connections; more are closed at once
    keep_alive: float = 75.0  # seconds an idle HTTP connection is kept (> nginx's 60 s)
    postfix_idle: float = 300.0  # seconds an idle Postfix connection is kept (Postfix: 300)
    postfix_request_timeout: float = 10.0  # seconds to finish a request once it began
    postfix_max_connections: int = 1024


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """What to load and how to serve. `admin_token` None disables the admin endpoints (401)."""

    policy: tuple[Path, ...]
    directory: Path | None = None
    devices: Path | None = None
    store_url: str = "sqlite:///devicegate.db"
    host: str = "127.0.0.1"
    port: int = 8181
    admin_token: str | None = None
    headers: HeaderNames = field(default_factory=HeaderNames)
    trusted_proxies: tuple[Network, ...] = field(default_factory=lambda: parse_networks(LOOPBACK))
    proxy_secret: bytes | None = None
    state_refresh: float = 1.0  # seconds: the propagation bound of holds between servers
    sighting_interval: float = 60.0  # seconds: one sighting per (user, signals, adapter)
    reload_settle: float = SETTLE  # seconds the files must rest before a reload reads them
    log_ack: str = "durable"  # or "buffered": see server/decision_log.py
    postfix_port: int | None = None
    postfix_window: float = DEFAULT_WINDOW.total_seconds()  # how old a sighting SMTP may use
    postfix_match: str = POSTFIX_MATCH  # "any" identified sighting in the window, or "newest"
    radius_quarantine_vlan: str = DEFAULT_QUARANTINE_VLAN
    #: the share of users or devices a source sync may remove before it is refused
    max_removal: float | None = None
    #: decisions older than this are deleted, behind the rollups (None: kept for good)
    log_retention: timedelta | None = None
    #: answers each endpoint (forward-auth, Dovecot, Postfix) keeps for replay
    replay_cache: int = REPLAY_CACHE
    limits: Limits = field(default_factory=Limits)
