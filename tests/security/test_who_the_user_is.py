"""The client chooses the user — every way it once could, replayed through real nginx and
HAProxy with the shipped configurations (deploy/), each now refused.

docs/security.md, "Who the user is": devicegate takes the user only from the header the proxy
sets after authenticating; `Remote-User`, an unverified Basic name and the ActiveSync `User=`
query never name the user, and names are resolved to the one directory user they stand for.
"""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from devicegate.directory import load_directory
from devicegate.model import Request, Signals
from devicegate.policy import decide, load_policy
from devicegate.policy.compile import compile_policy
from tests.security.conftest import Stack, jwt, sso, stack
from tests.server import procs
from tests.server.scenario import ANDROID_EAS, IPHONE_EAS, IPHONE_SAFARI, LAB, OPS, plain_eas

pytestmark = [pytest.mark.integration]

PW = procs.PROXY_PASSWORD


def test_an_anonymous_client_cannot_name_a_user(proxied: Stack) -> None:
    """No credentials, the permitted lab user named in every header a client can send."""
    for header in ("X-Devicegate-User", "Remote-User", "X-Auth-Request-User", "X-Sso-User"):
        answer = proxied.client.get("/", headers={"User-Agent": IPHONE_SAFARI, header: LAB})
        assert answer.status_code == 401, header
        assert "intranet app" not in answer.text
    assert proxied.decisions() == []  # devicegate was never even asked


def test_a_wrong_password_never_reaches_devicegate(proxied: Stack) -> None:
    answer = proxied.client.get("/", headers={"User-Agent": IPHONE_SAFARI}, auth=(LAB, "nope"))
    assert answer.status_code == 401
    assert proxied.decisions() == []


def test_a_client_header_never_replaces_the_authenticated_user(proxied: Stack) -> None:
    """alice (banned on `web` with Apple devices) names bob (permitted) in her headers."""
    spoof = {"User-Agent": IPHONE_SAFARI, "Remote-User": LAB, "X-Devicegate-User": LAB}
    answer = proxied.client.get("/", headers=spoof, auth=(OPS, PW))
    assert answer.status_code == 403
    assert "Apple devices may no longer be used for work" in answer.text
    assert proxied.decisions() == [("alice", "block", "no-apple-web")]
    # and what reached the application names the authenticated user only
    fine = proxied.client.get("/", headers={**spoof, "User-Agent": "curl/8"}, auth=(OPS, PW))
    assert fine.status_code == 200
    assert f"header remote-user: {LAB}" not in fine.text
    assert "header x-devicegate-user" not in fine.text


def test_a_bearer_token_and_the_activesync_user_query_name_nobody(proxied: Stack) -> None:
    bearer = {"User-Agent": IPHONE_SAFARI, "Authorization": "Bearer abc.def.ghi"}
    assert proxied.client.get(f"/?User={LAB}", headers=bearer).status_code == 401
    # ActiveSync: the Basic name (which Exchange verifies) is the user; User= is ignored,
    # and no header of the client's overrides the Basic name
    headers = {"User-Agent": ANDROID_EAS, "X-Devicegate-User": LAB, "Remote-User": LAB}
    uri = plain_eas("EAS-U1", "Android", user="bob")
    answer = proxied.client.get(uri, headers=headers, auth=(OPS, PW))
    assert answer.status_code == 200
    assert proxied.decisions() == [("alice", "allow", None)]


def test_an_unverified_basic_name_records_no_evidence(proxied: Stack) -> None:
    """ActiveSync's Basic name is decided on (Exchange checks it afterwards), but a name
    nobody has verified yet plants nothing: no sighting, no hold, even when the request is
    quarantined (the conflicting signals of rule `spoof-hold`)."""
    spoofed = proxied.client.get(
        plain_eas("EAS-U2", "iPhone"), headers={"User-Agent": ANDROID_EAS}, auth=(OPS, "any")
    )
    assert spoofed.status_code == 403 and "held for review" in spoofed.text
    iphone = proxied.client.get(
        plain_eas("EAS-U3", "iPhone"), headers={"User-Agent": IPHONE_EAS}, auth=(OPS, "wrong")
    )
    assert iphone.status_code == 200  # Exchange, not devicegate, refuses the password
    assert proxied.count("sightings") == 0 and proxied.count("holds") == 0
    with proxied.store.engine.connect() as conn:
        detail = conn.exec_driver_sql("select detail from decision_log order by id").scalars()
        assert all('"user_verified": false' in text for text in detail)


