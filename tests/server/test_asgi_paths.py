"""The ASGI side of the hot paths and the JSON API, in process: who may ask (an untrusted
peer or a wrong proxy secret is refused on every enforcing endpoint, counted, and nothing is
recorded), what each malformed request is answered, and what is counted as a bad request or
timed as an answer. The exact bodies are checked: they are what a proxy logs."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.exceptions import HTTPException
from starlette.requests import Request

from devicegate.adapters import dovecot, radius
from devicegate.adapters.forward_auth import MAX_URI, HeaderNames
from devicegate.server import DevicegateApp, api, dovecot_endpoint
from devicegate.server.trust import REFUSED_HINT, parse_networks
from devicegate.store import tables as t
from tests.server.conftest import TestClient, make_app
from tests.server.scenario import (
    ANDROID_CHROME,
    ANDROID_EAS,
    IPHONE_SAFARI,
    OPS,
    base64_eas,
    plain_eas,
    policy_text,
    write_scenario,
)

NOT_TRUSTED = {"error": "`127.0.0.1` is not a trusted proxy", "hint": REFUSED_HINT}
THUNDERBIRD_ID = '"name" "Thunderbird" "version" "115.5.0"'


def login(**over: object) -> bytes:
    fields: dict[str, object] = {"login": OPS, "remote": "192.0.2.7", "device_id": THUNDERBIRD_ID}
    fields.update(over)
    return json.dumps(fields).encode()


def counter(client: TestClient, name: str, **labels: str) -> float:
    """A counter's value from /metrics (0 when absent)."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def timed(app: DevicegateApp, adapter: str) -> int:
    """Answers timed on an adapter's latency histogram."""
    return sum(app.service.metrics.requests.histogram(adapter).counts)


def seconds_timed(app: DevicegateApp, adapter: str) -> float:
    """The time an adapter's answers took, summed on its latency histogram."""
    return app.service.metrics.requests.histogram(adapter).total


@pytest.fixture
def refusing(tmp_path: Path, scenario: tuple[Path, Path]) -> DevicegateApp:
    """An app that trusts only 10.0.0.0/8: the test client (127.0.0.1) is not a proxy."""
    return make_app(tmp_path, *scenario, trusted_proxies=parse_networks(["10.0.0.0/8"]))


def test_an_untrusted_peer_is_refused_everywhere_it_could_record_evidence(
    refusing: DevicegateApp,
) -> None:
    app = refusing
    headers = {"X-Devicegate-User": OPS, "User-Agent": IPHONE_SAFARI}
    with TestClient(app) as client:
        answers = {
            "/v1/forward-auth/": client.get("/v1/forward-auth/web", headers=headers),
            dovecot_endpoint.PATH: client.post(
                dovecot_endpoint.PATH + "?command=allow", content=login()
            ),
            "/v1/radius/authorize": client.post("/v1/radius/authorize", content=b"{}"),
            "/v1/decide": client.post(
                "/v1/decide", json={"user": OPS, "resource": "web", "signals": {}}
            ),
        }
        for endpoint, answer in answers.items():
            assert (answer.status_code, answer.json()) == (403, NOT_TRUSTED), endpoint
            refused = counter(client, "devicegate_refused_peers_total", endpoint=endpoint)
            assert refused == 1.0, endpoint
        checked = client.post("/v1/check", json={"user": OPS, "resource": "web", "signals": {}})
        assert checked.status_code == 200  # a dry run is open to anyone
        assert timed(app, "forward-auth") == 0 and timed(app, dovecot.ADAPTER.name) == 0
    assert app.service.store.count("decisions") == 0
    # the HTTP protocol's replay paths refuse too: the request goes to ASGI, which answers 403
    raw = [(b"x-devicegate-user", OPS.encode()), (b"user-agent", IPHONE_SAFARI.encode())]
    assert app.forward_auth.replay("/v1/forward-auth/web", b"", "127.0.0.1", raw) is None
    assert app.dovecot.replay(login(), "127.0.0.1", None) is None


