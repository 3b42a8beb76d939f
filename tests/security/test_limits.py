"""What one client may hold of the server: half-sent heads, idle connections, huge headers,
too many connections — bounded on the HTTP listener (`protocol.DevicegateHttpProtocol`) and
the Postfix policy listener alike (docs/security.md, "Limits")."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from devicegate.adapters import postfix
from devicegate.adapters.base import LocalService
from devicegate.server.config import Limits
from tests.mail.conftest import BANNED
from tests.server.conftest import make_app
from tests.server.scenario import OPS
from tests.server.wire import serving

pytestmark = [pytest.mark.integration]

SMALL = Limits(header_timeout=0.5, max_head=8 * 1024, max_connections=20)


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes `sock` within `seconds` (EOF or reset)."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def response_head(sock: socket.socket) -> bytes:
    """One whole response from a kept connection (head and `Content-Length` body); its head."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def test_connections_that_send_nothing_or_half_a_head_are_closed(tmp_path: Path) -> None:
    app = make_app(tmp_path, *_scenario(tmp_path), limits=SMALL)
    with serving(app) as port:
        silent = connect(port)
        half = connect(port)
        half.sendall(b"GET /v1/forward-auth/web HTTP/1.1\r\nX-Devicegate-User: a\r\n")
        started = time.monotonic()
        assert closed_within(silent, 3) and closed_within(half, 3)
        assert time.monotonic() - started < 3
        # a whole request on a fresh connection is answered as ever
        whole = connect(port)
        whole.sendall(
            f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Devicegate-User: {OPS}\r\n\r\n".encode()
        )
        assert whole.recv(65536).startswith(b"HTTP/1.1 200")


def test_a_later_head_on_a_kept_connection_is_timed_from_its_own_start(tmp_path: Path) -> None:
    """One timer a connection: a keep-alive connection idle between requests for longer than
    `header_timeout` is not closed, and a head begun later that stalls half-way is closed
    `header_timeout` after it began — not when the connection's timer first fires."""
    app = make_app(tmp_path, *_scenario(tmp_path), limits=SMALL)
    request = f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Devicegate-User: {OPS}\r\n\r\n".encode()
    with serving(app) as port:
        kept = connect(port)
        kept.sendall(request)
        assert response_head(kept).startswith(b"HTTP/1.1 200")
        time.sleep(SMALL.header_timeout * 2)  # idle past the timer: still open
        kept.sendall(request)
        assert response_head(kept).startswith(b"HTTP/1.1 200")
        time.sleep(SMALL.header_timeout * 0.6)  # the connection's timer is armed, half gone
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        began = time.monotonic()
        assert closed_within(kept, 3)
        waited = time.monotonic() - began
        assert SMALL.header_timeout * 0.8 <= waited < SMALL.header_timeout + 1.5, waited


def test_a_huge_head_is_refused_before_it_is_read_whole(tmp_path: Path) -> None:
    app = make_app(tmp_path, *_scenario(tmp_path), limits=SMALL)
    with serving(app) as port:
        sock = connect(port)
        sock.sendall(b"GET /v1/forward-auth/web HTTP/1.1\r\nX-Filler: ")
        sent = 0
        reply = b""
        try:
            while sent < 16 * 1024 * 1024:
                sock.sendall(b"a" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.settimeout(5)
        try:
            reply = sock.recv(65536)
        except ConnectionResetError:
            reply = b""
        assert sent < 16 * 1024 * 1024  # refused long before the 16 MiB were sent
        assert reply == b"" or reply.startswith(b"HTTP/1.1 431")


def test_connections_beyond_the_cap_are_closed_at_once(tmp_path: Path) -> None:
    app = make_app(tmp_path, *_scenario(tmp_path), limits=Limits(max_connections=5))
    with serving(app) as port:
        held = [connect(port) for _ in range(5)]
        time.sleep(0.2)
        extra = connect(port)
        assert closed_within(extra, 2)
        for sock in held:
            sock.close()
        time.sleep(0.2)
        fresh = connect(port)
        fresh.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert fresh.recv(65536).startswith(b"HTTP/1.1 200")


def test_postfix_listener_limits(service: LocalService) -> None:
    """Idle and half-sent Postfix connections are closed; beyond the cap a new one is
    refused; a complete request is still answered."""

    async def main() -> tuple[bool, bool, bool, bytes]:
        server = postfix.PostfixPolicyServer(
            service,
            "127.0.0.1",
            0,
            idle_timeout=0.4,
            request_timeout=0.4,
            max_connections=3,
        )
        await server.start()
        try:
            idle = await asyncio.open_connection("127.0.0.1", server.port)
            half = await asyncio.open_connection("127.0.0.1", server.port)
            half[1].write(b"request=smtpd_access_policy\nsasl_username=x\n")
            await half[1].drain()
            third = await asyncio.open_connection("127.0.0.1", server.port)
            over = await asyncio.open_connection("127.0.0.1", server.port)
            over_closed = await asyncio.wait_for(over[0].read(), 2) == b""
            request = f"request=smtpd_access_policy\nsasl_username={BANNED}\n\n".encode()
            third[1].write(request)
            answer = await asyncio.wait_for(third[0].readuntil(b"\n\n"), 2)
            idle_closed = await asyncio.wait_for(idle[0].read(), 2) == b""
            half_closed = await asyncio.wait_for(half[0].read(), 2) == b""
            return over_closed, idle_closed, half_closed, answer
        finally:
            await server.close()

    over_closed, idle_closed, half_closed, answer = asyncio.run(main())
    assert over_closed and idle_closed and half_closed
    assert answer.startswith(b"action=")


def test_a_postfix_peer_that_is_not_trusted_is_disconnected(service: LocalService) -> None:
    async def main() -> bytes:
        server = postfix.PostfixPolicyServer(
            service, "127.0.0.1", 0, trusted=lambda address: address == "192.0.2.1"
        )
        await server.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(f"request=smtpd_access_policy\nsasl_username={BANNED}\n\n".encode())
            return await asyncio.wait_for(reader.read(), 2)
        finally:
            await server.close()

    assert asyncio.run(main()) == b""
    assert service.log == []


def _scenario(tmp: Path) -> tuple[Path, Path]:
    from tests.server.scenario import write_scenario

    return write_scenario(tmp / "s")