def test_a_name_form_the_proxy_verified_is_the_directory_user(tmp_path: Path) -> None:
    """nginx verified `ALICE@ops.example`; devicegate decides for the directory's `alice`."""
    with stack(tmp_path, "nginx") as built:
        answer = built.client.get(
            "/", headers={"User-Agent": IPHONE_SAFARI}, auth=("ALICE@ops.example", PW)
        )
        assert answer.status_code == 403
        assert built.decisions() == [("alice", "block", "no-apple-web")]


NAME_FORMS = [
    ("alice", "alice"),
    ("ALICE@OPS.EXAMPLE", "alice"),
    (" alice@ops.example.", "alice"),
    ("alice@ops.example\t", "alice"),
    ("OPS\\alice", "alice"),
    ("alice@ops", "alice"),
    ("ops\\ALICE", "alice"),
    ("LAB\\alice", None),  # a domain the policy does not map names nobody: never guessed
    ("alice@evil.example", None),
    ("alice\\ops", None),
]


def test_name_forms_resolve_to_one_directory_user(tmp_path: Path) -> None:
    """Decisions *and* sightings go to the directory user a name stands for (or to nobody),
    through the forward-auth endpoint of a real `devicegate serve`."""
    policy, directory = _scenario_with_domains(tmp_path)
    url = f"sqlite:///{tmp_path}/dg.db"
    with procs.devicegate(tmp_path, policy, directory, url, extra=("--log-ack", "durable")) as dg:
        for presented, decided_for in NAME_FORMS:
            headers = [("X-Devicegate-User", presented), ("User-Agent", IPHONE_SAFARI)]
            status = raw_status(dg.port, "/v1/forward-auth/web", headers)
            # an unknown user is allowed by this policy (`unknown_user: allow`)
            assert status == (403 if decided_for else 200), presented
    with _store(tmp_path).engine.connect() as conn:
        users = conn.exec_driver_sql('select "user", rule from decision_log order by id').all()
        seen = conn.exec_driver_sql('select distinct "user" from sightings').scalars().all()
    assert [u for u, _ in users] == [
        decided_for or users[i][0] for i, (_, decided_for) in enumerate(NAME_FORMS)
    ]
    for (user, rule), (_, decided_for) in zip(users, NAME_FORMS, strict=True):
        assert rule == ("no-apple-web" if decided_for else "builtin:unknown-user"), user
    assert sorted(seen) == ["alice", "alice@evil.example", "alice\\ops", "lab\\alice"]


def raw_status(port: int, path: str, headers: list[tuple[str, str]]) -> int:
    """GET over a bare socket, header values exactly as given (a client library would refuse
    the leading space or trailing tab an attacker sends)."""
    import socket

    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\n{head}Connection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request.encode("utf-8"))
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return int(reply.split(b" ", 2)[1])


def test_a_user_header_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    policy, directory = _scenario_with_domains(tmp_path)
    with procs.devicegate(tmp_path, policy, directory, f"sqlite:///{tmp_path}/dg.db") as dg:
        with dg.client() as client:
            answer = client.get(
                "/v1/forward-auth/web",
                headers=[(b"x-devicegate-user", b"al\xffice"), (b"user-agent", b"x")],
            )
        assert answer.status_code == 400 and "UTF-8" in answer.json()["error"]


def test_the_same_login_in_two_domains_is_two_people(tmp_path: Path) -> None:
    """`MINFIN\\i.petrov` and `MINPROMTORG\\i.petrov` are different officials; the bare
    login names neither (it would be a guess)."""
    (tmp_path / "policy.yaml").write_text(
        """version: 1
timezone: UTC
units: [gov/minfin, gov/minpromtorg]
login_domains:
  MINFIN: "{login}@minfin.example"
  MINPROMTORG: "{login}@minpromtorg.example"
rules:
  - id: wave-1
    scope: {units: [gov/minpromtorg]}
    when: {vendor: [Apple]}
    resources: [all]
    from: 2020-01-01
"""
    )
    (tmp_path / "users.csv").write_text(
        "user,unit,email\n"
        "petrov-fin,gov/minfin,i.petrov@minfin.example\n"
        "petrov-prom,gov/minpromtorg,i.petrov@minpromtorg.example\n"
    )
    loaded = load_policy([tmp_path / "policy.yaml"])
    snapshot = compile_policy(loaded, load_directory(tmp_path / "users.csv"))
    iphone = Signals(user_agent=IPHONE_SAFARI)

    def action(name: str) -> tuple[str, str | None]:
        from datetime import UTC, datetime

        decision = decide(snapshot, Request(name, "web", datetime.now(UTC), iphone))
        return decision.action.value, decision.rule

    assert action("MINPROMTORG\\i.petrov") == ("block", "wave-1")
    assert action("i.petrov@minpromtorg") == ("block", "wave-1")
    assert action("MINFIN\\i.petrov") == ("allow", None)
    assert action("i.petrov") == ("allow", "builtin:unknown-user")
    assert snapshot.canonical_user("minfin\\I.Petrov") == "petrov-fin"
    # a directory alias that reads as `login@DOMAIN` of a mapped domain is no shortcut past
    # the map: decide and the recorded name agree that it names nobody (or the map's user)
    (tmp_path / "users.csv").write_text(
        "user,unit,email\n"
        "petrov-fin,gov/minfin,i.petrov@minfin.example\n"
        "odd,gov/minpromtorg,i.petrov@minfin\n"
    )
    snapshot = compile_policy(loaded, load_directory(tmp_path / "users.csv"))
    assert snapshot.resolve_user("i.petrov@minfin") is None
    assert action("i.petrov@minfin") == ("allow", "builtin:unknown-user")


