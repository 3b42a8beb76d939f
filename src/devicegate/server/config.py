"""Settings of one `devicegate serve` process (every CLI flag lands here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from devicegate.adapters.forward_auth import HeaderNames


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
    state_refresh: float = 1.0  # seconds: the propagation bound of holds between servers
    sighting_interval: float = 60.0  # seconds: one sighting per (user, signals, adapter)
    log_ack: str = "durable"  # or "buffered": see server/declog.py
    postfix_port: int | None = None
    postfix_window: float = 7 * 86400.0  # seconds: how old a sighting SMTP may rely on
