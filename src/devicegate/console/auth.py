"""Who is asking, and what they may do.

Nobody is anonymous. A request is signed in by exactly one of:

* `--dev-login ROLE` — every visitor is the local user `local-dev` with that role (demos and
  trials only; the console then listens on loopback alone);
* trusted proxy headers — a reverse proxy that authenticated the user (oauth2-proxy style)
  names the user and groups in headers, believed only from the configured proxy addresses;
* an OIDC session — a signed, HttpOnly, SameSite=Lax cookie (Secure under https) that
  expires, made by the sign-in in `oidc.py`.

Roles: `viewer` reads every page; `operator` may also release held devices. A group maps to
a role by `--viewer-group`/`--operator-group`; the strongest wins; no mapped group, no
entry. Every state-changing request carries the session's CSRF token (`csrf_ok`).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from starlette.requests import Request

from devicegate.console.config import ROLES, ConsoleConfig

DEV_USER = "local-dev"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True, slots=True)
class Principal:
    user: str
    role: str
    via: str  # dev | proxy | oidc

    @property
    def operator(self) -> bool:
        return self.role == "operator"


class Forbidden(Exception):
    """The request is signed in but may not do this, or comes from where it may not.
    `message` is a catalog message with `%(name)s` placeholders filled from `values`."""

    def __init__(self, message: str, **values: str) -> None:
        super().__init__(message % values if values else message)
        self.message = message
        self.values = values


def role_of(groups: Iterable[str], mapping: Mapping[str, str]) -> str | None:
    """The strongest role any of `groups` maps to (None: no console role)."""
    found = {mapping[g] for g in groups if g in mapping}
    for role in reversed(ROLES):
        if role in found:
            return role
    return None


def _peer_trusted(request: Request, config: ConsoleConfig) -> bool:
    assert config.proxy is not None
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in config.proxy.trusted)


def principal(request: Request, config: ConsoleConfig) -> Principal | None:
    """Who this request is, or None (not signed in). Raises Forbidden for proxy headers
    from an untrusted peer, or a signed-in user without a console role."""
    if config.dev_login is not None:
        return Principal(DEV_USER, config.dev_login, "dev")
    if config.proxy is not None:
        user = request.headers.get(config.proxy.user_header)
        if user is not None or config.oidc is None:
            if not _peer_trusted(request, config):
                raise Forbidden("this address may not sign people in")
            if not user or len(user) > 320 or not user.isprintable():
                raise Forbidden("the proxy named no user")
            groups = request.headers.get(config.proxy.groups_header, "")
            role = role_of((g.strip() for g in groups.split(",")), config.groups)
            if role is None:
                raise Forbidden("`%(user)s` has no console role", user=user)
            return Principal(user, role, "proxy")
    signed = request.session.get("who")
    if isinstance(signed, dict):
        user, role = signed.get("user"), signed.get("role")
        if isinstance(user, str) and role in ROLES:
            return Principal(user, str(role), "oidc")
    return None


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use)."""
    token = request.session.get(CSRF_FIELD)
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return token


def csrf_ok(request: Request, sent: object) -> bool:
    """Whether `sent` (the form field, or the header) is this session's token."""
    token = request.session.get(CSRF_FIELD)
    if not isinstance(token, str) or not isinstance(sent, str):
        return False
    return hmac.compare_digest(token.encode(), sent.encode())


__all__ = ["CSRF_FIELD", "Forbidden", "Principal", "csrf_ok", "csrf_token", "principal", "role_of"]
