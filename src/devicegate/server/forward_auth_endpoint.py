"""`/v1/forward-auth/{resource}[/original/path]` as a bare ASGI handler.

Every proxied request passes through here, so it skips the framework: read the headers the
adapter needs, decide (or replay an identical earlier decision), wait for the durable log
commit, answer. Measured on this machine a Starlette route costs 40–50 % of the throughput of
a bare ASGI app; this path does not pay it.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from devicegate.adapters import forward_auth as fa
from devicegate.boundedcache import BoundedCache
from devicegate.errors import SignalError, error_json
from devicegate.server.decision_log import FAILING_CLOSED, Batch, LogUnavailable
from devicegate.server.service import Prepared, ServerService
from devicegate.server.trust import REFUSED_HINT, SECRET_HEADER_BYTES

PREFIX = "/v1/forward-auth/"
BLOCK_PAGE = "/v1/block-page"
ADAPTER = fa.ADAPTER
Scope = dict[str, Any]


async def send_response(
    send: Any, status: int, headers: list[tuple[str, str]], body: bytes
) -> None:
    raw = raw_headers(headers, body)
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def render_block_page(rule: str, message: str) -> str:
    """The page a proxy shows for a block or quarantine: the policy's message, escaped."""
    text = html.escape(message or GENERIC_BLOCK)
    ref = f"<p><small>rule: {html.escape(rule)}</small></p>" if rule else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>Device not allowed for work</title></head>\n<body>"
        f"<h1>Device not allowed for work</h1>\n<p>{text}</p>\n{ref}</body></html>\n"
    )


GENERIC_BLOCK = "Access from this device to this work service is not allowed."


async def block_page(service: ServerService, scope: Scope, send: Any) -> None:
    """GET /v1/block-page?rule=ID (or the `X-Devicegate-Rule` header a proxy copied from the
    forward-auth answer): the 403 page with *the policy's* message for that rule. The text
    never comes from the request, so no caller can make the official page say something the
    policy does not; an unknown rule gets the generic sentence."""
    rule = ""
    for name, value in scope["headers"]:
        if name == b"x-devicegate-rule":
            rule = unquote(value.decode("latin-1"))
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    rule = (query.get("rule") or rule).strip()[:128]
    message = service.snapshot.message_of(rule)
    body = render_block_page(rule if message else "", message or GENERIC_BLOCK).encode()
    headers = [("content-type", "text/html; charset=utf-8"), ("cache-control", "no-store")]
    await send_response(send, 403, headers, body)


def json_error(status: int, message: str, hint: str | None = None) -> fa.Rendered:
    body = json.dumps(error_json(message, hint)).encode()
    return status, [("content-type", "application/json")], body


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


#: `answer_key`'s mark for a URI the parser refuses
_REFUSED = object()
#: distinct raw URI inputs whose reading `answer_key` keeps (a proxy sends the same few)
URI_READINGS = 4096


def answer_key(
    names: tuple[bytes, ...],
    path: str,
    query: bytes | None,
    peer: str | None,
    raw_headers: list[tuple[bytes, bytes]] | Callable[[bytes], bytes | None],
    uris: BoundedCache[tuple[object, ...], object] | None = None,
) -> tuple[object, ...] | None:
    """The values that decide a forward-auth answer — what a kept answer is found by; None
    when the request must be parsed. `names` are `HeaderNames.decisive()`, encoded.

    A repeated header counts by its last value, here and in the parser alike (`dict`). The
    URI is the one `forward_auth.select_uri` picks — the parser's own choice, so a key can
    never stand for a different URI than the one decided on — and only when it is an
    ActiveSync request (no other URI changes a decision). `uris` keeps that reading per raw
    inputs (the two URI headers, the path and the query), which determine it. `raw_headers`
    may be given as the `get` of their dict, when the caller has built it already."""
    get = raw_headers if callable(raw_headers) else dict(raw_headers).get
    original, forwarded = get(b"x-original-uri"), get(b"x-forwarded-uri")
    raw = (original, forwarded, path, query)
    uri = uris.get(raw, _REFUSED) if uris is not None else _REFUSED
    if uri is _REFUSED:
        uri = _read_uri(original, forwarded, path, query)
        if uris is not None:
            uris.put(raw, uri)
    if uri is _REFUSED:
        return None  # the parser refuses it with the reason
    user, authorization, agent, forwarded_for, real_ip, fingerprint = names
    return (
        path,
        query,
        peer,
        uri,
        get(user),
        get(authorization),
        get(agent),
        get(forwarded_for),
        get(real_ip),
        get(fingerprint),
    )


