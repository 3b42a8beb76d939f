"""Test-only plumbing for the real-server tests: devicegate's mail endpoints on 127.0.0.1 and
foreground server processes that are always stopped by PID.

`Endpoints` mounts the three adapters the way `devicegate serve` does (the HTTP handlers and
the Postfix policy port in one event loop, one service) on a minimal Starlette app under
uvicorn, in a background thread, over the in-process `LocalService` — so a test can look at
exactly what each adapter asked and recorded. test_real_serve.py runs the same servers in
front of `devicegate serve` itself.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devicegate.adapters import dovecot, radius
from devicegate.adapters.base import DecisionService
from devicegate.adapters.postfix import PostfixPolicyServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(
    port: int, timeout: float = 20.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def app_for(service: DecisionService) -> Starlette:
    async def dovecot_policy(request: Request) -> Response:
        status, data = dovecot.answer(
            service, request.query_params.get("command", "allow"), await request.body()
        )
        return JSONResponse(data, status_code=status)

    async def radius_authorize(request: Request) -> Response:
        status, data = radius.answer(service, await request.body())
        return JSONResponse(data, status_code=status)

    return Starlette(
        routes=[
            Route("/v1/dovecot/auth-policy", dovecot_policy, methods=["POST"]),
            Route("/v1/radius/authorize", radius_authorize, methods=["POST"]),
        ]
    )


class Endpoints:
    """HTTP on `http_port` and the Postfix policy service on `postfix_port`, one loop."""

    def __init__(self, service: DecisionService) -> None:
        self.service = service
        self.http_port = free_port()
        self.postfix_port = free_port()
        self._thread: threading.Thread | None = None
        self._server: uvicorn.Server | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        config = uvicorn.Config(
            app_for(self.service),
            host="127.0.0.1",
            port=self.http_port,
            log_level="warning",
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        wait_port(self.http_port)
        wait_port(self.postfix_port)

    def _run(self) -> None:
        assert self._server is not None
        server = self._server

        async def main() -> None:
            # no sighting cache: the tests change a user's device between two submissions
            policy = PostfixPolicyServer(
                self.service, "127.0.0.1", self.postfix_port, sighting_ttl=0
            )
            await policy.start()
            try:
                await server.serve()
            finally:
                await policy.close()

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported by stop()
            self._error = exc

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(15)
            self._thread = None
        if self._error is not None:
            raise RuntimeError("the test endpoints failed") from self._error


@contextmanager
def endpoints(service: DecisionService) -> Iterator[Endpoints]:
    ep = Endpoints(service)
    ep.start()
    try:
        yield ep
    finally:
        ep.stop()


@contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    """A world-traversable temporary directory (servers drop privileges), always removed."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def foreground(
    argv: list[str], *, port: int, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server in the foreground until it listens on `port`; stop it by PID at the end."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    try:
        try:
            wait_port(port, proc=proc)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}; log:\n{log.read_text(errors='replace')[-3000:]}") from None
        yield proc
    finally:
        stop_pid(proc)


def stop_pid(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM the process, SIGKILL it after `timeout`; children share its session."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def chown_tree(path: Path, user: str) -> None:
    import pwd

    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in files + dirs:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def is_root() -> bool:
    return os.geteuid() == 0


def make_private(path: Path) -> None:
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
