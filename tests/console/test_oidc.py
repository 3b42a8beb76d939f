"""Sign-in by OpenID Connect (authorization code with PKCE) against a local provider the test
starts (oidc-provider-mock), in the browser: a reader's group makes a viewer, an operator's
group an operator; an account in neither group gets no console. Without a session every page
sends the browser to sign in, and the session cookie is HttpOnly, SameSite and signed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from tests.conftest import require
from tests.console.conftest import Console, Stack, start_console
from tests.server import procs

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    # the provider runs in this process: its authlib warns about its own API (not ours)
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

USERS = {
    "vera": ["console-readers"],
    "oleg": ["console-ops", "console-readers"],
    "nina": ["payroll"],
}


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    try:
        from oidc_provider_mock import User, run_server_in_thread
    except ImportError:
        require(False, "oidc-provider-mock is not installed (pip install -e '.[test]')")
        raise
    claims = [
        User(sub=name, claims={"email": f"{name}@gov.example", "groups": groups})
        for name, groups in USERS.items()
    ]
    with run_server_in_thread(user_claims=claims) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture(scope="module")
def console(stack: Stack, provider: str) -> Iterator[Console]:
    secret = stack.world.root / "oidc-secret"
    secret.write_text("console-client-secret-0123456789\n")
    running = start_console(
        stack.world,
        "--oidc-issuer",
        provider,
        "--oidc-client-id",
        "devicegate-console",
        "--oidc-client-secret-file",
        str(secret),
        "--viewer-group",
        "console-readers",
        "--operator-group",
        "console-ops",
    )
    try:
        yield running
    finally:
        procs.stop(running.proc)


def sign_in(page: Any, console: Console, who: str) -> None:
    page.context.clear_cookies()
    page.goto(f"http://localhost:{console.port}/quarantine")
    page.wait_for_url(re.compile(r"/oauth2/authorize"))  # the provider's page
    page.locator("input[name=sub]").fill(who)
    page.locator("input[name=sub]").press("Enter")


@pytest.mark.parametrize(("who", "role"), [("vera", "viewer"), ("oleg", "operator")])
def test_sign_in_maps_groups_to_roles(page: Any, console: Console, who: str, role: str) -> None:
    sign_in(page, console, who)
    page.wait_for_url(re.compile(rf"localhost:{console.port}/quarantine$"))
    assert f"{who}@gov.example ({role})" in page.locator("header").inner_text()
    can_release = page.locator("#reason").count() == 1
    assert can_release == (role == "operator")
    cookie = next(c for c in page.context.cookies() if c["name"] == "devicegate_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.locator("button", has_text="Sign out").click()
    page.goto(f"http://localhost:{console.port}/")
    page.wait_for_url(re.compile(r"/oauth2/authorize"))


def test_an_account_without_a_console_group_is_refused(page: Any, console: Console) -> None:
    sign_in(page, console, "nina")
    page.wait_for_url(re.compile(r"/auth/callback"))
    assert "no console role" in page.locator("main").inner_text()
    assert page.goto(f"http://localhost:{console.port}/").url.count("/oauth2/authorize") == 1


def test_a_tampered_session_cookie_signs_nobody_in(page: Any, console: Console) -> None:
    sign_in(page, console, "oleg")
    page.wait_for_url(re.compile(r"/quarantine$"))
    cookie = next(c for c in page.context.cookies() if c["name"] == "devicegate_console")
    value = cookie["value"]
    forged = value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB")
    page.context.add_cookies([{**cookie, "value": forged}])
    page.goto(f"http://localhost:{console.port}/")
    page.wait_for_url(re.compile(r"/oauth2/authorize"))
