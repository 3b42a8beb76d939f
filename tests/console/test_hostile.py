"""Hostile input to the console, in process: fuzzed paths and query parameters never give a
500; only configured Host names are answered; proxy headers count only from configured
proxies; the command line refuses a dev login off loopback; every answer carries the
Content-Security-Policy and no page holds inline script or style."""

from __future__ import annotations

import asyncio
import re
import subprocess
import threading
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.console.world import console_app, write_world
from tests.server import procs
from tests.store.logrows import Said, write

from devicegate.console import ProxySettings
from devicegate.console.web import CSP
from devicegate.store import open_store

ROUTES = [
    "/",
    "/units/gov/a",
    "/users/a01",
    "/devices/d-1",
    "/quarantine",
    "/exceptions",
    "/live",
    "/whatif",
    "/activity",
]
PARAMS = [
    "days",
    "sort",
    "dir",
    "format",
    "action",
    "unit",
    "resource",
    "rule",
    "adapter",
    "paused",
    "candidate",
    "at",
    "before",
    "after",
    "next",
]


T = TypeVar("T")


class TestClient:
    """The console app in process, from a peer address that is no proxy's (198.51.100.7):
    its own event loop in a thread (starlette's TestClient warns under httpx)."""

    __test__ = False

    def __init__(self, app: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 50000))
        self._client = httpx.AsyncClient(transport=transport, base_url="http://testserver")

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=60)

    def __enter__(self) -> TestClient:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._run(self._client.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self._run(self._client.get(url, **kw))

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self._run(self._client.post(url, **kw))


def app_for(tmp: Path, **kw: object) -> TestClient:
    world = write_world(tmp)
    store = open_store(world.store_url)
    write(store, [(datetime.now(UTC), Said("a01", "block", "wave-1", matched=("wave-1",)))])
    return TestClient(console_app(world, store, **kw))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with app_for(tmp_path_factory.mktemp("hostile"), dev_login="operator") as found:
        yield found


text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    route=st.sampled_from(ROUTES),
    params=st.dictionaries(st.sampled_from(PARAMS), text, max_size=5),
    tail=text,
)
def test_fuzzed_queries_never_fail(
    client: TestClient, route: str, params: dict[str, str], tail: str
) -> None:
    path = route if not tail or route == "/" else f"{route}{quote(tail, safe='')}"
    answer = client.get(path, params=params, follow_redirects=False)
    assert answer.status_code < 500, (path, params, answer.text[:500])


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(form=st.dictionaries(st.sampled_from(["csrf", "device", "reason", "lang", "next"]), text))
def test_fuzzed_posts_are_refused_cleanly(client: TestClient, form: dict[str, str]) -> None:
    for path in ("/quarantine/release", "/language", "/logout"):
        answer = client.post(path, data=form, follow_redirects=False)
        assert answer.status_code in (303, 403, 422), (path, form)


@pytest.mark.parametrize(
    "path",
    [
        "/?days=%C2%B2",  # "²": str.isdigit says yes, int says no
        "/units/gov/a?days=%E2%91%A0",  # "①"
        "/exceptions?days=%C2%B2",
        "/activity?before=%C2%B2",
        "/activity?before=999999999999999999999999",  # past any 64-bit id
    ],
)
def test_numbers_that_are_no_numbers_are_ignored(client: TestClient, path: str) -> None:
    """A number parameter the console cannot use is left out, as an absent one is."""
    assert client.get(path).status_code == 200, path


def test_only_configured_hosts_are_answered(client: TestClient) -> None:
    assert client.get("/", headers={"Host": "testserver"}).status_code == 200
    assert client.get("/", headers={"Host": "rebound.attacker.example"}).status_code == 400


def test_every_answer_has_the_policy_and_no_inline_script(client: TestClient) -> None:
    for route in ROUTES:
        answer = client.get(route)
        assert answer.headers["content-security-policy"] == CSP
        assert "'unsafe-inline'" not in CSP
        page = answer.text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), route  # no inline script
        assert not re.search(r"\son[a-z]+\s*=", page), route  # no event handler attributes
        assert not re.search(r"\sstyle\s*=", page), route  # no inline style


def test_proxy_headers_count_only_from_the_proxy(tmp_path: Path) -> None:
    import ipaddress

    proxy = ProxySettings((ipaddress.ip_network("127.0.0.2/32"),))
    with app_for(tmp_path, proxy=proxy, groups={"ops": "operator"}) as client:
        # the peer is 198.51.100.7, not the proxy's address
        answer = client.get(
            "/", headers={"X-Auth-Request-User": "mallory", "X-Auth-Request-Groups": "ops"}
        )
        assert answer.status_code == 403
        assert "mallory" not in answer.text


def test_dev_login_listens_on_loopback_only(tmp_path: Path) -> None:
    world = write_world(tmp_path)
    open_store(world.store_url)
    for host in ("0.0.0.0", "192.0.2.10", "::"):
        done = subprocess.run(
            [
                procs.DEVICEGATE,
                "console",
                "-p",
                str(world.policy),
                "-d",
                str(world.directory),
                "--store",
                world.store_url,
                "--dev-login",
                "operator",
                "--host",
                host,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2 and "refusing to listen" in done.stderr
        assert "Traceback" not in done.stderr
    done = subprocess.run(
        [procs.DEVICEGATE, "console", "-p", str(world.policy), "--store", world.store_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "no way to sign in" in done.stderr
    done = subprocess.run(
        [
            procs.DEVICEGATE,
            "console",
            "-p",
            str(world.policy),
            "--store",
            f"sqlite:///{tmp_path}/missing.db",
            "--dev-login",
            "viewer",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1 and "no store at" in done.stderr


def test_pages_speak_the_browsers_language(client: TestClient) -> None:
    russian = client.get("/", headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"}).text
    assert "Ход внедрения" in russian and '<html lang="ru">' in russian
    assert "Apple leaves work in gov/a" in russian  # the policy's own text, as written
    english = client.get("/", headers={"Accept-Language": "de,en;q=0.5"}).text
    assert "Rollout overview" in english and '<html lang="en">' in english
    missing = client.get("/units/nowhere", headers={"Accept-Language": "ru"})
    assert missing.status_code == 404 and "нет подразделения `nowhere`" in missing.text
