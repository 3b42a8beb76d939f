"""Real processes for the console tests: `devicegate serve` taking the traffic, `devicegate
console` processes on the same store, and Debian's Chromium driven by Playwright (its own
browser download cannot work here: `executable_path` points at /usr/bin/chromium). axe-core
comes from npm (tests/console/js, installed by scripts/npm-deps.sh) and is injected into
every page checked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.audit.test_report import FLAGS as REPORT_FLAGS
from tests.conftest import require
from tests.console.world import World, send_traffic, write_world
from tests.server import procs

from devicegate.store import Store, open_store

HERE = Path(__file__).resolve().parent
AXE = HERE / "js" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
#: the flags the report's test runs Chromium with; Playwright adds --headless itself
FLAGS = [flag for flag in REPORT_FLAGS if flag != "--headless"]


@dataclass
class Console:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=20, **kw)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_console(world: World, *extra: str, store: str | None = None) -> Console:
    """`devicegate console` on a free port (low CPU priority: the machine is shared)."""
    port = procs.free_port()
    log = world.root / f"console-{port}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                "nice",
                procs.DEVICEGATE,
                "console",
                "--policy",
                str(world.policy),
                "--directory",
                str(world.directory),
                "--store",
                store or world.store_url,
                "--port",
                str(port),
                "--candidates",
                str(world.candidates),
                *extra,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=world.root,
        )
    try:
        procs.wait_port(port, proc, timeout=60)
    except Exception:
        procs.stop(proc)
        raise RuntimeError(log.read_text(errors="replace")) from None
    return Console(proc, port, log)


def wait_until(predicate: Any, timeout: float = 10.0, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


@dataclass
class Stack:
    world: World
    serve: procs.Devicegate
    operator: Console
    viewer: Console
    store: Store

    def rolled_up(self) -> bool:
        """Whether the rollups hold every decision in the log (the console's updater ran)."""
        from devicegate.store.rollups import position

        found = position(self.store)
        with self.store.engine.connect() as conn:
            newest = conn.exec_driver_sql("select max(id) from decisions").scalar() or 0
        return found is not None and found.last_id >= newest


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    world = write_world(tmp_path_factory.mktemp("console"))
    serve = procs.start_devicegate(world.root, world.policy, world.directory, world.store_url)
    consoles: list[Console] = []
    try:
        with serve.client() as client:
            send_traffic(client)
        consoles.append(start_console(world, "--dev-login", "operator"))
        consoles.append(start_console(world, "--dev-login", "viewer"))
        built = Stack(world, serve, consoles[0], consoles[1], open_store(world.store_url))
        assert wait_until(built.rolled_up, 30), consoles[0].output()
        yield built
    finally:
        for console in consoles:
            procs.stop(console.proc, signal.SIGTERM)
        procs.stop(serve.proc)


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A fresh Chromium profile (bypass_csp only so axe-core can be injected), a module's
    tests long: while the sync API is open the thread has a running event loop, which the
    tests after tests/console (`asyncio.run`) must not find."""
    require(Path(CHROMIUM).exists(), "Debian's chromium is not installed (scripts/system-deps.sh)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "playwright is not installed (pip install -e '.[test]')")
        raise
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            bypass_csp=True,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser_context: Any) -> Iterator[Any]:
    found = browser_context.new_page()
    try:
        yield found
    finally:
        found.close()


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it stands."""
    require(AXE.exists(), "axe-core is not installed (bash scripts/npm-deps.sh)")
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.html)}))"
    )
    return list(found)


def shot(page: Any, folder: Path, name: str) -> Path:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5_000
    return path


def ci() -> bool:
    return os.environ.get("CI") == "true"


__all__ = ["Console", "Stack", "axe_violations", "json", "shot", "start_console", "wait_until"]
