"""Intune, Fleet and Jamf Pro sources against a local server answering in their shapes."""

from __future__ import annotations

import json
import subprocess
import zlib
from pathlib import Path

import pytest
import sqlalchemy as sa

from devicegate.inventory import NO_THREAT
from devicegate.model import Ownership
from devicegate.sources import Source
from devicegate.store import open_store
from devicegate.store import tables as t
from tests.server.procs import DEVICEGATE
from tests.sources.mdmserver import (
    CLIENT_SECRET,
    EAS_ID,
    FLEET_TOKEN,
    TOKEN_PREFIX,
    Behaviour,
    intune_records,
    mdm_server,
    source_files,
)

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "examples" / "apple-ban" / "policy.yaml"
DIRECTORY = ROOT / "examples" / "apple-ban" / "directory.csv"


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DG_TEST_INTUNE_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("DG_TEST_FLEET_TOKEN", FLEET_TOKEN)


def test_intune_pages_through_an_empty_page_a_429_and_an_expired_token(tmp_path: Path) -> None:
    with mdm_server() as (base, _, log):
        files = source_files(tmp_path, base)
        waits: list[float] = []
        source = Source.open(files["intune"], sleep=waits.append)
        state, _ = source.read_full()
        inventory = source.serve(state)
    # 7 devices in pages of 2 with an empty page after the second: every one read
    assert len(inventory) == 7
    assert waits == [1.0]  # the 429's Retry-After was waited for, once
    assert 2 in log.rate_limited
    assert len(log.tokens) == 2  # the expired token was replaced once
    iphone = inventory.lookup("activesync_id", EAS_ID.lower())
    assert iphone is not None and iphone.mdm_id == iphone.device_id
    assert (iphone.vendor, iphone.platform, iphone.model) == ("Apple", "iOS", "iPhone 14")
    assert iphone.ownership is Ownership.PERSONAL and iphone.managed is True
    assert iphone.mac == "00005E000000" and iphone.imei == "350000000000000"
    assert iphone.compliant is True and iphone.mdm_threat == NO_THREAT
    assert inventory.lookup("mac", "00:00:5e:00:00:00") is iphone
    jailbroken = inventory.lookup("mdm_id", "00000001-1111-2222-3333-444455556666")
    assert jailbroken is not None and jailbroken.mdm_threat == "jailbroken"
    assert jailbroken.compliant is False
    threat = inventory.lookup("mdm_id", "00000002-1111-2222-3333-444455556666")
    assert threat is not None and threat.mdm_threat == "highSeverity"


def test_a_second_401_fails_the_pass(tmp_path: Path) -> None:
    """A refused token gets one new token; when that is refused too, the pass fails."""
    from devicegate.errors import SourceError
    from tests.sources import mdmserver

    with mdm_server() as (base, _, log):
        files = source_files(tmp_path, base)
        source = Source.open(files["intune"], sleep=lambda _s: None)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(mdmserver.Handler, "_bearer_ok", lambda _self: False)
            with pytest.raises(SourceError, match=r"refused the credentials \(401\)"):
                source.read_full()
    assert len(log.tokens) == 2  # the first token, then exactly one new one


def test_a_long_retry_after_stops_the_pass_instead_of_sleeping(tmp_path: Path) -> None:
    with mdm_server(Behaviour(retry_after="3600")) as (base, _, _log):
        files = source_files(tmp_path, base)
        source = Source.open(files["intune"], sleep=lambda _s: pytest.fail("slept"))
        from devicegate.errors import SourceError

        with pytest.raises(SourceError, match="asked to wait 3600 s"):
            source.read_full()


def test_fleet_and_jamf_map_their_shapes(tmp_path: Path) -> None:
    with mdm_server() as (base, _, _log):
        files = source_files(tmp_path, base)
        fleet = Source.open(files["fleet"])
        fleet_inventory = fleet.serve(fleet.read_full()[0])
        jamf = Source.open(files["jamf"])
        jamf_inventory = jamf.serve(jamf.read_full()[0])
    assert len(fleet_inventory) == 5
    mac = fleet_inventory.lookup("serial", "C02FLEET0000")
    assert mac is not None
    assert (mac.platform, mac.os_version, mac.model, mac.managed, mac.compliant) == (
        "macOS", "14.1.1", "MacBookPro18,3", True, True,
    )  # fmt: skip
    assert mac.user == "fleet0@minfin.example" and mac.mac == "00:00:5e:00:53:00"
    linux = fleet_inventory.lookup("serial", "C02FLEET0001")
    assert linux is not None and (linux.platform, linux.managed) == ("Linux", False)
    assert len(jamf_inventory) == 5
    ipad = jamf_inventory.lookup("mdm_id", "1")
    assert ipad is not None and ipad.model == "iPad14,3" and ipad.ownership is Ownership.CORPORATE
    assert ipad.udid == f"{0:040x}" and ipad.imei == "010000000000000"
    broken = jamf_inventory.lookup("mdm_id", "2")
    assert broken is not None and broken.mdm_threat == "jailbroken"
    assert broken.ownership is Ownership.PERSONAL


