"""Everything but the hot path, on Starlette: check, health, metrics, OpenAPI, mail adapters.

One JSON error shape everywhere: `{"error": "...", "hint": "..."|null}` with a 4xx status
(404 unknown path, 405 wrong method, 400 unreadable input, 413 oversized body); a 5xx only
when the store cannot acknowledge (503) or on a bug (500).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devicegate.adapters import radius
from devicegate.cli.common import parse_at
from devicegate.errors import DevicegateError, SignalError
from devicegate.serialize import decision_json, signals_from_json
from devicegate.server.declog import FAILING_CLOSED, LogUnavailable
from devicegate.server.openapi import OPENAPI
from devicegate.server.service import ServerService

MAX_BODY = 64 * 1024


def error(status: int, message: str, hint: str | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "hint": hint}, status_code=status)


async def read_body(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise HTTPException(413, f"request body is larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request) -> dict[str, Any]:
    body = await read_body(request)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(400, "request body is not JSON") from None
    if not isinstance(data, dict):
        raise HTTPException(400, "request body must be a JSON object")
    return data


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
        raise HTTPException(400, f"`{key}` must be a non-empty string of at most 320 characters")
    return value.strip()


def check_route(service: ServerService) -> Route:
    async def check(request: Request) -> Response:
        data = await read_json(request)
        unknown = set(data) - {"user", "resource", "at", "signals"}
        if unknown:
            return error(
                400, f"unknown field `{sorted(unknown)[0]}`", "user, resource, at, signals"
            )
        user = _string(data, "user")
        resource = _string(data, "resource")
        assert user is not None and resource is not None
        at_text = _string(data, "at", required=False)
        signals_data = data.get("signals", {})
        if signals_data is None:
            signals_data = {}
        if not isinstance(signals_data, dict):
            return error(400, "`signals` must be an object")
        snapshot = service.snapshot
        if resource not in snapshot.resources:
            hint = "known: " + ", ".join(sorted(snapshot.resources))
            return error(400, f"unknown resource `{resource}`", hint)
        try:
            signals = signals_from_json(signals_data)
            at = parse_at(at_text, snapshot.timezone) if at_text else None
        except DevicegateError as exc:
            return error(400, exc.message, exc.hint)
        decision = service.decide(user, resource, signals, adapter="http", at=at)
        failed = await durable(service)
        return failed or JSONResponse(decision_json(decision))

    return Route("/v1/check", check, methods=["POST"])


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
    ]


def mail_routes(service: ServerService) -> list[Route]:
    """FreeRADIUS rlm_rest (the Dovecot endpoint is a bare ASGI path: server/mailpath.py)."""

    async def radius_authorize(request: Request) -> Response:
        body = await read_body(request)
        try:
            status, payload = radius.handle(service, body)
        except SignalError as exc:
            return error(400, exc.message, exc.hint)
        return await durable(service) or JSONResponse(payload, status_code=status)

    return [Route("/v1/radius/authorize", radius_authorize, methods=["POST"])]
