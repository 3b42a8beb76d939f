"""The live page streams what `serve` decides (SSE through htmx), filtered, with pause; and the
overview lists every `serve` instance with its policy and last heartbeat, flagging stale ones.

Heartbeats: `serve` does not write them yet (the lead wires `record_heartbeat` into it); here
the test records them with that very function, as serve will."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.console.conftest import Stack
from tests.console.world import ANDROID, IPHONE, ask

from devicegate.store.heartbeats import record_heartbeat

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_live_shows_a_serve_decision_within_two_seconds(stack: Stack, page: Any) -> None:
    page.goto(stack.operator.url + "/live?action=block")
    page.wait_for_function("document.querySelector('#live-rows').getAttribute('sse-connect')")
    page.wait_for_timeout(800)  # the EventSource connects
    before = page.locator("#live-rows tr").count()
    with stack.serve.client() as client:
        assert ask(client, "a04", "web", ANDROID + " filtered-out") == 200  # allowed
        sent = time.monotonic()
        assert ask(client, "a11", "web", IPHONE + " live-test") == 403
    page.locator("#live-rows tr", has_text="live-test").wait_for(timeout=2_000)
    took = time.monotonic() - sent
    assert took < 2.0
    first = page.locator("#live-rows tr").first
    assert "a11" in first.inner_text() and "block" in first.inner_text()
    assert page.locator("#live-rows tr", has_text="filtered-out").count() == 0
    assert page.locator("#live-rows tr").count() == before + 1
    first.locator("a", has_text="a11").click()
    page.wait_for_url(re.compile(r"/users/a11$"))


def test_paused_live_does_not_change(stack: Stack, page: Any) -> None:
    page.goto(stack.operator.url + "/live")
    page.locator("#pause").click()
    page.wait_for_url(re.compile(r"paused=1"))
    rows = page.locator("#live-rows tr").count()
    with stack.serve.client() as client:
        ask(client, "a03", "web", IPHONE + " while-paused")
    page.wait_for_timeout(1500)
    assert page.locator("#live-rows tr").count() == rows
    page.locator("#resume").click()
    page.wait_for_url(re.compile(r"/live$"))
    assert page.locator("#live-rows tr", has_text="while-paused").count() == 1


def test_overview_lists_serve_instances_and_flags_stale_ones(stack: Stack, page: Any) -> None:
    now = datetime.now(UTC)
    version = _version(stack)
    record_heartbeat(stack.store, "gw-live", policy_version=version, started_at=now, now=now)
    record_heartbeat(
        stack.store,
        "gw-old",
        policy_version="000000000000",
        started_at=now - timedelta(days=1),
        now=now - timedelta(minutes=10),
    )
    page.goto(stack.operator.url + "/")
    live = page.locator('tr[data-instance="gw-live"]')
    old = page.locator('tr[data-instance="gw-old"]')
    assert version in live.inner_text() and "beating" in live.inner_text()
    assert "stale" in old.inner_text() and "not the current policy" in old.inner_text()
    assert old.get_attribute("class") == "stale"


def _version(stack: Stack) -> str:
    with stack.store.engine.connect() as conn:
        return str(
            conn.exec_driver_sql("select policy_version from decision_details limit 1").scalar()
        )