@pytest.mark.parametrize(
    ("kind", "behaviour", "reason"),
    [
        ("intune", Behaviour(malformed_page=3), "malformed JSON"),
        ("jamf", Behaviour(jamf_total_extra=3), "read 5 devices of the 8"),
        ("fleet", Behaviour(fleet_count_extra=1), "read 5 hosts of the 6"),
    ],
)
def test_a_broken_or_partial_answer_is_refused_and_loses_nothing(
    tmp_path: Path, kind: str, behaviour: Behaviour, reason: str
) -> None:
    store = open_store(f"sqlite:///{tmp_path}/store.db")
    with mdm_server() as (base, good, _log):
        files = source_files(tmp_path, base)
        source = Source.open(files[kind], store, sleep=lambda _s: None)
        first = source.sync()
        assert first.accepted and first.loaded is not None
        good.malformed_page = behaviour.malformed_page
        good.jamf_total_extra = behaviour.jamf_total_extra
        good.fleet_count_extra = behaviour.fleet_count_extra
        second = source.sync()
    assert second.outcome == "refused" and reason in (second.reason or "")
    assert second.loaded is not None and second.loaded.version == first.loaded.version
    again = Source.open(files[kind], store).load_last_good()
    assert again.version == first.loaded.version and len(again.served) == len(first.loaded.served)
    status = source.versions.status(source.name) if source.versions else None
    assert status is not None and status.last_outcome == "refused" and status.refusals == 1


def test_an_mdm_that_loses_most_devices_is_refused_then_forced(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/store.db")
    with mdm_server(Behaviour(intune=intune_records(10))) as (base, behaviour, _log):
        files = source_files(tmp_path, base)
        source = Source.open(files["intune"], store, sleep=lambda _s: None)
        assert source.sync().accepted
        behaviour.intune = intune_records(8)  # two of ten wiped: 20 % > 10 %
        refused = source.sync()
        assert refused.outcome == "refused" and "would remove 2 of 10 devices" in (
            refused.reason or ""
        )
        forced = source.sync(force=True, by="operator")
    assert forced.accepted and forced.loaded is not None
    assert forced.loaded.version.forced and len(forced.loaded.served) == 8


def test_a_next_link_to_another_host_is_not_followed(tmp_path: Path) -> None:
    from devicegate.errors import SourceError
    from devicegate.sources.mdmhttp import ApiClient

    with (
        ApiClient("t", "http://127.0.0.1:9", timeout=1) as api,
        pytest.raises(SourceError, match="points away"),
    ):
        api.get("https://attacker.example/steal")


def test_activesync_request_links_to_the_attested_record_through_check(tmp_path: Path) -> None:
    """`devicegate check --devices intune.yaml`: an ActiveSync request whose DeviceId the MDM
    knows is identified from the MDM record (and blocked by wave 1), with no secret or token
    in anything the command prints."""
    import os

    env = dict(os.environ)
    with mdm_server() as (base, _, log):
        files = source_files(tmp_path, base)
        result = subprocess.run(
            [DEVICEGATE, "check", "-p", str(POLICY), "-d", str(DIRECTORY),
             "--devices", str(files["intune"]), "--user", "i.petrov@minpromtorg.example",
             "--resource", "email", "--at", "2023-07-18T10:00",
             "--activesync-query", f"Cmd=Sync&User=i.petrov&DeviceId={EAS_ID}&DeviceType=iPhone",
             "--json"],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    decision = json.loads(result.stdout)
    assert decision["action"] == "block" and decision["rule"] == "apple-wave-1"
    sources = [e["source"] for e in decision["device"]["evidence"]]
    assert "inventory/activesync_id" in sources
    record = next(
        e for e in decision["device"]["evidence"] if e["source"] == "inventory/activesync_id"
    )
    assert record["says"]["vendor"] == "Apple" and record["says"]["mdm_threat"] == NO_THREAT
    output = result.stdout + result.stderr
    for secret in (CLIENT_SECRET, FLEET_TOKEN, TOKEN_PREFIX):
        assert secret not in output
    assert log.tokens  # the run did authenticate


def test_no_secret_or_token_reaches_the_store_or_the_output(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    url = f"sqlite:///{tmp_path}/store.db"
    with mdm_server() as (base, behaviour, log):
        files = source_files(tmp_path, base)
        outputs = []
        for kind in ("intune", "fleet", "jamf"):
            for extra in ([], ["--dry-run"]):
                run = subprocess.run(
                    [DEVICEGATE, "sources", "sync", str(files[kind]), "--store", url, *extra],
                    capture_output=True, text=True, timeout=120,
                )  # fmt: skip
                outputs.append(run.stdout + run.stderr)
                assert run.returncode == 0, run.stderr
            check = subprocess.run(
                [DEVICEGATE, "sources", "check", str(files[kind]), "--json"],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            outputs.append(check.stdout + check.stderr)
        behaviour.malformed_page = 3
        refused = subprocess.run(
            [DEVICEGATE, "sources", "sync", str(files["intune"]), "--store", url],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        outputs.append(refused.stdout + refused.stderr)
        assert refused.returncode == 1 and "malformed JSON" in refused.stdout
        issued = list(log.tokens)
    database = (tmp_path / "store.db").read_bytes()
    wal = tmp_path / "store.db-wal"
    blobs = [database, wal.read_bytes() if wal.exists() else b""]
    # the versions' content is compressed: look inside it too
    store = open_store(url, create=False)
    with store.engine.connect() as conn:
        for (content,) in conn.execute(sa.select(t.source_versions.c.content)):
            blobs.append(zlib.decompress(content))
        blobs.append(repr(list(conn.execute(sa.select(t.source_status)))).encode())
    assert len(blobs) == 2 + 3 + 1
    texts = [*outputs, caplog.text]
    for secret in (CLIENT_SECRET, FLEET_TOKEN, *issued):
        assert all(secret not in text for text in texts), secret
        assert all(secret.encode() not in blob for blob in blobs), secret
