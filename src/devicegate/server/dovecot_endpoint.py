"""`POST /v1/dovecot/auth-policy` as a bare ASGI handler, with replayed decisions.

Dovecot asks before every IMAP/POP3/submission login, and mail clients log in often (each
folder poll, each reconnect), so this path skips the framework like forward-auth does. The
body carries a per-login `session_id`, so answers are kept under the fields that decide them
— login, the raw IMAP ID and the remote address — and replayed (logged and counted like a
decision) while `ServerService.replay_if_valid` holds. Parsing and rendering are the adapter's
(`devicegate.adapters.dovecot`); this module only moves bytes and caches.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from devicegate.adapters import dovecot
from devicegate.boundedcache import BoundedCache
from devicegate.errors import SignalError, error_json
from devicegate.server.decision_log import FAILING_CLOSED, Batch, LogUnavailable
from devicegate.server.service import Prepared, ServerService
from devicegate.server.trust import REFUSED_HINT, SECRET_HEADER_BYTES

PATH = "/v1/dovecot/auth-policy"
Scope = dict[str, Any]
JSON = [(b"content-type", b"application/json")]


@dataclass(slots=True, eq=False)
class Answer:
    """A kept Dovecot answer (always 200: the verdict is in the JSON)."""

    prepared: Prepared
    body: bytes
    status: int = field(default=200, init=False)
    headers: list[tuple[bytes, bytes]] = field(init=False)
    #: the response bytes `protocol.DevicegateHttpProtocol` writes, built on first use
    wire: tuple[object, bytes, bytes] | None = None

    def __post_init__(self) -> None:
        self.headers = [*JSON, (b"content-length", str(len(self.body)).encode())]


class BodyTooLarge(Exception):
    pass


async def read_body(receive: Any, limit: int) -> bytes:
    """The whole request body, refused past `limit` bytes (without reading the rest)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def send_json(send: Any, status: int, body: bytes) -> None:
    headers = [*JSON, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _json(payload: Mapping[str, object]) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()


class DovecotPolicy:
    def __init__(self, service: ServerService) -> None:
        self.service = service
        self.latency = service.metrics.requests.histogram(dovecot.ADAPTER.name)
        self._answers: BoundedCache[tuple[str, str | None, str | None], Answer] = (
            service.answer_cache(service.config.replay_cache)
        )
        service.metrics.requests.watch_cache(dovecot.ADAPTER.name, self._answers)
        self.replayed = 0  # answered by the HTTP protocol itself (`replay`), for tests

    def replay(
        self, body: bytes, peer: str | None, secret: bytes | None
    ) -> tuple[Answer, Batch] | None:
        """For the HTTP protocol's own fast path (`server/protocol.py`): the kept answer to
        this `command=allow` body and the batch its record joined, if it may be replayed;
        None sends the request through the ASGI path below (which refuses an untrusted peer)."""
        if self.service.trust.refusal(peer, secret) is not None:
            return None
        try:
            request = dovecot.parse_request(body)
        except SignalError:  # the ASGI path answers (and logs) it
            return None
        hit = self.service.replay_kept(self._answers.get(request.replay_key))
        self.replayed += hit is not None
        return hit

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        service = self.service
        client = scope.get("client")
        refusal = service.trust.refusal(
            client[0] if client else None, dict(scope["headers"]).get(SECRET_HEADER_BYTES)
        )
        if refusal is not None:
            service.metrics.refused_peers.labels(PATH).inc()
            await send_json(send, 403, _json(error_json(refusal, REFUSED_HINT)))
            return
        if scope["method"] != "POST":
            await self._error(send, 405, "method not allowed")
            return
        try:
            body = await read_body(receive, dovecot.MAX_BODY)
        except BodyTooLarge:
            await self._error(send, 413, f"request body is larger than {dovecot.MAX_BODY} bytes")
            return
        policy = dovecot.read(dovecot.command_of(scope.get("query_string", b"")), body)
        if not isinstance(policy, dovecot.PolicyRequest):  # answered without a decision
            status, payload = policy
            await send_json(send, status, _json(payload))
            return
        key = policy.replay_key
        hit = service.replay_kept(self._answers.get(key))
        if hit is not None:
            answer, batch = hit
        else:
            request = policy.decision_request()
            prepared, batch = service.prepare(
                request.user, request.resource, request.signals, adapter=dovecot.ADAPTER
            )
            answer = Answer(prepared, _json(dovecot.render(prepared.decision)[1]))
            self._answers.put(key, answer)
        if service.log.must_wait(batch):
            try:
                await service.log.wait(batch)
            except LogUnavailable as exc:
                await self._error(send, 503, exc.message, FAILING_CLOSED)
                return
        self.latency.observe(time.perf_counter() - started)
        await send_json(send, 200, answer.body)

    async def _error(self, send: Any, status: int, message: str, hint: str | None = None) -> None:
        self.service.metrics.bad_requests.labels(dovecot.ADAPTER.name, str(status)).inc()
        await send_json(send, status, _json(error_json(message, hint)))
