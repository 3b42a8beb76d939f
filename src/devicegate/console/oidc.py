"""Sign-in by OpenID Connect: authorization code with PKCE (S256), through authlib's
Starlette client. The provider's discovery document gives its endpoints and keys; the ID
token is verified (signature, issuer, audience, expiry, nonce) by authlib. The groups claim
(`--oidc-groups-claim`, default `groups`) maps to a role; an account with no mapped group
is refused. The session then holds only who it is and the role, signed and expiring."""

from __future__ import annotations

import logging
import warnings
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from devicegate.console.auth import role_of
from devicegate.console.config import ConsoleConfig
from devicegate.console.web import config, problem

log = logging.getLogger("devicegate.console")


def client(settings: ConsoleConfig) -> Any:
    """The authlib client for the configured provider."""
    # authlib announces a rename of its httpx integration on import; nothing to act on here
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.starlette_client import OAuth

    assert settings.oidc is not None
    oauth = OAuth()
    kwargs = {"scope": settings.oidc.scopes, "code_challenge_method": "S256"}
    if settings.oidc.client_secret is None:  # a public client: PKCE alone binds the code
        kwargs["token_endpoint_auth_method"] = "none"
    oauth.register(
        "console",
        client_id=settings.oidc.client_id,
        client_secret=settings.oidc.client_secret,
        server_metadata_url=settings.oidc.issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs=kwargs,
    )
    return oauth.console


def local(target: str | None) -> str:
    """A `next` target only if it stays on this site (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    return "/" if parts.scheme or parts.netloc else target


def _callback_url(request: Request) -> str:
    public = config(request).public_url
    if public:
        return public.rstrip("/") + "/auth/callback"
    return str(request.url_for("oidc_callback"))


async def login(request: Request) -> Response:
    settings = config(request)
    if settings.oidc is None:
        return problem(request, 404, "OIDC sign-in is not configured")
    request.session["next"] = local(request.query_params.get("next"))
    app = request.app.state.oidc
    redirect: Response = await app.authorize_redirect(request, _callback_url(request))
    return redirect


async def callback(request: Request) -> Response:
    settings = config(request)
    if settings.oidc is None:
        return problem(request, 404, "OIDC sign-in is not configured")
    from authlib.integrations.base_client.errors import OAuthError

    app = request.app.state.oidc
    try:
        token = await app.authorize_access_token(request)
    except OAuthError as exc:
        log.warning("OIDC sign-in failed: %s", exc)
        return problem(request, 403, "the sign-in could not be completed")
    claims = dict(token.get("userinfo") or {})
    user = claims.get("email") or claims.get("preferred_username") or claims.get("sub")
    groups = claims.get(settings.oidc.groups_claim) or []
    if isinstance(groups, str):
        groups = [groups]
    role = role_of((g for g in groups if isinstance(g, str)), settings.groups)
    if not isinstance(user, str) or role is None:
        return problem(request, 403, "this account has no console role")
    target = local(request.session.pop("next", "/"))
    request.session.pop("csrf", None)  # a new token for the signed-in session
    request.session["who"] = {"user": user[:320], "role": role}
    log.info("signed in: %s as %s", user, role)
    return RedirectResponse(target, status_code=303)


__all__ = ["callback", "client", "local", "login"]
