"""The console's web plumbing: templates per locale, who is asking, and the answers every page
shares (sign-in redirect, 403, 404, the store-unavailable banner).

Templates are Jinja2 with autoescape on: every value a client chose (user names,
User-Agents, IMAP IDs, messages) is escaped; nothing in the console marks data safe except
the SVG the chart renderer built (which escapes its own text). Security headers go on every
answer: a Content-Security-Policy that allows scripts and styles from the console itself
only (no inline script, no inline style), no framing, no referrer.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from devicegate.console.auth import Forbidden, Principal, csrf_token, principal
from devicegate.console.config import ConsoleConfig
from devicegate.console.i18n import LOCALES, Formats, negotiate, translations
from devicegate.console.runtime import Runtime

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]


class SecurityHeaders:
    """Adds `HEADERS` to every HTTP answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    h for h in HEADERS if h[0] not in present
                ]
            await send(message)

        await self.app(scope, receive, with_headers)


class NotSignedIn(Exception):
    pass


class NotFound(Exception):
    """An unknown unit, user or device: a catalog message and its values."""

    def __init__(self, message: str, **values: str) -> None:
        super().__init__(message % values)
        self.message = message
        self.values = values


@cache
def environment(locale: str) -> Environment:
    env = Environment(
        loader=PackageLoader("devicegate.console", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.filters["q"] = lambda value: quote(str(value), safe="")
    env.filters["qpath"] = lambda value: quote(str(value), safe="/")
    return env


def runtime(request: Request) -> Runtime:
    found: Runtime = request.app.state.runtime
    return found


def config(request: Request) -> ConsoleConfig:
    return runtime(request).config


def locale_of(request: Request) -> str:
    chosen = request.session.get("lang")
    if isinstance(chosen, str) and chosen in LOCALES:
        return chosen
    return negotiate(request.headers.get("accept-language"), config(request).locale)


def int_param(request: Request, name: str, low: int, high: int) -> int | None:
    """Query parameter `name` as a whole number in `low`…`high`, else None. ASCII digits
    only: `str.isdigit` admits "²" and "①", which `int` refuses, and a number past 64 bits
    is one no store column holds."""
    text = request.query_params.get(name, "")
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        return None
    value = int(text)
    return value if low <= value <= high else None


def who(request: Request, *, operator: bool = False) -> Principal:
    """The signed-in principal; NotSignedIn, or Forbidden when `operator` is required."""
    found = principal(request, config(request))
    if found is None:
        raise NotSignedIn()
    if operator and not found.operator:
        raise Forbidden("this needs the operator role")
    return found


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    me: Principal | None = None,
) -> HTMLResponse:
    rt = runtime(request)
    locale = locale_of(request)
    env = environment(locale)
    snapshot = rt.snapshot
    page = env.get_template(template).render(
        request=request,
        me=me,
        csrf=csrf_token(request),
        locale=locale,
        locales=LOCALES,
        fmt=Formats(locale, snapshot.timezone),
        snapshot=snapshot,
        refused=rt.refused,
        rollup_error=rt.rollup_error,
        now=rt.now(),
        svg=Markup,  # only for SVG from devicegate.charts, which escapes its own text
        **(context or {}),
    )
    return HTMLResponse(page, status_code=status)


def problem(
    request: Request, status: int, message: str, values: Mapping[str, str] | None = None
) -> Response:
    """An error page (404, 403, 503…) in the page layout, `message` translated (a catalog
    message, `%(name)s` filled from `values`); plain text when even that fails."""
    try:
        me = principal(request, config(request))
    except Forbidden:
        me = None
    try:
        text = translations(locale_of(request)).gettext(message) % dict(values or {})
    except (KeyError, TypeError, ValueError):
        text = message
    try:
        context = {"status": status, "message": text}
        return render(request, "error.html", context, status=status, me=me)
    except Exception:
        return Response(text, status_code=status, media_type="text/plain; charset=utf-8")


def sign_in(request: Request) -> Response:
    """Where someone not signed in goes: the OIDC sign-in, else a 401 page."""
    if config(request).oidc is not None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    return problem(request, 401, "sign in through the configured proxy")


__all__ = [
    "CSP",
    "NotFound",
    "NotSignedIn",
    "SecurityHeaders",
    "config",
    "environment",
    "int_param",
    "locale_of",
    "problem",
    "render",
    "runtime",
    "sign_in",
    "who",
]
