"""The attack tests' stacks: a real `devicegate serve` behind the shipped proxy configurations
(deploy/nginx, deploy/haproxy) on 127.0.0.1, the sample application behind them, and the
store to look into afterwards — so each attack is replayed against what operators deploy."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from devicegate.store import Store, open_store
from tests.mail.conftest import service as service  # the in-process service over the corpus
from tests.mail.conftest import snapshot as snapshot
from tests.server import procs
from tests.server.scenario import write_scenario

#: the HS256 secret deploy/haproxy/haproxy-sso.cfg verifies (the test SSO's)
SSO_SECRET = b"test-sso-secret-0123456789"


@dataclass
class Stack:
    """One proxy in front of one devicegate serve, and the store they share."""

    client: httpx.Client
    dg: procs.Devicegate
    store: Store
    policy: Path

    def decisions(self) -> list[tuple[str, str, str | None]]:
        """(user, action, rule) of every logged decision, oldest first."""
        with self.store.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                'select "user", action, rule from decision_log order by id'
            ).all()
        return [(r[0], r[1], r[2]) for r in rows]

    def count(self, table: str) -> int:
        return self.store.count(table)


Proxy = Callable[[Path, int, int], AbstractContextManager[int]]

PROXIES: dict[str, Proxy] = {
    "nginx": lambda tmp, dg, app: procs.nginx(tmp, dg, app),
    "haproxy": lambda tmp, dg, app: procs.haproxy(tmp, dg, app),
}


@contextmanager
def stack(tmp: Path, proxy: str, *extra: str) -> Iterator[Stack]:
    procs.need(proxy.split("-")[0])
    policy, directory = write_scenario(tmp / "scenario")
    url = f"sqlite:///{tmp}/dg.db"
    with (
        procs.sample_app() as app_port,
        procs.devicegate(
            tmp, policy, directory, url, extra=("--basic-user-for", "email", *extra)
        ) as dg,
        PROXIES[proxy](tmp, dg.port, app_port) as port,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client,
    ):
        yield Stack(client, dg, open_store(url), policy)


@pytest.fixture(params=sorted(PROXIES))
def proxied(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    with stack(tmp_path, request.param) as built:
        yield built


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def jwt(claims: dict[str, object], secret: bytes = SSO_SECRET) -> str:
    """An HS256 JWT, as the SSO of haproxy-sso.cfg would issue it."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = part(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = part(json.dumps(claims).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{part(mac)}"


class _Sso(BaseHTTPRequestHandler):
    """An auth_request-style SSO (oauth2-proxy's /oauth2/auth): 202 with the user for a
    valid session cookie, 401 otherwise."""

    sessions: ClassVar[dict[str, str | tuple[str, str]]] = {}

    def do_GET(self) -> None:
        if self.path.startswith("/oauth2/auth"):
            cookie = self.headers.get("Cookie", "")
            token = cookie.removeprefix("sso=") if cookie.startswith("sso=") else ""
            found = self.sessions.get(token)
            user, groups = found if isinstance(found, tuple) else (found, None)
            self.send_response(202 if user else 401)
            if user:
                self.send_header("X-Auth-Request-User", user)
            if user and groups is not None:
                self.send_header("X-Auth-Request-Groups", groups)
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def sso(sessions: dict[str, str] | dict[str, str | tuple[str, str]]) -> AbstractContextManager[int]:
    """The SSO on a free port; a session is a user, or (user, comma-separated groups)."""
    return procs.http_server(type("Sso", (_Sso,), {"sessions": sessions}))
