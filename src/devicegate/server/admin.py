"""Admin endpoints behind a bearer token: reload the policy, list and release devices.

Without a configured token (`--admin-token` / `DEVICEGATE_ADMIN_TOKEN`) every admin request
answers 401: there is no unauthenticated admin mode. Tokens compare in constant time.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devicegate.errors import DevicegateError, error_json
from devicegate.server.api import error
from devicegate.server.service import ServerService
from devicegate.store.records import device_record_json

log = logging.getLogger("devicegate.server")

Endpoint = Callable[[Request], Awaitable[Response]]


async def reload_policy(service: ServerService) -> tuple[bool, dict[str, object]]:
    """Reload off the event loop; log the outcome either way. Used by SIGHUP too."""
    old = service.snapshot.version
    try:
        snapshot = await asyncio.to_thread(service.reload)
    except DevicegateError as exc:
        log.error("policy reload refused: %s; still serving %s", exc.one_line(), old)
        return False, {**error_json(exc.message, exc.hint), "policy_version": old}
    except Exception as exc:  # anything else from loading is still a refused reload
        log.error("policy reload refused: %s: %s; still serving %s", type(exc).__name__, exc, old)
        message = f"{type(exc).__name__}: {exc}"
        return False, {**error_json(message), "policy_version": old}
    log.info("policy reloaded: %s -> %s (%d rules)", old, snapshot.version, len(snapshot.rules))
    return True, {"policy_version": snapshot.version, "previous": old, "rules": len(snapshot.rules)}


def admin_routes(service: ServerService) -> list[Route]:
    token = service.config.admin_token

    def guarded(endpoint: Endpoint) -> Endpoint:
        async def wrapper(request: Request) -> Response:
            given = request.headers.get("authorization", "")
            scheme, _, value = given.partition(" ")
            if (
                token is None
                or scheme.lower() != "bearer"
                or not hmac.compare_digest(value.strip().encode(), token.encode())
            ):
                return JSONResponse(
                    error_json("admin endpoints need a bearer token"),
                    status_code=401,
                    headers={"www-authenticate": "Bearer"},
                )
            return await endpoint(request)

        return wrapper

    async def reload(_: Request) -> Response:
        ok, payload = await reload_policy(service)
        return JSONResponse(payload, status_code=200 if ok else 422)

    async def devices(request: Request) -> Response:
        restricted = request.query_params.get("restricted", "") in ("1", "true", "yes")
        records = await asyncio.to_thread(service.store.list_devices, only_restricted=restricted)
        return JSONResponse({"devices": [device_record_json(r) for r in records]})

    async def release(request: Request) -> Response:
        ref = request.path_params["ref"]
        if len(ref) > 64:
            return error(400, "device reference is longer than 64 characters")
        changed = await asyncio.to_thread(service.store.release, ref, by="admin-api")
        if not changed:
            return error(404, f"device `{ref}` has no hold or verdict to release")
        await asyncio.to_thread(service.state.reload)
        log.info("device %s released via the admin API (%d records)", ref, changed)
        return JSONResponse({"device_ref": ref, "released": changed})

    return [
        Route("/v1/admin/reload", guarded(reload), methods=["POST"]),
        Route("/v1/admin/devices", guarded(devices), methods=["GET"]),
        Route("/v1/admin/devices/{ref}/release", guarded(release), methods=["POST"]),
    ]