def _scenario_with_domains(tmp: Path) -> tuple[Path, Path]:
    from tests.server.scenario import write_scenario

    policy, directory = write_scenario(tmp / "scenario")
    text = policy.read_text().replace(
        "timezone: UTC\n",
        'timezone: UTC\nlogin_domains:\n  OPS: "{login}@ops.example"\n',
    )
    policy.write_text(text)
    return policy, directory


# ---- the single sign-on examples -----------------------------------------------------------


def test_nginx_sso_example_takes_only_the_user_the_sso_verified(tmp_path: Path) -> None:
    sessions = {"good-session": OPS}
    policy, directory = _scenario_with_domains(tmp_path)
    socket = tmp_path / "gateway.sock"
    with (
        sso(sessions) as sso_port,
        procs.sample_app() as app_port,
        procs.devicegate(tmp_path, policy, directory, f"sqlite:///{tmp_path}/dg.db") as dg,
        procs.nginx(
            tmp_path,
            dg.port,
            app_port,
            site="devicegate-sso.conf",
            listen="127.0.0.1:8445",
            replace={
                "127.0.0.1:4180": f"127.0.0.1:{sso_port}",
                "/run/devicegate/gateway.sock": str(socket),
            },
        ) as port,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client,
    ):
        session = {"Cookie": "sso=good-session"}
        ok = client.get("/reports", headers={**session, "User-Agent": "curl/8"})
        assert ok.status_code == 200 and "intranet app: /reports" in ok.text
        assert f"header remote-user: {OPS}" in ok.text
        blocked = client.get("/", headers={**session, "User-Agent": IPHONE_SAFARI})
        assert blocked.status_code == 403
        # no session: a client's own X-Sso-User / X-Devicegate-User name nobody
        forged = {"User-Agent": IPHONE_SAFARI, "X-Sso-User": LAB, "X-Devicegate-User": LAB}
        answer = client.get("/", headers=forged, follow_redirects=False)
        assert answer.status_code == 302 and "/oauth2/sign_in" in answer.headers["location"]
        # a session plus a forged X-Sso-User: the SSO's user counts
        mixed = client.get("/", headers={**session, **forged})
        assert mixed.status_code == 403
    store_users = [u for u, _, _ in Stack(client, dg, _store(tmp_path), policy).decisions()]
    assert store_users == ["alice", "alice", "alice"]


def test_haproxy_sso_example_verifies_the_token(tmp_path: Path) -> None:
    import time

    policy, directory = _scenario_with_domains(tmp_path)
    with (
        procs.sample_app() as app_port,
        procs.devicegate(tmp_path, policy, directory, f"sqlite:///{tmp_path}/dg.db") as dg,
        procs.haproxy(
            tmp_path, dg.port, app_port, config="haproxy-sso.cfg", listen="127.0.0.1:8446"
        ) as port,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client,
    ):
        now = int(time.time())
        good = jwt({"sub": OPS, "exp": now + 300})
        expired = jwt({"sub": LAB, "exp": now - 5})
        forged = jwt({"sub": LAB, "exp": now + 300}, secret=b"guessed")
        unsigned = good.rsplit(".", 1)[0] + "." + base64.urlsafe_b64encode(b"x").decode()

        def get(token: str, ua: str = IPHONE_SAFARI, **extra: str) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}", "User-Agent": ua, **extra}
            return client.get("/", headers=headers)

        assert get(good).status_code == 403  # alice, on an iPhone
        fine = get(good, "curl/8", **{"X-Devicegate-User": LAB, "Remote-User": LAB})
        assert fine.status_code == 200 and f"header remote-user: {OPS}" in fine.text
        for token in (expired, forged, unsigned):
            assert get(token).status_code == 401
    users = [u for u, _, _ in Stack(client, dg, _store(tmp_path), policy).decisions()]
    assert users == ["alice", "alice"]


def _store(tmp: Path):  # type: ignore[no-untyped-def]
    from devicegate.store import open_store

    return open_store(f"sqlite:///{tmp}/dg.db")
