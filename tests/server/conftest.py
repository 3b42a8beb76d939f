"""Fixtures for the server tests: an in-process app over a tmp SQLite store."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from devicegate.server import DevicegateApp, ServerConfig, create_app
from tests.server.procs import TOKEN
from tests.server.scenario import write_scenario

T = TypeVar("T")


class TestClient:
    """A synchronous client for the ASGI app in process: its own event loop in a thread,
    the app's startup/shutdown around it (starlette's TestClient warns under httpx)."""

    __test__ = False

    def __init__(self, app: DevicegateApp, **_: object) -> None:
        self.app = app
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._client: httpx.AsyncClient | None = None

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def __enter__(self) -> TestClient:
        self._thread.start()
        self._run(self.app.startup())
        transport = httpx.ASGITransport(app=self.app, client=("127.0.0.1", 50000))
        self._client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        return self

    def __exit__(self, *_: object) -> None:
        assert self._client is not None
        self._run(self._client.aclose())
        self._run(self.app.shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        assert self._client is not None
        return self._run(self._client.request(method, url, **kw))

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)


@pytest.fixture
def scenario(tmp_path: Path) -> tuple[Path, Path]:
    return write_scenario(tmp_path / "scenario")


def make_app(tmp_path: Path, policy: Path, directory: Path | None, **over: object) -> DevicegateApp:
    settings: dict[str, Any] = {
        "store_url": f"sqlite:///{tmp_path}/store.db",
        "admin_token": TOKEN,
        "state_refresh": 0.2,
    }
    settings.update(over)
    config = ServerConfig(policy=(policy,), directory=directory, **settings)
    return create_app(config)


@pytest.fixture
def app(tmp_path: Path, scenario: tuple[Path, Path]) -> DevicegateApp:
    return make_app(tmp_path, *scenario)


@pytest.fixture
def client(app: DevicegateApp) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client
