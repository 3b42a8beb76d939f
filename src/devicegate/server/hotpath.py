"""`/v1/forward-auth/{resource}[/original/path]` as a bare ASGI handler.

Every proxied request passes through here, so it skips the framework: read the headers the
adapter needs, decide (or replay an identical earlier decision), wait for the durable log
commit, answer. Measured on this machine a Starlette route costs 40–50 % of the throughput of
a bare ASGI app; this path does not pay it.
"""

from __future__ import annotations

import html
import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from devicegate.adapters import forward_auth as fa
from devicegate.errors import SignalError
from devicegate.server.declog import FAILING_CLOSED, Batch, LogUnavailable
from devicegate.server.service import Prepared, ServerService

PREFIX = "/v1/forward-auth/"
BLOCK_PAGE = "/v1/block-page"
ADAPTER = "forward-auth"
Scope = dict[str, Any]


async def send_response(
    send: Any, status: int, headers: list[tuple[str, str]], body: bytes
) -> None:
    raw = raw_headers(headers, body)
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


ANSWER_CACHE_MAX = 100_000
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


@dataclass(slots=True, eq=False)
class Answer:
    """A forward-auth answer ready to send again: the replayable decision and its bytes."""

    prepared: Prepared
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    #: the response bytes `protocol.DevicegateHttpProtocol` writes, built on first use
    wire: tuple[object, bytes, bytes] | None = None


def raw_headers(headers: list[tuple[str, str]], body: bytes) -> list[tuple[bytes, bytes]]:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    raw.append((b"content-length", str(len(body)).encode()))
    return raw


class ForwardAuth:
    """The hot path. `service` is shared with the rest of the app (same cache, same log).

    The first request with a given set of relevant header values goes the whole way (parse,
    identify, decide, render); the answer is kept under those raw values and replayed —
    logged, counted and awaited like any decision — while `ServerService.replay_if_valid` holds.
    What takes part in the key: the path, the user headers, Authorization, User-Agent, the
    forwarding and certificate headers, the peer, and the original URI when it is an
    ActiveSync request (other URIs do not change the decision but are still checked)."""

    def __init__(self, service: ServerService) -> None:
        self.service = service
        self.parser = fa.ParseCache(service.config.headers)
        self.latency = service.metrics.requests.histogram(ADAPTER)
        interesting = (*service.config.headers.decisive(), "x-original-uri", "x-forwarded-uri")
        self._names = tuple(name.encode("latin-1") for name in interesting)
        self._answers: dict[tuple[object, ...], Answer] = {}
        self.replayed = 0  # answered by the HTTP protocol itself (`replay`), for tests

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        key = self._key(scope)
        service = self.service
        hit = service.replay_kept(self._answers.get(key) if key is not None else None)
        if hit is not None:
            answer, batch = hit
            if service.log.must_wait(batch):
                try:
                    await service.log.wait(batch)
                except LogUnavailable as exc:
                    await send_response(send, *self._unavailable(exc))
                    return
            self.latency.observe(time.perf_counter() - started)
            await send(
                {"type": "http.response.start", "status": answer.status, "headers": answer.headers}
            )
            await send({"type": "http.response.body", "body": answer.body})
            return
        status, headers, body = await self.answer(scope, key)
        if status >= 400 and status != 403:
            service.metrics.bad_requests.labels(ADAPTER, str(status)).inc()
        else:
            self.latency.observe(time.perf_counter() - started)
        await send_response(send, status, headers, body)

    @staticmethod
    def _unavailable(exc: LogUnavailable) -> fa.Rendered:
        return json_error(503, exc.message, FAILING_CLOSED)

    def _key(self, scope: Scope) -> tuple[object, ...] | None:
        client = scope.get("client")
        return self.key_of(
            scope["path"],
            scope.get("query_string"),
            client[0] if client else None,
            scope["headers"],
        )

    def key_of(
        self,
        path: str,
        query: bytes | None,
        peer: str | None,
        raw_headers: list[tuple[bytes, bytes]],
    ) -> tuple[object, ...] | None:
        """The raw values that decide the answer; None when the request must be parsed.

        A repeated header counts by its last value, here and in `answer` alike (`dict`)."""
        get = dict(raw_headers).get
        n = self._names
        uri = get(n[7]) or get(n[8])
        if uri is not None:
            if len(uri) > fa.MAX_URI or _CONTROL_BYTES.search(uri):
                return None  # the parser refuses it with the reason
            if b"?" not in uri or b"activesync" not in uri.partition(b"?")[0].lower():
                uri = None  # not a device-bearing URI: not part of the key
        return (
            path,
            query,
            peer,
            uri,
            get(n[0]),
            get(n[1]),
            get(n[2]),
            get(n[3]),
            get(n[4]),
            get(n[5]),
            get(n[6]),
        )

    def replay(
        self,
        path: str,
        query: bytes,
        peer: str | None,
        raw_headers: list[tuple[bytes, bytes]],
    ) -> tuple[Answer, Batch] | None:
        """For the HTTP protocol's own fast path (`server/protocol.py`): the kept answer to
        these raw values and the batch its record joined, if it may be replayed; None sends
        the request through the ASGI path (which decides and keeps the answer)."""
        key = self.key_of(path, query, peer, raw_headers)
        hit = self.service.replay_kept(self._answers.get(key) if key is not None else None)
        self.replayed += hit is not None
        return hit

    async def answer(self, scope: Scope, key: tuple[object, ...] | None = None) -> fa.Rendered:
        rest = scope["path"][len(PREFIX) :]
        resource, slash, extra = rest.partition("/")
        service = self.service
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        }  # a repeated header counts by its last value, as in `_key`
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
        prepared, batch = service.prepare(
            request.user, request.resource, request.signals, adapter=ADAPTER
        )
        if service.log.must_wait(batch):
            try:
                await service.log.wait(batch)
            except LogUnavailable as exc:
                return self._unavailable(exc)
        status, headers_out, body = fa.render(prepared.decision)
        if key is not None and not extra:  # Envoy's per-page paths would only fill the cache
            if len(self._answers) >= ANSWER_CACHE_MAX:
                self._answers.clear()
            self._answers[key] = Answer(prepared, status, raw_headers(headers_out, body), body)
        return status, headers_out, body
