"""Hostile requests get a 4xx with a JSON error: never a 500, never a crash."""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.server.conftest import TestClient

SAFE_PATH = st.text(alphabet=string.ascii_letters + string.digits + "/-_.~%", max_size=60)


def assert_json_4xx(response) -> None:  # type: ignore[no-untyped-def]
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert "error" in response.json()


@pytest.mark.parametrize(
    ("method", "path", "kw"),
    [
        ("GET", "/v1/forward-auth/web", {}),  # no user
        ("GET", "/v1/forward-auth/nosuch", {"headers": {"X-Devicegate-User": "a"}}),
        ("GET", "/v1/forward-auth/we%20b", {"headers": {"X-Devicegate-User": "a"}}),
        ("GET", "/v1/forward-auth/web", {"headers": {"X-Devicegate-User": "a" * 1000}}),
        (
            "GET",
            "/v1/forward-auth/web",
            {"headers": {"X-Devicegate-User": "a", "User-Agent": "x" * 9000}},
        ),
        (
            "GET",
            "/v1/forward-auth/email",
            {
                "headers": {
                    "X-Devicegate-User": "a",
                    "X-Original-URI": "/Microsoft-Server-ActiveSync?@@@",
                }
            },
        ),
        ("GET", "/v1/forward-auth/web", {"headers": {"Authorization": "Basic ***"}}),
        ("POST", "/v1/check", {"content": b"\xff\xfe not json"}),
        ("POST", "/v1/check", {"json": []}),
        ("POST", "/v1/check", {"json": {"user": "a"}}),
        ("POST", "/v1/check", {"json": {"user": "a", "resource": "web", "extra": 1}}),
        ("POST", "/v1/check", {"json": {"user": "a", "resource": "nosuch"}}),
        ("POST", "/v1/check", {"json": {"user": "a", "resource": "web", "at": "yesterday"}}),
        ("POST", "/v1/check", {"json": {"user": "a", "resource": "web", "signals": {"x": "1"}}}),
        ("POST", "/v1/check", {"json": {"user": "a", "resource": "web", "signals": {"mac": 5}}}),
        ("POST", "/v1/check", {"json": {"user": "a", "resource": "web", "signals": []}}),
        ("POST", "/v1/check", {"content": b"{" + b" " * 70000 + b"}"}),
        ("POST", "/v1/check", {"content": b"[" * 5000 + b"]" * 5000}),
        ("POST", "/v1/check", {"content": b'{"user": ' + b"9" * 5000 + b"}"}),
        ("POST", "/v1/decide", {"content": b"[" * 5000 + b"]" * 5000}),
        ("GET", "/v1/check", {}),
        ("DELETE", "/healthz", {}),
        ("GET", "/nope/../../etc/passwd", {}),
    ],
)
def test_bad_requests(client: TestClient, method: str, path: str, kw: dict[str, object]) -> None:
    assert_json_4xx(client.request(method, path, **kw))


@pytest.mark.parametrize(
    "body",
    [b'{"User-Name": ' + b"9" * 5000 + b"}", b"[" * 5000 + b"]" * 5000, b"\xff{"],
)
def test_hostile_radius_bodies_are_rejected_at_once(client: TestClient, body: bytes) -> None:
    """rlm_rest's own answer shape: 401 (reject) with a Reply-Message — never a 500, never
    a wait (a first request with nothing decided yet once waited for a log that had no
    batch to commit)."""
    answer = client.post("/v1/radius/authorize", content=body)
    assert answer.status_code == 401
    assert answer.json()["reply:Reply-Message"] == "devicegate: malformed authorization request"


def test_binary_header_bytes(client: TestClient) -> None:
    headers = [(b"x-devicegate-user", b"a\xff\xfe"), (b"user-agent", bytes(range(128, 256)))]
    response = client.get("/v1/forward-auth/web", headers=headers)
    assert response.status_code in (200, 400, 403)
    if response.status_code == 400:
        assert response.json()["error"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
    path=SAFE_PATH,
    body=st.binary(max_size=200),
)
def test_random_requests_never_5xx(client: TestClient, method: str, path: str, body: bytes) -> None:
    response = client.request(method, "/" + path, content=body)
    assert response.status_code < 500, (method, path, response.status_code)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    user=st.text(max_size=40),
    ua=st.text(max_size=200),
    uri=st.text(max_size=200),
    resource=st.sampled_from(["web", "email", "vpn", "x"]),
)
def test_random_forward_auth_never_5xx(
    client: TestClient, user: str, ua: str, uri: str, resource: str
) -> None:
    headers = [
        (b"x-devicegate-user", user.encode("utf-8")),
        (b"user-agent", ua.encode("utf-8")),
        (b"x-original-uri", uri.encode("utf-8")),
    ]
    response = client.get(f"/v1/forward-auth/{resource}", headers=headers)
    assert response.status_code in (200, 400, 401, 403, 404), response.text
