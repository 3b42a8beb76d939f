"""`/v1/forward-auth/{resource}[/original/path]` as a bare ASGI handler.

Every proxied request passes through here, so it skips the framework: read the headers the
adapter needs, decide, wait for the durable log commit, answer. Measured on this machine a
Starlette route costs 40–50 % of the throughput of a bare ASGI app; this path does not pay it.
"""

from __future__ import annotations

import html
import json
import time
from typing import Any
from urllib.parse import unquote

from devicegate.adapters import forward_auth as fa
from devicegate.errors import SignalError
from devicegate.server.declog import LogUnavailable
from devicegate.server.service import ServerService

PREFIX = "/v1/forward-auth/"
BLOCK_PAGE = "/v1/block-page"
ADAPTER = "forward-auth"
Scope = dict[str, Any]


async def send_response(
    send: Any, status: int, headers: list[tuple[str, str]], body: bytes
) -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def render_block_page(rule: str, message: str) -> str:
    """The page a proxy shows for a block or quarantine: the policy's message, escaped."""
    text = html.escape(message or "Access from this device to this work service is not allowed.")
    ref = f"<p><small>rule: {html.escape(rule)}</small></p>" if rule else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>Device not allowed for work</title></head>\n<body>"
        f"<h1>Device not allowed for work</h1>\n<p>{text}</p>\n{ref}</body></html>\n"
    )


async def block_page(scope: Scope, send: Any) -> None:
    """GET /v1/block-page: the proxies' 403 page from the X-Devicegate-Rule/-Message headers
    the forward-auth answer carried (bare ASGI too: every blocked request comes here)."""
    rule = message = ""
    for name, value in scope["headers"]:
        if name == b"x-devicegate-rule":
            rule = unquote(value.decode("latin-1"))[:128]
        elif name == b"x-devicegate-message":
            message = unquote(value.decode("latin-1"))[:2048]
    body = render_block_page(rule, message).encode()
    headers = [("content-type", "text/html; charset=utf-8"), ("cache-control", "no-store")]
    await send_response(send, 403, headers, body)


def json_error(status: int, message: str, hint: str | None = None) -> fa.Rendered:
    body = json.dumps({"error": message, "hint": hint}).encode()
    return status, [("content-type", "application/json")], body


class ForwardAuth:
    """The hot path. `service` is shared with the rest of the app (same cache, same log)."""

    def __init__(self, service: ServerService) -> None:
        self.service = service
        self.parser = fa.ParseCache(service.config.headers)
        self.latency = service.metrics.latency.labels(ADAPTER)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        status, headers, body = await self.answer(scope)
        if status >= 400 and status != 403:
            self.service.metrics.bad_requests.labels(ADAPTER, str(status)).inc()
        else:
            self.latency.observe(time.perf_counter() - started)
        await send_response(send, status, headers, body)

    async def answer(self, scope: Scope) -> fa.Rendered:
        rest = scope["path"][len(PREFIX) :]
        resource, slash, extra = rest.partition("/")
        service = self.service
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
        client = scope.get("client")
        try:
            request = self.parser.parse(
                resource,
                headers,
                extra_path="/" + extra if slash else "",
                query=scope.get("query_string", b"").decode("latin-1"),
                peer=client[0] if client else None,
            )
        except SignalError as exc:
            return fa.render_error(exc)
        if request.resource not in service.snapshot.resources:
            return json_error(
                404,
                f"unknown resource `{request.resource}`",
                "known: " + ", ".join(sorted(service.snapshot.resources)),
            )
        decision = service.decide(request.user, request.resource, request.signals, adapter=ADAPTER)
        try:
            await service.log.wait(service.log.last_seq)
        except LogUnavailable as exc:
            return json_error(503, exc.message, "the decision log is unavailable: failing closed")
        return fa.render(decision)
