"""Releasing a held device: an operator does it in the browser with a reason, a real
`devicegate serve` on the same store allows the device within its --state-refresh, and the
activity page says who did it and why. A viewer has no release control and a forged release
is refused; so is any state-changing request without the session's CSRF token."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest
from tests.console.conftest import Stack, wait_until
from tests.console.world import ANDROID, activesync, ask

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEVICE_ID = "RELEASE0DEVICE000000000000000002"
REASON = "replaced by an Android phone, checked by <i>helpdesk</i>"


def held_for(stack: Stack, user: str) -> str:
    found = [d for d in stack.store.list_devices(only_restricted=True) if d.user == user]
    assert len(found) == 1, found
    return found[0].device_ref


def csrf_of(client: httpx.Client, path: str = "/quarantine") -> str:
    page = client.get(path).text
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found
    return found.group(1)


def test_an_operator_releases_and_serve_allows_it(stack: Stack, page: Any) -> None:
    with stack.serve.client() as client:
        assert ask(client, "d02", "email", ANDROID, **activesync(DEVICE_ID, "iPhone")) == 403
        honest = activesync(DEVICE_ID, "Android")
        assert ask(client, "d02", "email", ANDROID, **honest) == 403  # held: any signals
        ref = held_for(stack, "d02")
        page.goto(stack.operator.url + "/quarantine")
        row = page.locator(f'tr[data-device="{ref}"]')
        row.locator("input[type=checkbox]").check()
        page.locator("#reason").fill(REASON)
        page.locator("button", has_text="Release").click()
        page.wait_for_url(re.compile(r"/quarantine\?released=1"))
        released_at = time.monotonic()
        assert wait_until(lambda: ask(client, "d02", "email", ANDROID, **honest) == 200, 5, 0.05)
        took = time.monotonic() - released_at
    assert took < 0.5 + 1.0, f"serve allowed the device only after {took:.2f}s"
    page.goto(stack.operator.url + "/activity")
    first = page.locator("tbody tr").first
    cells = first.locator("td").all_inner_texts()
    assert cells[1:5] == ["local-dev", "operator", "release", ref]
    assert cells[5] == REASON  # shown as written, markup as text
    assert not any(d.device_ref == ref for d in stack.store.list_devices(only_restricted=True))


def test_a_viewer_sees_no_release_control(stack: Stack, page: Any) -> None:
    page.goto(stack.viewer.url + "/quarantine")
    assert page.locator("tbody tr[data-device]").count() >= 1
    assert (
        page.locator("input[type=checkbox], #reason, form[action='/quarantine/release']").count()
        == 0
    )
    assert "operator role" in page.locator("main").inner_text()


def test_a_forged_release_by_a_viewer_is_refused(stack: Stack) -> None:
    ref = held_for(stack, "d01")
    with stack.viewer.client() as client:
        token = csrf_of(client)
        answer = client.post(
            "/quarantine/release", data={"csrf": token, "device": ref, "reason": "forged"}
        )
    assert answer.status_code == 403
    assert held_for(stack, "d01") == ref


@pytest.mark.parametrize("token", [None, "", "not-the-token"])
def test_a_post_without_the_csrf_token_is_refused(stack: Stack, token: str | None) -> None:
    ref = held_for(stack, "d01")
    with stack.operator.client() as client:
        csrf_of(client)  # a session exists; the request just does not carry its token
        data = {"device": ref, "reason": "no token"}
        if token is not None:
            data["csrf"] = token
        assert client.post("/quarantine/release", data=data).status_code == 403
        assert client.post("/logout", data={}).status_code == 403
        assert client.post("/language", data={"lang": "ru"}).status_code == 403
    assert held_for(stack, "d01") == ref


def test_a_release_needs_a_reason(stack: Stack) -> None:
    ref = held_for(stack, "d01")
    with stack.operator.client() as client:
        token = csrf_of(client)
        answer = client.post(
            "/quarantine/release", data={"csrf": token, "device": ref, "reason": "  "}
        )
    assert answer.status_code == 422
    assert held_for(stack, "d01") == ref
