"""Everything but the hot path, on Starlette: check, decide, health, metrics, OpenAPI, RADIUS.

One JSON error shape everywhere: `{"error": "...", "hint": "..."}` (`hint` only when there is
one) with a 4xx status (404 unknown path, 405 wrong method, 400 unreadable input, 403 a peer
that is not a trusted proxy, 413 oversized body); a 5xx only when the store cannot
acknowledge (503) or on a bug (500).

`POST /v1/check` is a dry run open to any peer: it decides and explains, and records nothing —
no decision-log row, no sighting, no hold — so no caller can plant evidence or back-date a
decision with it. An application that enforces through the JSON API asks `POST /v1/decide`,
which logs like every enforcement point and answers trusted proxies only.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devicegate.adapters import radius
from devicegate.adapters.base import HTTP
from devicegate.errors import SignalError, error_json
from devicegate.model import Decision
from devicegate.serialize import decision_json, signals_from_json
from devicegate.server.decision_log import FAILING_CLOSED, LogUnavailable
from devicegate.server.openapi import OPENAPI
from devicegate.server.service import ServerService
from devicegate.server.trust import REFUSED_HINT, SECRET_HEADER
from devicegate.timeutil import parse_at

MAX_BODY = 64 * 1024


def error(status: int, message: str, hint: str | None = None) -> JSONResponse:
    return JSONResponse(error_json(message, hint), status_code=status)


async def read_body(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise HTTPException(413, f"request body is larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json_object(body: bytes) -> dict[str, Any]:
    """A request body as a JSON object, or HTTPException 400 — also for hostile JSON that
    Python's parser refuses with other errors (nesting too deep, an integer too long)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise HTTPException(400, "request body is not JSON") from None
    if not isinstance(data, dict):
        raise HTTPException(400, "request body must be a JSON object")
    return data


async def read_json(request: Request) -> dict[str, Any]:
    return parse_json_object(await read_body(request))


def refused(service: ServerService, request: Request, endpoint: str) -> JSONResponse | None:
    """403 unless the peer is a trusted proxy (with the proxy secret when one is set)."""
    peer = request.client.host if request.client else None
    reason = service.trust.refusal(peer, request.headers.get(SECRET_HEADER))
    if reason is None:
        return None
    service.metrics.refused_peers.labels(endpoint).inc()
    return error(403, reason, REFUSED_HINT)


async def durable(service: ServerService) -> JSONResponse | None:
    """Wait until everything decided so far is committed; a 503 if it cannot be."""
    try:
        await service.durable()
    except LogUnavailable as exc:
        return error(503, exc.message, FAILING_CLOSED)
    return None


def _string(data: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 320:
        raise SignalError(f"`{key}` must be a non-empty string of at most 320 characters")
    return value.strip()


def _request_fields(
    service: ServerService, data: dict[str, Any], allowed: tuple[str, ...]
) -> tuple[str, str, Any]:
    """user, resource and signals of a check or decide body (HTTPException 400 otherwise)."""
    unknown = set(data) - set(allowed)
    if unknown:
        raise SignalError(f"unknown field `{sorted(unknown)[0]}`", hint=", ".join(allowed))
    user = _string(data, "user")
    resource = _string(data, "resource")
    assert user is not None and resource is not None
    signals_data = data.get("signals")
    if signals_data is None:
        signals_data = {}
    if not isinstance(signals_data, dict):
        raise SignalError("`signals` must be an object")
    if resource not in service.snapshot.resources:
        known = ", ".join(sorted(service.snapshot.resources))
        raise SignalError(f"unknown resource `{resource}`", hint=f"known: {known}")
    return user, resource, signals_from_json(signals_data)


def check_route(service: ServerService) -> Route:
    async def check(request: Request) -> Response:
        data = await read_json(request)
        user, resource, signals = _request_fields(
            service, data, ("user", "resource", "at", "signals")
        )
        at_text = _string(data, "at", required=False)
        at = parse_at(at_text, service.snapshot.timezone) if at_text else None
        decision = service.check(user, resource, signals, at=at)
        return JSONResponse(decision_json(decision))

    return Route("/v1/check", check, methods=["POST"])


def decide_route(service: ServerService) -> Route:
    async def decide(request: Request) -> Response:
        denied = refused(service, request, "/v1/decide")
        if denied is not None:
            return denied
        data = await read_json(request)
        user, resource, signals = _request_fields(service, data, ("user", "resource", "signals"))
        decision: Decision = service.decide(user, resource, signals, adapter=HTTP)
        failed = await durable(service)
        return failed or JSONResponse(decision_json(decision))

    return Route("/v1/decide", decide, methods=["POST"])


def basic_routes(service: ServerService) -> list[Route]:
    async def healthz(_: Request) -> Response:
        snapshot = service.snapshot
        return JSONResponse(
            {
                "status": "ok",
                "policy_version": snapshot.version,
                "rules": len(snapshot.rules),
                "restricted_device_keys": len(service.state),
                "log_committed": service.log.committed,
            }
        )

    async def metrics(_: Request) -> Response:
        service.metrics.state_devices.set(len(service.state))
        return Response(service.metrics.render(), media_type=service.metrics.content_type)

    async def openapi(_: Request) -> Response:
        return JSONResponse(OPENAPI)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        check_route(service),
        decide_route(service),
    ]


def mail_routes(service: ServerService) -> list[Route]:
    """FreeRADIUS rlm_rest (the Dovecot endpoint is bare ASGI: server/dovecot_endpoint.py)."""

    vlan = service.config.radius_quarantine_vlan

    async def radius_authorize(request: Request) -> Response:
        denied = refused(service, request, "/v1/radius/authorize")
        if denied is not None:
            return denied
        body = await read_body(request)
        status, payload = radius.answer(service, body, quarantine_vlan=vlan)
        return await durable(service) or JSONResponse(payload, status_code=status)

    return [Route("/v1/radius/authorize", radius_authorize, methods=["POST"])]
