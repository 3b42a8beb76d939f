"""`devicegate serve` on an LDAP directory (a real slapd): it refuses to start without an
accepted version, serves the stored one, takes a change in within a refresh, keeps the last
good directory when slapd is gone or a sync is refused, names the directory version in every
decision, and shows the source on /metrics."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devicegate.sources import Source
from devicegate.store import open_store
from tests.server import procs
from tests.sources.ldapserver import SERVICE_PW, Slapd, ou_dn, scenario_tree, slapd, user_dn

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "examples" / "apple-ban" / "policy.yaml"
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/16.5 Mobile/15E148 Safari/604.1"
)


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DG_TEST_LDAP_PW", SERVICE_PW)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Slapd]:
    with slapd(tmp_path / "slapd", scenario_tree(10)) as own:
        yield own


def web(client: httpx.Client, user: str) -> int:
    headers = {"X-Devicegate-User": user, "User-Agent": IPHONE_SAFARI}
    return client.get("/v1/forward-auth/web", headers=headers).status_code


def wait_for(check: Any, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return bool(check())


def test_serve_on_an_ldap_directory(server: Slapd, tmp_path: Path) -> None:
    source = server.source_yaml(tmp_path / "ldap.yaml", refresh={"delta": "1s", "full": "1h"})
    url = f"sqlite:///{tmp_path}/store.db"
    argv = [procs.DEVICEGATE, "serve", "--policy", str(POLICY), "--directory", str(source),
            "--store", url, "--port", str(procs.free_port())]  # fmt: skip
    refused = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=os.environ)
    assert refused.returncode == 1
    assert "no accepted version" in refused.stderr and "Traceback" not in refused.stderr
    store = open_store(url)
    assert Source.open(source, store).sync().accepted
    with procs.devicegate(tmp_path, POLICY, source, url) as dg, dg.client() as client:
        # a.orlov of rostec is in wave 1; gov/minzdrav is in no wave
        assert web(client, "a.orlov") == 403
        assert web(client, "user000007") == 200  # gov/minzdrav: no rule applies
        conn: Any = server.admin()
        conn.rename_s(user_dn("user000007", "gov/minzdrav"), "uid=user000007",
                      ou_dn("gov/minpromtorg/industry"))  # fmt: skip
        conn.unbind_s()
        assert wait_for(lambda: web(client, "user000007") == 403)  # the next delta took it in
        metrics = client.get("/metrics").text
        assert 'devicegate_source_info{kind="directory",source="ldap"' in metrics
        assert "devicegate_source_age_seconds" in metrics
        # slapd gone: the last good directory keeps serving
        server.stop()
        time.sleep(2.5)
        assert web(client, "user000007") == 403 and web(client, "a.orlov") == 403
        metrics = client.get("/metrics").text
    with store.engine.connect() as conn_:
        details = conn_.exec_driver_sql("select detail from decision_log").scalars().all()
    versions = {
        (json.loads(d) if isinstance(d, str) else d).get("directory_version") for d in details
    }
    assert len(versions - {None}) == 2  # the first version, then the one with the move


def test_serve_on_an_mdm_inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An Intune inventory (a local server in Graph's shapes): `serve` serves the stored
    version, an ActiveSync request whose DeviceId the MDM knows is identified from the MDM
    record, and the decision names the inventory version."""
    from tests.sources.mdmserver import CLIENT_SECRET, EAS_ID, mdm_server, source_files

    monkeypatch.setenv("DG_TEST_INTUNE_SECRET", CLIENT_SECRET)
    directory = ROOT / "examples" / "apple-ban" / "directory.csv"
    url = f"sqlite:///{tmp_path}/store.db"
    with mdm_server() as (base, _, _log):
        intune = source_files(tmp_path, base)["intune"]
        assert Source.open(intune, open_store(url)).sync().accepted
        with (
            procs.devicegate(
                tmp_path, POLICY, directory, url, extra=("--devices", str(intune))
            ) as dg,
            dg.client() as client,
        ):
            eas = f"/Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId={EAS_ID}&DeviceType=SmartPhone"
            headers = {
                "X-Devicegate-User": "i.petrov@minpromtorg.example",
                "User-Agent": "curl/8",
                "X-Original-URI": eas,
            }
            answer = client.get("/v1/forward-auth/email", headers=headers)
            assert answer.status_code == 403 and answer.json()["rule"] == "apple-wave-1"
    with open_store(url).engine.connect() as conn:
        (detail,) = conn.exec_driver_sql("select detail from decision_log").scalars()
    recorded = json.loads(detail) if isinstance(detail, str) else detail
    assert recorded["inventory_version"] and recorded["directory_version"]
    assert ["activesync_id", EAS_ID] in recorded["keys"] or any(
        key[0] == "device_id" for key in recorded["keys"]
    )


def test_console_on_an_ldap_directory(server: Slapd, tmp_path: Path) -> None:
    """The console reads the directory as `serve` does: the stored version at start, a change
    within a refresh (a user moved to another unit shows under the new one)."""
    source = server.source_yaml(tmp_path / "ldap.yaml", refresh={"delta": "1s", "full": "1h"})
    url = f"sqlite:///{tmp_path}/store.db"
    assert Source.open(source, open_store(url)).sync().accepted
    port = procs.free_port()
    argv = [procs.DEVICEGATE, "console", "--policy", str(POLICY), "--directory", str(source),
            "--store", url, "--port", str(port), "--dev-login", "viewer"]  # fmt: skip
    log = tmp_path / "console.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=os.environ)
    try:
        procs.wait_port(port, proc, timeout=60)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:

            def unit_shown(unit: str) -> bool:
                page = client.get("/users/user000007")
                return page.status_code == 200 and unit in page.text

            assert unit_shown("gov/minzdrav"), log.read_text()
            conn: Any = server.admin()
            conn.rename_s(user_dn("user000007", "gov/minzdrav"), "uid=user000007",
                          ou_dn("gov/minpromtorg/industry"))  # fmt: skip
            conn.unbind_s()
            assert wait_for(lambda: unit_shown("gov/minpromtorg/industry")), log.read_text()
    finally:
        procs.stop(proc)
