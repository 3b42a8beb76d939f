"""The console's ASGI app: routes, middleware, and the answers to what goes wrong.

Middleware, outermost first: security headers on every answer; accepted `Host` names only
(a loopback listener alone does not stop DNS rebinding); the signed session cookie.
Store errors on any page become the page layout with an error banner (503); the console
keeps running and the next request tries the store again.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from devicegate.console import oidc, pages_live, pages_ops, pages_people, pages_rollout, whatif
from devicegate.console.auth import CSRF_FIELD, Forbidden, csrf_ok
from devicegate.console.config import ConsoleConfig
from devicegate.console.i18n import LOCALES
from devicegate.console.runtime import Runtime
from devicegate.console.web import (
    NotFound,
    NotSignedIn,
    SecurityHeaders,
    problem,
    render,
    runtime,
    sign_in,
    who,
)
from devicegate.errors import DevicegateError
from devicegate.timeutil import parse_at

log = logging.getLogger("devicegate.console")
STORE_DOWN = "the store cannot be read right now; the page will work again when it returns"


def whatif_page(request: Request) -> Response:
    me = who(request)
    rt = runtime(request)
    folder = rt.config.candidates
    names = whatif.candidates(folder)
    chosen = request.query_params.get("candidate", "")
    context: dict[str, Any] = {"names": names, "chosen": None, "result": None, "error": None}
    if chosen:
        if chosen not in names or folder is None:
            context["error"] = "no such candidate"
            return render(request, "whatif.html", context, status=404, me=me)
        at_text = request.query_params.get("at", "")
        try:
            at = parse_at(at_text, rt.snapshot.timezone) if at_text else rt.now()
            context["result"] = whatif.run(rt.store, folder, chosen, rt.snapshot, at)
        except DevicegateError as exc:
            context["error"] = exc.one_line()
            return render(request, "whatif.html", context, status=422, me=me)
        context["chosen"] = chosen
    return render(request, "whatif.html", context, me=me)


async def language(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=5)
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        raise Forbidden("the form's CSRF token is missing or wrong; reload the page")
    chosen = form.get("lang")
    if isinstance(chosen, str) and chosen in LOCALES:
        request.session["lang"] = chosen
    back = form.get("next")
    return RedirectResponse(oidc.local(back if isinstance(back, str) else "/"), status_code=303)


async def logout(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=5)
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        raise Forbidden("the form's CSRF token is missing or wrong; reload the page")
    request.session.clear()
    return render(request, "signed_out.html", {})


def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


def _handlers() -> dict[Any, Any]:
    async def not_signed_in(request: Request, exc: Exception) -> Response:
        return sign_in(request)

    async def forbidden(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Forbidden)
        return problem(request, 403, exc.message, exc.values)

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NotFound)
        return problem(request, 404, exc.message, exc.values)

    async def http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return problem(request, 404, "not found")
        return problem(request, exc.status_code, str(exc.detail))

    async def store_down(request: Request, exc: Exception) -> Response:
        log.warning("store error on %s: %s", request.url.path, exc)
        return await run_in_threadpool(problem, request, 503, STORE_DOWN)

    return {
        NotSignedIn: not_signed_in,
        Forbidden: forbidden,
        NotFound: not_found,
        HTTPException: http,
        sa.exc.SQLAlchemyError: store_down,
    }


def create_app(config: ConsoleConfig, rt: Runtime) -> Starlette:
    routes = [
        Route("/", pages_rollout.overview),
        Route("/units/{unit:path}", pages_rollout.unit),
        Route("/users/{user}", pages_people.user),
        Route("/devices/{ref}", pages_people.device),
        Route("/quarantine", pages_ops.quarantine),
        Route("/quarantine/release", pages_ops.release, methods=["POST"]),
        Route("/exceptions", pages_ops.exceptions),
        Route("/activity", pages_ops.activity),
        Route("/live", pages_live.live),
        Route("/live/stream", pages_live.stream),
        Route("/whatif", whatif_page),
        Route("/language", language, methods=["POST"]),
        Route("/login", oidc.login),
        Route("/auth/callback", oidc.callback, name="oidc_callback"),
        Route("/logout", logout, methods=["POST"]),
        Route("/healthz", healthz),
        Mount("/static", StaticFiles(packages=[("devicegate.console", "static")]), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(TrustedHostMiddleware, allowed_hosts=config.hosts()),
        Middleware(
            SessionMiddleware,
            secret_key=(config.session_secret or secrets.token_bytes(32)).hex(),
            session_cookie="devicegate_console",
            max_age=int(config.session_hours * 3600),
            same_site="lax",
            https_only=config.secure_cookies,
        ),
    ]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=_handlers())
    app.state.runtime = rt
    app.state.oidc = oidc.client(config) if config.oidc is not None else None
    return app


__all__ = ["create_app"]