def test_a_wrong_or_missing_proxy_secret_is_refused(
    tmp_path: Path, scenario: tuple[Path, Path]
) -> None:
    app = make_app(tmp_path, *scenario, proxy_secret=b"s3cret-s3cret-s3cret")
    wrong = {"error": "the proxy secret is missing or wrong", "hint": REFUSED_HINT}
    user = {"X-Devicegate-User": OPS, "User-Agent": ANDROID_CHROME}
    with TestClient(app) as client:
        for secret in (None, "nope", " s3cret-s3cret-s3cret "):
            extra = {} if secret is None else {"X-Devicegate-Proxy-Secret": secret}
            fa = client.get("/v1/forward-auth/web", headers={**user, **extra})
            dc = client.post(dovecot_endpoint.PATH, content=login(), headers=extra)
            if secret is not None and secret.strip() == "s3cret-s3cret-s3cret":
                assert fa.status_code == 200 and dc.json() == dovecot.ALLOW
            else:
                assert (fa.status_code, fa.json()) == (403, wrong)
                assert (dc.status_code, dc.json()) == (403, wrong)

        kept = [(b"x-devicegate-user", OPS.encode()), (b"user-agent", ANDROID_CHROME.encode())]
        right = [(b"x-devicegate-proxy-secret", b"s3cret-s3cret-s3cret"), *kept]

        async def replays() -> list[object]:  # on the app's loop: a replay appends to the log
            path = "/v1/forward-auth/web"
            return [
                app.forward_auth.replay(path, b"", "127.0.0.1", [(right[0][0], b""), *kept]),
                app.dovecot.replay(login(), "127.0.0.1", b"nope"),
                app.dovecot.replay(login(), "127.0.0.1", b"s3cret-s3cret-s3cret"),
                app.forward_auth.replay(path, b"", "127.0.0.1", right),
                app.forward_auth.replay(path, b"", "127.0.0.1", right),
            ]

        refused_fa, refused_dc, replayed, *replayed_fa = client._run(replays())
    assert refused_fa is None and refused_dc is None and replayed is not None
    assert None not in replayed_fa and app.forward_auth.replayed == 2  # each replay counted


def test_the_json_api_checks_the_proxy_secret(tmp_path: Path, scenario: tuple[Path, Path]) -> None:
    """`/v1/decide` and RADIUS read the secret header too: only the right one is heard."""
    app = make_app(tmp_path, *scenario, proxy_secret=b"s3cret-s3cret-s3cret")
    wrong = {"error": "the proxy secret is missing or wrong", "hint": REFUSED_HINT}
    decide = {"user": OPS, "resource": "web", "signals": {}}
    with TestClient(app) as client:
        for secret in (None, "nope", " s3cret-s3cret-s3cret "):
            extra = {} if secret is None else {"X-Devicegate-Proxy-Secret": secret}
            rd = client.post("/v1/radius/authorize", content=b"{}", headers=extra)
            dd = client.post("/v1/decide", json=decide, headers=extra)
            if secret is not None and secret.strip() == "s3cret-s3cret-s3cret":
                assert rd.status_code == 401  # heard: refused as malformed, not as a peer
                assert dd.status_code == 200 and dd.json()["action"] == "allow"
            else:
                assert (rd.status_code, rd.json()) == (403, wrong)
                assert (dd.status_code, dd.json()) == (403, wrong)
    assert app.service.store.count("decisions") == 1


def test_dovecot_commands_methods_and_bodies(client: TestClient, app: DevicegateApp) -> None:
    path = dovecot_endpoint.PATH
    malformed = {"status": -1, "msg": dovecot.MALFORMED_MESSAGE}
    cases: list[tuple[str, str, bytes, int, Any]] = [
        ("POST", "", login(), 200, dovecot.ALLOW),
        ("POST", "?command=allow", login(), 200, dovecot.ALLOW),
        ("POST", "?x=1&command=allow", login(), 200, dovecot.ALLOW),
        ("POST", "?x=1", login(), 200, dovecot.ALLOW),  # no command: allow
        ("POST", "?command=report", login(), 200, dovecot.ALLOW),
        ("POST", "?x=1&command=report", b"not even json", 200, dovecot.ALLOW),
        ("POST", "?command=drop", login(), 400, malformed),
        ("POST", "?command=allow", b"{nope", 200, malformed),
        ("POST", "", login(login=""), 200, malformed),
    ]
    logged = app.service.store.count("decisions")
    began = time.perf_counter()
    for method, query, body, status, answer in cases:
        got = client.request(method, path + query, content=body)
        assert (got.status_code, got.json()) == (status, answer), (method, query, body)
        assert got.headers["content-type"] == "application/json"
        assert got.headers["content-length"] == str(len(got.content))
    spent = time.perf_counter() - began
    assert app.service.store.count("decisions") == logged + 4  # the four allows, no others
    assert timed(app, dovecot.ADAPTER.name) == 4
    assert 0 < seconds_timed(app, dovecot.ADAPTER.name) <= spent  # each from its own start
    wrong = client.get(path)
    assert (wrong.status_code, wrong.json()) == (405, {"error": "method not allowed"})
    huge = client.post(path, content=b" " * (dovecot.MAX_BODY + 1))
    expected = {"error": f"request body is larger than {dovecot.MAX_BODY} bytes"}
    assert (huge.status_code, huge.json()) == (413, expected)
    assert counter(client, "devicegate_bad_requests_total", adapter="dovecot", status="405") == 1
    assert counter(client, "devicegate_bad_requests_total", adapter="dovecot", status="413") == 1
    assert timed(app, dovecot.ADAPTER.name) == 4  # refusals are not timed as answers


