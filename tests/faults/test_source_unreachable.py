"""A source unreachable under `serve`: a real slapd stopped, an MDM (the Intune mock) answering
500s and then refusing connections. Decisions keep using the last good directory and
inventory — a user or device the policy bans stays blocked, an allowed one stays allowed —
`/metrics` counts every failed refresh, a `serve` started during the outage starts from the
stored versions, and once the sources return a changed entry is taken in without a restart.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from devicegate.sources import Source
from devicegate.store import open_store
from tests.faults.conftest import Record
from tests.server import procs
from tests.sources.ldapserver import SERVICE_PW, ou_dn, scenario_tree, slapd, user_dn
from tests.sources.mdmserver import (
    CLIENT_SECRET,
    EAS_ID,
    Behaviour,
    intune_records,
    mdm_server,
    source_files,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "examples" / "apple-ban" / "policy.yaml"
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/16.5 Mobile/15E148 Safari/604.1"
)
#: seconds each way of being unreachable lasts (slapd is down for both)
PHASE = 5.0
#: the Intune record of an Android phone, i.petrov's second device (record 3 of the mock)
ANDROID_EAS = "EAS00000003"
#: a user of gov/minzdrav (in no wave), moved into gov/minpromtorg (wave 1) once slapd is back
MOVED = "user000007"
BANNED = "a.orlov"  # rostec/holding: wave 1 since 2023-07-17
PETROV = "i.petrov@minpromtorg.example"


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DG_TEST_LDAP_PW", SERVICE_PW)
    monkeypatch.setenv("DG_TEST_INTUNE_SECRET", CLIENT_SECRET)


def quiet_mdm(records: list[dict[str, Any]] | None = None) -> Behaviour:
    """The mock without its bad-day tricks (this test is about being unreachable), i.petrov
    owning the Android phone too."""
    records = records or intune_records(7)
    records[3] = dict(records[3], userPrincipalName=PETROV)
    return Behaviour(
        intune=records, empty_page_after=None, rate_limit_page=None, expire_first_token=False
    )


def said(answer: httpx.Response) -> str:
    """The status and the rule that decided (`-`: none), e.g. `403 apple-wave-1`."""
    return f"{answer.status_code} {answer.headers.get('x-devicegate-rule', '-')}"


def web(client: httpx.Client, user: str) -> str:
    headers = {"X-Devicegate-User": user, "User-Agent": IPHONE_SAFARI}
    return said(client.get("/v1/forward-auth/web", headers=headers))


def mail(client: httpx.Client, device_id: str) -> str:
    """ActiveSync from i.petrov naming no device type, with a User-Agent that names nothing:
    only the inventory says what the device is."""
    uri = f"/Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId={device_id}"
    headers = {"X-Devicegate-User": PETROV, "User-Agent": "curl/8", "X-Original-URI": uri}
    return said(client.get("/v1/forward-auth/email", headers=headers))


def answers(client: httpx.Client) -> dict[str, str]:
    """The four decisions the test follows, by what each asks."""
    return {
        "banned user": web(client, BANNED),
        "allowed user": web(client, MOVED),
        "banned device": mail(client, EAS_ID),
        "allowed device": mail(client, ANDROID_EAS),
    }


BLOCKED, ALLOWED = "403 apple-wave-1", "200 -"
LAST_GOOD = {
    "banned user": BLOCKED,
    "allowed user": ALLOWED,
    "banned device": BLOCKED,
    "allowed device": ALLOWED,
}
CHANGED = dict.fromkeys(LAST_GOOD, BLOCKED)


def source_figures(client: httpx.Client) -> dict[str, dict[str, float]]:
    """Per source (`directory`, `inventory`): its refusals and age from /metrics."""
    text = client.get("/metrics").text
    found: dict[str, dict[str, float]] = {}
    for metric in ("refusals_total", "age_seconds", "last_success_timestamp_seconds"):
        pattern = rf"^devicegate_source_{metric}\{{([^}}]*)\}} (\S+)$"
        for labels, value in re.findall(pattern, text, re.M):
            kind = dict(re.findall(r'(\w+)="([^"]*)"', labels))["kind"]
            found.setdefault(kind, {})[metric] = float(value)
    return found


def served_versions(client: httpx.Client) -> dict[str, str]:
    text = client.get("/metrics").text
    return dict(
        re.findall(r'devicegate_source_info\{kind="(\w+)",source="\w+",version="(\w+)"', text)
    )


def wait_for(check: Callable[[], bool], timeout: float = 30.0) -> float:
    """Seconds until `check()` held; fails after `timeout`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, "not within the time allowed"
        time.sleep(0.2)
    return time.monotonic() - started


