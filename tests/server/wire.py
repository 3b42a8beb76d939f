"""A real uvicorn server on 127.0.0.1 with the configuration `devicegate serve` uses (and,
when asked, the Postfix policy listener `serve` runs beside it, on the same loop), and raw
HTTP/1.1 and Postfix-protocol exchanges with it over real sockets. The app runs in this
process, so a test can look into it — and a mutant of its code is what answers."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import uvicorn

from devicegate.server import DevicegateApp, ServerConfig
from devicegate.server.protocol import DevicegateHttpProtocol
from devicegate.server.runner import _uvicorn_config, postfix_server
from tests.server.procs import free_port
from tests.server.scenario import ANDROID_CHROME, OPS


@dataclass
class Ports:
    http: int
    postfix: int | None
    #: the Postfix policy server (`runner.postfix_server`), once it listens
    postfix_server: Any = None


@contextmanager
def serving_all(app: Any, *, protocol: bool = True, postfix: bool = False) -> Iterator[Ports]:
    """uvicorn on a free port in a thread (its own loop), as `runner.serve` configures it;
    with `postfix`, `runner.postfix_server` listening on another port in the same loop."""
    port = free_port()
    mail = free_port() if postfix else None
    if isinstance(app, DevicegateApp):
        config = _uvicorn_config(app, ServerConfig(policy=(), port=port))
    else:
        config = uvicorn.Config(app, port=port, log_level="warning", lifespan="off")
    if protocol:
        config.http = DevicegateHttpProtocol
    server = uvicorn.Server(config)
    listening = threading.Event()
    ports = Ports(port, mail)

    async def main() -> None:
        policy = None
        if mail is not None:  # the app's own settings, on this port
            policy = postfix_server(app, replace(app.service.config, postfix_port=mail))
        if policy is not None:
            await policy.start()
            ports.postfix_server = policy
        listening.set()
        try:
            await server.serve()
        finally:
            if policy is not None:
                await policy.close()

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not (server.started and listening.is_set()):
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield ports
    finally:
        server.should_exit = True
        thread.join(20)


@contextmanager
def serving(app: Any, *, protocol: bool = True) -> Iterator[int]:
    """`serving_all` without Postfix: the HTTP port."""
    with serving_all(app, protocol=protocol) as ports:
        yield ports.http


def request(
    user: str = OPS, agent: str = ANDROID_CHROME, *, path: str = "/v1/forward-auth/web",
    method: str = "GET", extra: str = "", version: str = "1.1",
) -> bytes:  # fmt: skip
    return (
        f"{method} {path} HTTP/{version}\r\nHost: devicegate\r\nX-Devicegate-User: {user}\r\n"
        f"User-Agent: {agent}\r\nX-Original-URI: /intranet/x\r\n{extra}\r\n"
    ).encode()


def read_responses(sock: socket.socket, count: int) -> list[bytes]:
    """`count` whole responses (head and Content-Length body) from `sock`."""
    buffer, out = b"", list[bytes]()
    while len(out) < count:
        head_end = buffer.find(b"\r\n\r\n")
        if head_end >= 0:
            head = buffer[:head_end].decode("latin-1").lower()
            length = int(head.split("content-length: ")[1].split("\r\n")[0])
            end = head_end + 4 + length
            if len(buffer) >= end:
                out.append(buffer[:end])
                buffer = buffer[end:]
                continue
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed after {len(out)} responses")
        buffer += chunk
    return out


def exchange(port: int, payload: bytes, count: int) -> list[bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        return read_responses(sock, count)


def one_by_one(port: int, *payloads: bytes) -> list[bytes]:
    """Each request sent after the answer to the one before, on one connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        answers = []
        for payload in payloads:
            sock.sendall(payload)
            answers += read_responses(sock, 1)
        return answers


def dovecot(body: bytes, *, query: str = "?command=allow", extra: str = "") -> bytes:
    head = (
        f"POST /v1/dovecot/auth-policy{query} HTTP/1.1\r\nHost: devicegate\r\n"
        f"Content-Type: application/json\r\n{extra}"
    )
    if "Transfer-Encoding" in extra:
        return f"{head}\r\n{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


def login(session: str, agent_id: str, user: str = OPS) -> bytes:
    fields = {"login": user, "remote": "192.0.2.7", "protocol": "imap", "session_id": session}
    return json.dumps({**fields, "tls": True, "device_id": agent_id}).encode()


def postfix_request(user: str | None = OPS) -> bytes:
    """One Postfix policy request for an authenticated submission (RCPT)."""
    sasl = f"sasl_username={user}\n" if user else ""
    return (
        "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
        f"client_address=198.51.100.7\n{sasl}\n"
    ).encode()


def postfix_answers(sock: socket.socket, count: int) -> list[bytes]:
    """`count` Postfix answers (`action=…` and an empty line each) from `sock`."""
    buffer, out = b"", list[bytes]()
    while len(out) < count:
        end = buffer.find(b"\n\n")
        if end >= 0:
            out.append(buffer[: end + 2])
            buffer = buffer[end + 2 :]
            continue
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed after {len(out)} answers")
        buffer += chunk
    return out