def test_read_body_takes_every_chunk_and_stops_past_the_limit() -> None:
    def receiver(*messages: dict[str, Any]) -> Any:
        queue = list(messages)

        async def receive() -> dict[str, Any]:
            return queue.pop(0)

        return receive

    def read(limit: int, *messages: dict[str, Any]) -> bytes | str:
        try:
            return asyncio.run(dovecot_endpoint.read_body(receiver(*messages), limit))
        except dovecot_endpoint.BodyTooLarge:
            return "too large"

    chunk = {"type": "http.request", "body": b"abc", "more_body": True}
    last = {"type": "http.request", "body": b"de", "more_body": False}
    gone = {"type": "http.disconnect"}
    assert read(5, chunk, last) == b"abcde"
    assert read(4, chunk, last) == "too large"
    assert read(3, chunk, gone) == b"abc"
    assert read(3, {"type": "http.request"}) == b""


def test_forward_auth_errors_are_counted_and_answers_timed(
    client: TestClient, app: DevicegateApp
) -> None:
    user = {"X-Devicegate-User": OPS}
    began = time.perf_counter()
    blocked = client.get("/v1/forward-auth/web", headers={**user, "User-Agent": IPHONE_SAFARI})
    assert blocked.status_code == 403 and timed(app, "forward-auth") == 1
    replayed = client.get("/v1/forward-auth/web", headers={**user, "User-Agent": IPHONE_SAFARI})
    assert replayed.status_code == 403 and timed(app, "forward-auth") == 2
    assert replayed.content == blocked.content and blocked.json()["action"] == "block"
    assert replayed.headers == blocked.headers
    assert 0 < seconds_timed(app, "forward-auth") <= time.perf_counter() - began
    unknown = client.get("/v1/forward-auth/nope", headers=user)
    assert (unknown.status_code, unknown.json()) == (
        404,
        {
            "error": "unknown resource `nope`",
            "hint": "known: email, files, messaging, vpn, web, wifi",
        },
    )
    bad = client.get("/v1/forward-auth/web", headers={**user, "X-Real-IP": "not an address"})
    assert bad.status_code == 400
    missing = client.get("/v1/forward-auth/web")
    assert missing.status_code == 401
    assert counter(client, "devicegate_bad_requests_total", adapter="forward-auth", status="404")
    assert counter(client, "devicegate_bad_requests_total", adapter="forward-auth", status="400")
    assert counter(client, "devicegate_bad_requests_total", adapter="forward-auth", status="401")
    assert timed(app, "forward-auth") == 2  # a refusal of the request itself is not an answer
    kept = len(app.forward_auth._answers)
    page = client.get(
        "/v1/forward-auth/web/owa/page", headers={**user, "User-Agent": ANDROID_CHROME}
    )
    assert page.status_code == 200 and len(app.forward_auth._answers) == kept  # Envoy's pages
    assert client.get("/v1/forward-auth/web", headers={**user, "User-Agent": ANDROID_CHROME})
    assert len(app.forward_auth._answers) == kept + 1


