"""The store goes away and comes back: a console on PostgreSQL, reached through a TCP relay the
test cuts, shows an error banner (503) while the store is unreachable and the pages again once
it returns — without a restart."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from tests.console.conftest import start_console, wait_until
from tests.console.world import write_world
from tests.server import procs

from devicegate.store import open_store

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Relay:
    """Forwards 127.0.0.1:port to a target; `cut()` drops every connection and stops
    listening, `mend()` listens again on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = procs.free_port()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.mend()

    def mend(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        if self._listener is not None:
            with suppress(OSError):  # wakes the accepting thread (close alone would not)
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        for conn in self._conns:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[tuple[str, Relay]]:
    with procs.postgres(tmp_path / "pg") as url:
        open_store(url).engine.dispose()  # create the schema
        parts = urlsplit(url)
        relay = Relay(("127.0.0.1", int(parts.port or 5432)))
        try:
            yield url.replace(f":{parts.port}/", f":{relay.port}/"), relay
        finally:
            relay.cut()


def test_store_down_shows_a_banner_and_recovers(
    tmp_path: Path, relay: tuple[str, Relay], page: Any
) -> None:
    url, link = relay
    world = write_world(tmp_path / "world")
    console = start_console(world, "--dev-login", "viewer", store=url)
    try:
        assert page.goto(console.url + "/quarantine").status == 200
        link.cut()
        down = page.goto(console.url + "/quarantine")
        assert down.status == 503
        assert "store cannot be read" in page.locator("main .banner").inner_text()
        assert page.goto(console.url + "/").status == 503
        link.mend()
        assert wait_until(lambda: page.goto(console.url + "/quarantine").status == 200, 20, 0.5)
        assert page.goto(console.url + "/").status == 200
        assert console.proc.poll() is None
    finally:
        procs.stop(console.proc)