def ask_for(client: httpx.Client, seconds: float) -> list[dict[str, str]]:
    """The four decisions, asked again and again for `seconds`."""
    seen: list[dict[str, str]] = []
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        seen.append(answers(client))
        time.sleep(0.25)
    return seen


def test_last_good_data_serves_while_the_sources_are_away(tmp_path: Path, record: Record) -> None:
    url = f"sqlite:///{tmp_path}/store.db"
    store = open_store(url)
    behaviour = quiet_mdm()
    with (
        slapd(tmp_path / "slapd", scenario_tree(10)) as ldap,
        ExitStack() as mdm,
    ):
        base, _, _ = mdm.enter_context(mdm_server(behaviour))
        directory = ldap.source_yaml(tmp_path / "ldap.yaml", refresh={"delta": "1s", "full": "1h"})
        intune = source_files(tmp_path, base)["intune"]
        intune.write_text(intune.read_text() + "refresh: {full: 1s}\n")
        assert Source.open(directory, store).sync().accepted
        assert Source.open(intune, store).sync().accepted
        extra = ("--devices", str(intune))
        with (
            procs.devicegate(tmp_path, POLICY, directory, url, extra=extra) as dg,
            dg.client() as client,
        ):
            assert answers(client) == LAST_GOOD
            before, start = served_versions(client), source_figures(client)
            # 1. slapd stopped, the MDM answering 500 to everything
            down = time.monotonic()
            ldap.stop()
            behaviour.down_status = 500
            during_500 = ask_for(client, PHASE)
            after_500 = source_figures(client)
            # 2. the MDM gone too: connections refused
            mdm.close()
            during_refused = ask_for(client, PHASE)
            away = source_figures(client)
            # a supervisor's restart during the outage: the stored versions serve
            with (
                procs.devicegate(tmp_path, POLICY, directory, url, extra=extra) as second,
                second.client() as other,
            ):
                restarted = answers(other)
            # 3. both back, each with a change: the moved user, the Android phone now an iPhone
            changed = intune_records(7)
            changed[3] = dict(changed[3], manufacturer="Apple", model="iPhone 14",
                              operatingSystem="iOS", osVersion="16.5.1")  # fmt: skip
            ldap.start()
            returned = time.monotonic()
            conn: Any = ldap.admin()
            conn.rename_s(user_dn(MOVED, "gov/minzdrav"), f"uid={MOVED}",
                          ou_dn("gov/minpromtorg/industry"))  # fmt: skip
            conn.unbind_s()
            port = int(base.rsplit(":", 1)[1])
            with mdm_server(quiet_mdm(changed), port=port):
                taken_in = wait_for(lambda: answers(client) == CHANGED, timeout=30)
                back, after = source_figures(client), served_versions(client)
    outage = [*during_500, *during_refused]
    wrong = [seen for seen in outage if seen != LAST_GOOD]
    assert outage and not wrong, wrong[:3]
    assert restarted == LAST_GOOD
    # every failed refresh counted, per source; the age of the last success grew, then fell
    for kind in ("directory", "inventory"):
        assert after_500[kind]["refusals_total"] > start[kind]["refusals_total"], kind
        assert away[kind]["refusals_total"] > after_500[kind]["refusals_total"], kind
        assert away[kind]["age_seconds"] >= PHASE, (kind, away)
        assert back[kind]["age_seconds"] < away[kind]["age_seconds"], (kind, back)
        assert after[kind] != before[kind], kind
    # decisions name the versions served before the outage, then the changed ones
    with store.engine.connect() as db:
        details = db.exec_driver_sql("select detail from decision_log").scalars().all()
    named = [json.loads(d) if isinstance(d, str) else d for d in details]
    assert {d["directory_version"] for d in named} == {before["directory"], after["directory"]}
    assert {d["inventory_version"] for d in named} == {before["inventory"], after["inventory"]}
    record(
        "source_unreachable",
        outage_s=round(returned - down, 1),
        decisions_during=4 * len(outage),
        wrong_during=4 * len(wrong),
        failed_refreshes_ldap=int(
            away["directory"]["refusals_total"] - start["directory"]["refusals_total"]
        ),
        failed_refreshes_mdm=int(
            away["inventory"]["refusals_total"] - start["inventory"]["refusals_total"]
        ),
        restart_during_outage="served",
        change_taken_in_s=round(taken_in, 1),
    )