def test_json_api_bodies(client: TestClient) -> None:
    cases: list[tuple[str, bytes, int, dict[str, str]]] = [
        ("/v1/decide", b"{nope", 400, {"error": "request body is not json"}),
        ("/v1/decide", b"[1]", 400, {"error": "request body must be a json object"}),
        ("/v1/decide", b"[" * 60_000, 400, {"error": "request body is not json"}),
        ("/v1/decide", b"\xff\xfe", 400, {"error": "request body is not json"}),
        (
            "/v1/decide",
            json.dumps({"user": OPS, "resource": "web", "at": "2024-01-01"}).encode(),
            400,
            {"error": "unknown field `at`", "hint": "user, resource, signals"},
        ),
        (
            "/v1/radius/authorize",
            b" " * (api.MAX_BODY + 1),
            413,
            {"error": f"request body is larger than {api.MAX_BODY} bytes"},
        ),
        (
            "/v1/decide",
            b" " * (api.MAX_BODY + 1),
            413,
            {"error": f"request body is larger than {api.MAX_BODY} bytes"},
        ),
    ]
    for path, body, status, answer in cases:
        got = client.post(path, content=body)
        assert (got.status_code, got.json()) == (status, answer), (path, body[:20])
    fits = client.post("/v1/decide", content=b" " * (api.MAX_BODY - 2) + b"{}")
    assert fits.status_code == 400 and fits.json()["error"].startswith("`user` must be")
    decided = client.post(
        "/v1/decide",
        json={"user": OPS, "resource": "web", "signals": {"user_agent": IPHONE_SAFARI}},
    )
    assert decided.status_code == 200 and decided.json()["action"] == "block"


def direct(client: TestClient, scope: dict[str, Any], body: bytes = b"") -> tuple[int, Any]:
    """The app called as ASGI with `scope` as given (on its loop, started): the status, and
    the body as JSON (None when empty)."""
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    base = {"type": "http", "http_version": "1.1", "scheme": "http", "root_path": ""}
    client._run(client.app({**base, **scope}, receive, send))
    status = sent[0]["status"]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return status, json.loads(body) if body else None


def test_a_peer_without_an_address_is_refused(client: TestClient, app: DevicegateApp) -> None:
    """ASGI lets a server leave out the client address (a Unix socket has none): such a peer
    is not a trusted proxy — refused with 403 on every enforcing endpoint, never a crash."""
    unknown = {"error": "`unknown` is not a trusted proxy", "hint": REFUSED_HINT}
    headers = [(b"x-devicegate-user", OPS.encode()), (b"user-agent", IPHONE_SAFARI.encode())]
    cases = [
        ("GET", "/v1/forward-auth/web", b""),
        ("POST", dovecot_endpoint.PATH, login()),
        ("POST", "/v1/decide", json.dumps({"user": OPS, "resource": "web"}).encode()),
        ("POST", "/v1/radius/authorize", b"{}"),
    ]
    for method, path, body in cases:
        for client_address in ({}, {"client": None}):
            scope = {"method": method, "path": path, "query_string": b"", "headers": headers}
            got = direct(client, {**scope, **client_address}, body)
            assert got == (403, unknown), (path, client_address)
    assert app.service.store.count("decisions") == 0


def test_a_dovecot_request_without_a_query_string_reads_as_allow(
    client: TestClient, app: DevicegateApp
) -> None:
    """`query_string` may be left out of an ASGI scope: no command, which is `allow`."""
    scope = {"method": "POST", "path": dovecot_endpoint.PATH, "headers": []}
    got = direct(client, {**scope, "client": ("127.0.0.1", 50000)}, login())
    assert got == (200, dovecot.ALLOW)
    assert app.service.store.count("decisions") == 1


