"""Anyone who could reach `serve` could act for anyone: record sightings that turn a
colleague's mail away, back-date log rows, place holds, claim an attested laptop. Each attack
now fails (docs/security.md, "Who may ask")."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest

from devicegate.store import open_store
from tests.security.conftest import stack
from tests.server import procs
from tests.server.scenario import ANDROID_EAS, IPHONE_SAFARI, LAB, OPS, write_scenario

pytestmark = [pytest.mark.integration]

POSTFIX_REQUEST = (
    "request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=198.51.100.7\n"
    f"sasl_username={OPS}\nrecipient=x@example.org\n\n"
).encode()


def policy_answer(port: int) -> bytes:
    """One Postfix policy request; the answer ('' when the connection was closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(POSTFIX_REQUEST)
        reply = b""
        while not reply.endswith(b"\n\n"):
            try:
                chunk = sock.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            reply += chunk
    return reply


def test_a_peer_that_is_not_a_trusted_proxy_is_refused_everywhere(tmp_path: Path) -> None:
    """`--trusted-proxy` names another address: this (loopback) client is nobody's proxy."""
    policy, directory = write_scenario(tmp_path / "s")
    url = f"sqlite:///{tmp_path}/dg.db"
    postfix_port = procs.free_port()
    extra = ("--trusted-proxy", "192.0.2.10", "--postfix-port", str(postfix_port))
    with procs.devicegate(tmp_path, policy, directory, url, extra=extra) as dg, dg.client() as c:
        who = {"X-Devicegate-User": OPS, "User-Agent": IPHONE_SAFARI}
        asks = [
            c.get("/v1/forward-auth/web", headers=who),
            c.post("/v1/dovecot/auth-policy", json={"login": OPS, "device_id": '("os" "iOS")'}),
            c.post("/v1/radius/authorize", json={"User-Name": {"value": [OPS]}}),
            c.post("/v1/decide", json={"user": OPS, "resource": "web"}),
        ]
        for answer in asks:
            assert answer.status_code == 403, answer.request.url
            assert "not a trusted proxy" in answer.json()["error"]
        procs.wait_port(postfix_port)
        assert policy_answer(postfix_port) == b""  # disconnected, unanswered
        # what needs no trust still answers: health, a dry-run check
        assert c.get("/healthz").status_code == 200
        check = c.post("/v1/check", json={"user": OPS, "resource": "web"})
        assert check.status_code == 200
        metrics = c.get("/metrics").text
        assert 'devicegate_refused_peers_total{endpoint="/v1/forward-auth/"} 1.0' in metrics
    store = open_store(url)
    assert (store.count("decisions"), store.count("sightings"), store.count("holds")) == (0, 0, 0)


def test_a_proxy_secret_is_required_when_one_is_set(tmp_path: Path) -> None:
    """Through real nginx: without the secret in its sub-request devicegate refuses (and nginx
    fails closed, 503); with it, the request is decided."""
    secret = "shared-secret-0123456789"
    (tmp_path / "secret").write_text(secret + "\n")
    policy, directory = write_scenario(tmp_path / "s")
    url = f"sqlite:///{tmp_path}/dg.db"
    extra = ("--proxy-secret-file", str(tmp_path / "secret"))
    line = '#   proxy_set_header X-Devicegate-Proxy-Secret "<the secret>";'
    with (
        procs.sample_app() as app_port,
        procs.devicegate(tmp_path, policy, directory, url, extra=extra) as dg,
    ):
        with dg.client() as c:
            who = {"X-Devicegate-User": OPS, "User-Agent": "curl/8"}
            assert c.get("/v1/forward-auth/web", headers=who).status_code == 403
            given = {**who, "X-Devicegate-Proxy-Secret": "wrong-secret-0123456789"}
            assert c.get("/v1/forward-auth/web", headers=given).status_code == 403
            given = {**who, "X-Devicegate-Proxy-Secret": secret}
            assert c.get("/v1/forward-auth/web", headers=given).status_code == 200
        (tmp_path / "without").mkdir()
        with procs.nginx(tmp_path / "without", dg.port, app_port) as port:
            answer = httpx.get(f"http://127.0.0.1:{port}/", auth=(OPS, procs.PROXY_PASSWORD))
            assert answer.status_code == 503  # fail closed, never the application
        (tmp_path / "with").mkdir()
        setting = f'proxy_set_header X-Devicegate-Proxy-Secret "{secret}";'
        with procs.nginx(tmp_path / "with", dg.port, app_port, subrequest={line: setting}) as port:
            answer = httpx.get(f"http://127.0.0.1:{port}/", auth=(OPS, procs.PROXY_PASSWORD))
            assert answer.status_code == 200 and "intranet app" in answer.text
        # HAProxy: the Lua action sends DEVICEGATE_PROXY_SECRET when the global section sets it
        (tmp_path / "hap-without").mkdir()
        with procs.haproxy(tmp_path / "hap-without", dg.port, app_port) as port:
            answer = httpx.get(f"http://127.0.0.1:{port}/", auth=(OPS, procs.PROXY_PASSWORD))
            assert answer.status_code == 503 and "intranet app" not in answer.text
        (tmp_path / "hap-with").mkdir()
        env = "    lua-load"
        setenv = f"    setenv DEVICEGATE_PROXY_SECRET {secret}\n    lua-load"
        with procs.haproxy(tmp_path / "hap-with", dg.port, app_port, replace={env: setenv}) as port:
            answer = httpx.get(f"http://127.0.0.1:{port}/", auth=(OPS, procs.PROXY_PASSWORD))
            assert answer.status_code == 200 and "intranet app" in answer.text


def test_check_is_a_dry_run_that_records_nothing(tmp_path: Path) -> None:
    """POST /v1/check naming a victim, on an iPhone, back-dated, with conflicting signals:
    decided and explained, and nothing is recorded — the victim's mail still flows."""
    policy, directory = write_scenario(tmp_path / "s")
    url = f"sqlite:///{tmp_path}/dg.db"
    postfix_port = procs.free_port()
    extra = ("--postfix-port", str(postfix_port))
    with procs.devicegate(tmp_path, policy, directory, url, extra=extra) as dg, dg.client() as c:
        probes = [
            {"user": OPS, "resource": "web", "signals": {"user_agent": IPHONE_SAFARI}},
            {
                "user": OPS,
                "resource": "email",
                "at": "2021-03-01T10:00",
                "signals": {
                    "user_agent": ANDROID_EAS,
                    "activesync_query": "Cmd=Sync&DeviceId=VICTIM1&DeviceType=iPhone",
                },
            },
        ]
        answers = [c.post("/v1/check", json=probe).json() for probe in probes]
        assert answers[0]["action"] == "block" and answers[0]["rule"] == "no-apple-web"
        assert answers[1]["action"] == "quarantine" and answers[1]["spoofing_suspected"]
        procs.wait_port(postfix_port)
        assert policy_answer(postfix_port) == b"action=DUNNO\n\n"
        # the device the check named is not held: the victim's own device still connects
        who = {"X-Devicegate-User": OPS, "User-Agent": ANDROID_EAS}
        eas = "/Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId=VICTIM1&DeviceType=Android"
        own = c.get("/v1/forward-auth/email", headers={**who, "X-Original-URI": eas})
        assert own.status_code == 200
    store = open_store(url)
    with store.engine.connect() as conn:
        logged = conn.exec_driver_sql("select adapter, at from decision_log").all()
    assert [row[0] for row in logged] == ["postfix", "forward-auth"]  # no row from /v1/check
    assert store.count("holds") == 0
    with store.engine.connect() as conn:
        adapters = conn.exec_driver_sql("select adapter from sightings").scalars().all()
    assert "http" not in adapters


def test_decide_logs_for_trusted_peers(tmp_path: Path) -> None:
    """An application that enforces through the JSON API asks /v1/decide, which logs."""
    policy, directory = write_scenario(tmp_path / "s")
    url = f"sqlite:///{tmp_path}/dg.db"
    with procs.devicegate(tmp_path, policy, directory, url) as dg, dg.client() as c:
        body = {"user": OPS, "resource": "web", "signals": {"user_agent": IPHONE_SAFARI}}
        answer = c.post("/v1/decide", json=body)
        assert answer.status_code == 200 and answer.json()["action"] == "block"
        assert c.post("/v1/decide", json={**body, "at": "2020-01-01"}).status_code == 400
    store = open_store(url)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("select adapter from decision_log").scalars().all() == ["http"]


def test_a_certificate_of_another_users_device_attests_nothing(tmp_path: Path) -> None:
    """bob's attested Windows laptop (inventory, by certificate): alice presenting its
    fingerprint from an iPhone is decided as an iPhone; bob presenting it is his laptop."""
    policy, directory = write_scenario(tmp_path / "s")
    fingerprint = "ab" * 20
    devices = tmp_path / "devices.csv"
    devices.write_text(
        "device_id,user,vendor,platform,model,ownership,managed,cert_fingerprint\n"
        f"laptop-bob,{LAB},Dell,Windows,Latitude 7440,corporate,true,{fingerprint}\n"
    )
    url = f"sqlite:///{tmp_path}/dg.db"
    extra = ("--devices", str(devices))
    with procs.devicegate(tmp_path, policy, directory, url, extra=extra) as dg, dg.client() as c:
        alice = {
            "X-Devicegate-User": OPS,
            "User-Agent": IPHONE_SAFARI,
            "X-Client-Cert-Fingerprint": fingerprint,
        }
        answer = c.get("/v1/forward-auth/web", headers=alice)
        assert answer.status_code == 403 and answer.json()["rule"] == "no-apple-web"
        bob = {**alice, "X-Devicegate-User": LAB}
        assert c.get("/v1/forward-auth/web", headers=bob).status_code == 200
    store = open_store(url)
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql('select "user", detail from decision_log order by id').all()
    first = json.loads(rows[0][1]) if isinstance(rows[0][1], str) else rows[0][1]
    assert "belongs to another user" in first["binding"]
    assert rows[1][0] == "bob"


def test_a_client_sent_fingerprint_is_cleared_by_the_proxy(tmp_path: Path) -> None:
    with stack(tmp_path, "nginx") as built:
        headers = {"User-Agent": IPHONE_SAFARI, "X-Client-Cert-Fingerprint": "ab" * 20}
        answer = built.client.get("/", headers=headers, auth=(OPS, procs.PROXY_PASSWORD))
        assert answer.status_code == 403
        with built.store.engine.connect() as conn:
            (detail,) = conn.exec_driver_sql("select detail from decision_log").scalars()
        assert "tls_fingerprint" not in str(detail)
