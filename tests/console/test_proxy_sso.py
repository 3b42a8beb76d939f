"""The shipped nginx + SSO example (deploy/nginx/console-sso.conf), run for real: nginx asks an
oauth2-proxy-style SSO (a fake one here, as in tests/security) and hands the console the user
and groups it verified. A client's own identity headers never get through; the console
believes them only from the proxy's address; the live stream passes through unbuffered."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from tests.console.conftest import Console, Stack, start_console
from tests.security.conftest import sso as sso_of
from tests.server import procs

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SESSIONS: dict[str, str | tuple[str, str]] = {
    "alice-session": ("alice@ops.example", "console-ops"),
    "bob-session": ("bob@ops.example", "console-readers,payroll"),
}


PASS = "        proxy_pass http://devicegate_console;"


def session(token: str) -> dict[str, str]:
    return {"Cookie": f"sso={token}"}


@pytest.fixture(scope="module")
def gateway(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[int, Console]]:
    tmp = tmp_path_factory.mktemp("console-sso")
    console = start_console(
        stack.world,
        "--proxy-auth-from",
        "127.0.0.2",
        "--viewer-group",
        "console-readers",
        "--operator-group",
        "console-ops",
    )
    try:
        with (
            sso_of(SESSIONS) as sso_port,
            procs.nginx(
                tmp,
                0,
                0,
                site="console-sso.conf",
                listen="127.0.0.1:8446",
                replace={
                    "127.0.0.1:8282": f"127.0.0.1:{console.port}",
                    "127.0.0.1:4180": f"127.0.0.1:{sso_port}",
                    # the test's nginx speaks to the console from 127.0.0.2, the test from .1
                    PASS: f"        proxy_bind 127.0.0.2;\n{PASS}",
                },
            ) as port,
        ):
            yield port, console
    finally:
        procs.stop(console.proc)


def test_the_sso_user_and_groups_reach_the_console(gateway: tuple[int, Console]) -> None:
    port, _ = gateway
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
        page = client.get("/quarantine", headers=session("alice-session"))
        assert page.status_code == 200
        assert "alice@ops.example (operator)" in page.text and 'id="reason"' in page.text
        page = client.get("/quarantine", headers=session("bob-session"))
        assert "bob@ops.example (viewer)" in page.text and 'id="reason"' not in page.text


def test_a_client_cannot_name_itself(gateway: tuple[int, Console]) -> None:
    port, console = gateway
    forged = {"X-Auth-Request-User": "mallory@x.example", "X-Auth-Request-Groups": "console-ops"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
        # through nginx: the SSO's answer overwrites the client's headers
        page = client.get("/", headers=forged | session("bob-session"))
        assert "bob@ops.example (viewer)" in page.text and "mallory" not in page.text
        # no SSO session: sent to sign in, whatever the headers say
        answer = client.get("/", headers=forged, follow_redirects=False)
        assert answer.status_code == 302 and "/oauth2/sign_in" in answer.headers["location"]
    # straight to the console, from an address that is not the proxy's
    with console.client() as direct:
        assert direct.get("/", headers=forged).status_code == 403


def test_the_live_stream_passes_through(gateway: tuple[int, Console]) -> None:
    port, _ = gateway
    with (
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client,
        client.stream("GET", "/live/stream", headers=session("alice-session")) as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        first = next(stream.iter_raw())
        assert first.startswith(b": connected")