def test_api_read_body_counts_every_chunk() -> None:
    """The JSON API's body limit is on the whole body, however it arrives in chunks."""

    def read(*chunks: bytes) -> bytes | int:
        last = len(chunks) - 1
        messages = [
            {"type": "http.request", "body": chunk, "more_body": i < last}
            for i, chunk in enumerate(chunks)
        ]

        async def receive() -> dict[str, Any]:
            return messages.pop(0)

        request = Request({"type": "http", "method": "POST", "path": "/", "headers": []}, receive)
        try:
            return asyncio.run(api.read_body(request))
        except HTTPException as exc:
            return exc.status_code

    half = b"x" * (api.MAX_BODY // 2)
    assert read(half, half) == half + half  # exactly the limit
    assert read(half, half, b"x") == 413
    assert read(half, half + b"x") == 413


def logged_client_ip(app: DevicegateApp) -> object:
    """The client address the newest decision-log row recorded in its signals."""
    with app.service.store.engine.connect() as conn:
        row = conn.execute(
            sa.select(t.decision_log.c.detail).order_by(t.decision_log.c.id.desc()).limit(1)
        ).one()
    detail = row.detail if isinstance(row.detail, dict) else json.loads(row.detail)
    return detail["signals"].get("client_ip")


def test_forward_auth_reads_the_path_query_and_peer_of_the_request(
    client: TestClient, app: DevicegateApp
) -> None:
    """Without `X-Original-URI` (Envoy) the client's URI is the path after the resource and
    the query: an ActiveSync request there is read (an iPhone's query behind an Android
    agent is the spoof rule's quarantine). The peer is the client address when no
    forwarding header names one. A query with no path after the resource belongs to the
    proxy's own URL, not to the client: it is not read, however long."""
    agent = {"X-Devicegate-User": OPS, "User-Agent": ANDROID_EAS}
    spoofed = client.get("/v1/forward-auth/email" + plain_eas("E1", "iPhone"), headers=agent)
    assert spoofed.status_code == 403 and spoofed.json()["rule"] == "spoof-hold"
    assert logged_client_ip(app) == "127.0.0.1"
    proxy_query = "/v1/forward-auth/web?x=" + "a" * MAX_URI
    assert client.get(proxy_query, headers=agent).status_code == 200
    assert logged_client_ip(app) == "127.0.0.1"
    # an ASGI scope may leave `query_string` out: the path alone, no query
    headers = [(b"x-devicegate-user", OPS.encode()), (b"user-agent", ANDROID_EAS.encode())]
    scope = {"method": "GET", "headers": headers, "client": ("127.0.0.1", 50000)}
    for path in ("/v1/forward-auth/web", "/v1/forward-auth/email/Microsoft-Server-ActiveSync"):
        status, _ = direct(client, {**scope, "path": path})
        assert status == 200, path


def test_an_unverified_basic_user_records_no_evidence(
    tmp_path: Path, scenario: tuple[Path, Path]
) -> None:
    """With `--basic-user email` the user may come from `Authorization: Basic`, which the
    backend verifies only after this answer: the spoof is quarantined, but no hold and no
    sighting are recorded for a name nobody has verified. The proxy's own user header does."""
    names = HeaderNames(basic_resources=frozenset({"email"}))
    app = make_app(tmp_path, *scenario, headers=names)
    basic = "Basic " + base64.b64encode(b"alice@ops.example:pw").decode()
    path = "/v1/forward-auth/email" + base64_eas("B1", "iPhone")
    with TestClient(app) as client:
        spoofed = client.get(path, headers={"Authorization": basic, "User-Agent": ANDROID_EAS})
        assert spoofed.status_code == 403 and spoofed.json()["rule"] == "spoof-hold"
        assert app.service.store.count("holds") == 0
        assert app.service.store.count("sightings") == 0
        verified = client.get(path, headers={"X-Devicegate-User": OPS, "User-Agent": ANDROID_EAS})
        assert verified.status_code == 403 and verified.json()["rule"] == "spoof-hold"
        assert app.service.store.count("holds") == 1
    assert app.service.store.count("decisions") == 2


def test_radius_quarantine_uses_the_configured_vlan(tmp_path: Path) -> None:
    """`--radius-quarantine-vlan` reaches the RADIUS answer: a quarantined device is put on
    that VLAN, not the default one."""
    policy, directory = write_scenario(tmp_path / "scenario")
    text = policy_text(block_effect="quarantine").replace(
        "  email: {description: ActiveSync}\n",
        "  email: {description: ActiveSync}\n  wifi: {description: office Wi-Fi}\n",
    )
    policy.write_text(text.replace("resources: [web]", "resources: [web, wifi]", 1))
    app = make_app(tmp_path, policy, directory, radius_quarantine_vlan="42")
    attributes = {
        "User-Name": {"type": "string", "value": [OPS]},
        "Calling-Station-Id": {"type": "string", "value": ["3c:22:fb:02:8f:01"]},  # Apple
        "NAS-Port-Type": {"type": "integer", "value": ["Wireless-802.11"]},
    }
    with TestClient(app) as client:
        answer = client.post("/v1/radius/authorize", json=attributes)
    assert answer.status_code == 200
    assert answer.json()["reply:Tunnel-Private-Group-Id"] == "42"
    assert radius.DEFAULT_QUARANTINE_VLAN != "42"