def _read_uri(
    original: bytes | None, forwarded: bytes | None, path: str, query: bytes | None
) -> object:
    """The ActiveSync URI the parser reads (None: no URI, or one that decides nothing), or
    `_REFUSED`."""
    _, slash, extra = path[len(PREFIX) :].partition("/")
    try:
        uri = fa.select_uri(
            original.decode("latin-1") if original is not None else None,
            forwarded.decode("latin-1") if forwarded is not None else None,
            "/" + extra if slash else "",
            (query or b"").decode("latin-1"),
        )
    except SignalError:
        return _REFUSED
    return uri if uri is not None and fa.is_activesync(uri) else None


class ForwardAuth:
    """The hot path. `service` is shared with the rest of the app (same cache, same log).

    Only a trusted proxy may ask (`ServerService.trust`); anyone else gets 403 and nothing is
    recorded. The first request with a given set of relevant header values goes the whole way
    (parse, identify, decide, render); the answer is kept under those raw values and replayed
    — logged, counted and awaited like any decision — while `ServerService.replay_if_valid`
    holds. What takes part in the key: the path and query, the peer, the user header,
    Authorization, User-Agent, the forwarding and certificate headers, and the original URI
    as `forward_auth.select_uri` reads it when it is an ActiveSync request (other URIs do not
    change the decision but are still checked)."""

    def __init__(self, service: ServerService) -> None:
        self.service = service
        names = service.headers
        self.parser = fa.ParseCache(names)
        self.latency = service.metrics.requests.histogram(ADAPTER.name)
        self._names = tuple(name.encode("latin-1") for name in names.decisive())
        self._answers: BoundedCache[tuple[object, ...], Answer] = service.answer_cache(
            service.config.replay_cache
        )
        service.metrics.requests.watch_cache(ADAPTER.name, self._answers)
        self._uris: BoundedCache[tuple[object, ...], object] = BoundedCache(URI_READINGS)
        self.replayed = 0  # answered by the HTTP protocol itself (`replay`), for tests

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        service = self.service
        client = scope.get("client")
        peer = client[0] if client else None
        get = dict(scope["headers"]).get
        refusal = service.trust.refusal(peer, get(SECRET_HEADER_BYTES))
        if refusal is not None:
            service.metrics.refused_peers.labels(PREFIX).inc()
            await send_response(send, *json_error(403, refusal, REFUSED_HINT))
            return
        key = answer_key(
            self._names, scope["path"], scope.get("query_string"), peer, get, self._uris
        )
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
            service.metrics.bad_requests.labels(ADAPTER.name, str(status)).inc()
        else:
            self.latency.observe(time.perf_counter() - started)
        await send_response(send, status, headers, body)

    @staticmethod
    def _unavailable(exc: LogUnavailable) -> fa.Rendered:
        return json_error(503, exc.message, FAILING_CLOSED)

    def replay(
        self,
        path: str,
        query: bytes,
        peer: str | None,
        raw_headers: list[tuple[bytes, bytes]],
    ) -> tuple[Answer, Batch] | None:
        """For the HTTP protocol's own fast path (`server/protocol.py`): the kept answer to
        these raw values and the batch its record joined, if it may be replayed; None sends
        the request through the ASGI path (which checks the peer, decides and keeps the
        answer)."""
        service = self.service
        get = dict(raw_headers).get
        if service.trust.refusal(peer, get(SECRET_HEADER_BYTES)) is not None:
            return None
        key = answer_key(self._names, path, query, peer, get, self._uris)
        hit = service.replay_kept(self._answers.get(key) if key is not None else None)
        self.replayed += hit is not None
        return hit

    async def answer(self, scope: Scope, key: tuple[object, ...] | None = None) -> fa.Rendered:
        rest = scope["path"][len(PREFIX) :]
        resource, slash, extra = rest.partition("/")
        service = self.service
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        }  # a repeated header counts by its last value, as in `answer_key`
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
            request.user,
            request.resource,
            request.signals,
            adapter=ADAPTER,
            evidence=request.user_verified,
        )
        if service.log.must_wait(batch):
            try:
                await service.log.wait(batch)
            except LogUnavailable as exc:
                return self._unavailable(exc)
        status, headers_out, body = fa.render(prepared.decision)
        if key is not None and not extra:  # Envoy's per-page paths would only fill the cache
            self._answers.put(key, Answer(prepared, status, raw_headers(headers_out, body), body))
        return status, headers_out, body
