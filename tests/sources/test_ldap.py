"""The LDAP source against a real OpenLDAP slapd: paging, TLS, mapping, deltas, the guard."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from devicegate.directory import Directory
from devicegate.errors import SourceError
from devicegate.inventory import EMPTY_INVENTORY
from devicegate.model import Action, Request, Signals
from devicegate.policy import compile_policy, decide, load_policy
from devicegate.sources import NoGoodVersion, Source
from devicegate.store import open_store
from tests.server.procs import DEVICEGATE
from tests.sources.ldapserver import (
    BASE,
    ROOT_PW,
    SERVICE_PW,
    Slapd,
    ou_dn,
    scenario_tree,
    slapd,
    user_dn,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "examples" / "apple-ban" / "policy.yaml"
EXTRA = 60  # generated users beside the scenario's 7: 67 entries against a size limit of 20
IPHONE = "Apple-iPhone14C2/2003.1.1"


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DG_TEST_LDAP_PW", SERVICE_PW)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """One slapd for the tests that only read."""
    with slapd(tmp_path_factory.mktemp("slapd"), scenario_tree(EXTRA)) as server:
        yield server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Slapd]:
    """A slapd of the test's own, for tests that change the tree."""
    with slapd(tmp_path / "slapd", scenario_tree(EXTRA)) as own:
        yield own


def directory_of(source: Source) -> Directory:
    served = source.serve(source.read_full()[0])
    assert isinstance(served, Directory)
    return served


def test_paging_reads_every_user_past_the_size_limit(shared: Slapd, tmp_path: Path) -> None:
    plain = subprocess.run(
        ["ldapsearch", "-x", "-LLL", "-H", shared.url, "-D", "cn=devicegate,ou=services," + BASE,
         "-w", SERVICE_PW, "-b", BASE, "(objectClass=inetOrgPerson)", "uid"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert plain.returncode == 4 and plain.stdout.count("dn: ") == 20  # sizeLimitExceeded
    directory = directory_of(Source.open(shared.source_yaml(tmp_path / "ldap.yaml")))
    assert len(directory) == 7 + EXTRA


def test_a_server_that_stops_paging_early_fails_the_pass(tmp_path: Path) -> None:
    """A paged search cut at 30 entries (`size.prtotal`) ends in sizeLimitExceeded: the pass
    fails and a sync is refused, never served with 30 of 67 users."""
    with slapd(tmp_path / "slapd", scenario_tree(EXTRA), paged_total="30") as capped:
        store = open_store(f"sqlite:///{tmp_path}/store.db")
        source = Source.open(capped.source_yaml(tmp_path / "ldap.yaml"), store)
        with pytest.raises(SourceError, match="size limit"):
            source.read_full()
        result = source.sync()
    assert result.outcome == "refused" and "size limit" in (result.reason or "")
    assert source.latest() is None


def test_the_mapping_units_groups_and_disabled(shared: Slapd, tmp_path: Path) -> None:
    directory = directory_of(Source.open(shared.source_yaml(tmp_path / "ldap.yaml")))
    petrov = directory.get("i.petrov@minpromtorg.example")
    assert petrov is not None and petrov.unit == "gov/minpromtorg/industry"
    assert petrov.name == "Igor Petrov" and not petrov.disabled
    kozlov = directory.get("d.kozlov")
    assert kozlov is not None and kozlov.groups == {"ios-lab-leads", "ios-developers"}
    orlov = directory.get("a.orlov")  # a member of a cycle: both groups, and no endless loop
    assert orlov is not None and orlov.groups == {"cycle-a", "cycle-b"}
    belov = directory.get("k.belov")  # devicegateUnit wins over the ou= path
    assert belov is not None and belov.unit == "rostec/cii"
    lebedeva = directory.get("e.lebedeva")
    assert lebedeva is not None and lebedeva.disabled
    assert [p.message for p in directory.problems] == [
        "groups `cycle-a`, `cycle-b` contain each other"
    ]


def test_ou_paths_map_onto_the_policy_units(shared: Slapd, tmp_path: Path) -> None:
    path = shared.source_yaml(
        tmp_path / "ldap.yaml",
        unit={"ou_base": BASE, "map": {"gov/MinFin": "gov/finance", "rostec": "corp/rostec"}},
    )
    directory = directory_of(Source.open(path))
    volkova = directory.get("s.volkova")
    belov = directory.get("k.belov")  # no attribute configured now: its ou= path counts
    assert volkova is not None and volkova.unit == "gov/finance/budget"
    assert belov is not None and belov.unit == "corp/rostec/cii"


@pytest.mark.parametrize("tls", ["ldaps", "starttls"])
def test_tls_with_the_ca_file(shared: Slapd, tmp_path: Path, tls: str) -> None:
    directory = directory_of(Source.open(shared.source_yaml(tmp_path / "ldap.yaml", tls=tls)))
    assert len(directory) == 7 + EXTRA


def test_tls_without_the_ca_is_refused_not_downgraded(shared: Slapd, tmp_path: Path) -> None:
    path = shared.source_yaml(tmp_path / "ldap.yaml", tls="ldaps")
    text = path.read_text().replace(
        f"ca_file: {shared.ca}", "ca_file: /etc/ssl/certs/ca-certificates.crt"
    )
    path.write_text(text)
    with pytest.raises(SourceError, match="cannot connect"):
        Source.open(path).read_full()


def test_a_wrong_password_is_a_clear_error_without_the_password(
    shared: Slapd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DG_TEST_LDAP_PW", "wrong-password-not-for-logs")
    with pytest.raises(SourceError) as caught:
        Source.open(shared.source_yaml(tmp_path / "ldap.yaml")).read_full()
    assert "invalid credentials" in caught.value.message
    assert "wrong-password" not in caught.value.one_line()


# ---- changes, deltas and the guard ----------------------------------------------------------


def _move(server: Slapd, login: str, old: str, new: str) -> None:
    conn: Any = server.admin()
    conn.rename_s(user_dn(login, old), f"uid={login}", ou_dn(new))
    conn.unbind_s()


def _decide(directory: Directory, user: str) -> Action:
    loaded = load_policy([POLICY], directory=directory)
    snapshot = compile_policy(loaded, directory, EMPTY_INVENTORY)
    at = datetime(2023, 7, 18, 10, tzinfo=ZoneInfo("Europe/Moscow"))
    request = Request(user=user, resource="email", at=at, signals=Signals(user_agent=IPHONE))
    return decide(snapshot, request).action


def test_a_user_moved_to_minpromtorg_gets_wave_1_after_the_next_sync(
    server: Slapd, tmp_path: Path
) -> None:
    store = open_store(f"sqlite:///{tmp_path}/store.db")
    source = Source.open(server.source_yaml(tmp_path / "ldap.yaml"), store)
    first = source.sync()
    assert first.accepted and first.full and first.loaded is not None
    assert isinstance(first.loaded.served, Directory)
    # wave 2 blocks only e-mail from 14 August: on 18 July s.volkova (gov/minfin) is allowed
    assert _decide(first.loaded.served, "s.volkova") is Action.ALLOW
    _move(server, "s.volkova", "gov/minfin/budget", "gov/minpromtorg/industry")
    second = source.sync()
    assert second.accepted and not second.full  # a delta found it
    assert second.diff is not None and second.diff.moved == (
        ("s.volkova", "gov/minfin/budget", "gov/minpromtorg/industry"),
    )
    assert second.loaded is not None and isinstance(second.loaded.served, Directory)
    assert _decide(second.loaded.served, "s.volkova") is Action.BLOCK


def test_a_delta_sees_group_changes_and_a_full_pass_sees_deletions(
    server: Slapd, tmp_path: Path
) -> None:
    import ldap

    store = open_store(f"sqlite:///{tmp_path}/store.db")
    source = Source.open(server.source_yaml(tmp_path / "ldap.yaml"), store)
    assert source.sync().accepted
    conn: Any = server.admin()
    # a membership change touches the group's entry only: nested, two levels up
    conn.modify_s(
        f"cn=ios-lab-leads,ou=groups,{BASE}",
        [(ldap.MOD_ADD, "member", [user_dn("i.petrov", "gov/minpromtorg/industry").encode()])],
    )
    conn.delete_s(user_dn("user000000", "gov/minpromtorg/industry"))
    conn.unbind_s()
    delta = source.sync()
    assert delta.accepted and not delta.full and delta.diff is not None
    assert delta.diff.groups == (("i.petrov", ("ios-developers", "ios-lab-leads"), ()),)
    assert delta.diff.removed == ()  # a delta cannot see a deletion
    full = source.sync(full=True)
    assert full.accepted and full.diff is not None and full.diff.removed == ("user000000",)


def test_a_delta_with_no_change_writes_no_version(server: Slapd, tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/store.db")
    source = Source.open(server.source_yaml(tmp_path / "ldap.yaml"), store)
    first = source.sync()
    again = source.sync()
    assert again.outcome == "unchanged" and not again.full
    assert source.latest() == (first.loaded.version if first.loaded else None)


def test_deleting_a_fifth_is_refused_then_forced(server: Slapd, tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/store.db")
    path = server.source_yaml(tmp_path / "ldap.yaml")
    source = Source.open(path, store)
    first = source.sync()
    assert first.accepted and first.loaded is not None
    conn: Any = server.admin()
    doomed = [f"user{n:06d}" for n in range(0, 14)]  # 14 of 67: 20.9 %
    from tests.sources.ldapserver import generated

    for n in range(14):
        login, unit, _ = generated(n)
        conn.delete_s(user_dn(login, unit))
    conn.unbind_s()
    refused = source.sync(full=True)
    assert refused.outcome == "refused" and "would remove 14 of 67 users" in (refused.reason or "")
    assert Source.open(path, store).load_last_good().version == first.loaded.version
    url = f"sqlite:///{tmp_path}/store.db"
    dry = subprocess.run(
        [DEVICEGATE, "sources", "sync", str(path), "--store", url, "--dry-run", "--full"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert "the guard refuses" in dry.stdout and "-14 removed" in dry.stdout
    assert all(f"- {login}" in dry.stdout for login in doomed)
    plain = subprocess.run(
        [DEVICEGATE, "sources", "sync", str(path), "--store", url, "--full"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert plain.returncode == 1 and "sync refused" in plain.stderr
    forced = subprocess.run(
        [DEVICEGATE, "sources", "sync", str(path), "--store", url, "--force"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    latest = Source.open(path, store).load_last_good()
    assert latest.version.forced and len(latest.served) == 67 - 14
    status = Source.open(path, store).versions
    assert status is not None
    recorded = status.status("ldap")
    assert recorded is not None and recorded.refusals == 2


def test_slapd_stopped_mid_sync_keeps_the_last_good_directory(
    server: Slapd, tmp_path: Path
) -> None:
    store = open_store(f"sqlite:///{tmp_path}/store.db")
    path = server.source_yaml(tmp_path / "ldap.yaml", page_size=5)
    source = Source.open(path, store)
    first = source.sync()
    assert first.accepted and first.loaded is not None
    # stop the server after the third page of the next pass
    from devicegate.sources import ldapconn

    original = ldapconn.Connection.paged
    pages = {"n": 0}

    def stopping(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        for item in original(self, *args, **kwargs):
            pages["n"] += 1
            if pages["n"] == 15:
                server.stop()
            yield item

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ldapconn.Connection, "paged", stopping)
        result = source.sync(full=True)
    assert result.outcome == "refused" and "read failed" in (result.reason or "")
    assert result.loaded is not None and result.loaded.version == first.loaded.version
    # a restart during the outage starts from the last good version
    restarted = Source.open(path, store).load_last_good()
    assert restarted.version == first.loaded.version and len(restarted.served) == 67
    server.start()
    assert Source.open(path, store).sync().outcome in ("unchanged", "accepted")


def test_no_version_yet_is_a_clear_error(shared: Slapd, tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/store.db")
    source = Source.open(shared.source_yaml(tmp_path / "ldap.yaml"), store)
    with pytest.raises(NoGoodVersion, match="no accepted version yet"):
        source.load_last_good()
    assert source.ensure_version().version.size == 67


def test_no_bind_password_in_logs_store_or_output(
    server: Slapd, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import zlib

    import sqlalchemy as sa

    from devicegate.store import tables as t

    caplog.set_level(logging.DEBUG)
    url = f"sqlite:///{tmp_path}/store.db"
    path = server.source_yaml(tmp_path / "ldap.yaml")
    outputs = []
    for args in (["sources", "check", str(path)], ["sources", "sync", str(path), "--store", url],
                 ["sources", "status", str(path), "--store", url, "--json"]):  # fmt: skip
        run = subprocess.run([DEVICEGATE, *args], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        outputs.append(run.stdout + run.stderr)
    os.environ["DG_TEST_LDAP_PW"] = "wrong-password-not-for-logs"
    try:
        bad = subprocess.run(
            [DEVICEGATE, "sources", "sync", str(path), "--store", url, "--full"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        os.environ["DG_TEST_LDAP_PW"] = SERVICE_PW
    assert bad.returncode == 1 and "invalid credentials" in bad.stdout
    outputs.append(bad.stdout + bad.stderr)
    store = open_store(url, create=False)
    with store.engine.connect() as conn:
        contents = [
            zlib.decompress(c) for (c,) in conn.execute(sa.select(t.source_versions.c.content))
        ]
        status = repr(list(conn.execute(sa.select(t.source_status))))
    assert contents
    files = [p.read_bytes() for p in tmp_path.glob("store.db*")]
    files += [server.log.read_bytes()]
    for secret in (SERVICE_PW, "wrong-password-not-for-logs", ROOT_PW):
        assert all(secret not in text for text in [*outputs, status, caplog.text]), secret
        assert all(secret.encode() not in blob for blob in [*contents, *files]), secret


# ---- the refresher --------------------------------------------------------------------------


def test_the_refresher_keeps_every_server_on_the_store_current(
    server: Slapd, tmp_path: Path
) -> None:
    """Two servers on one store: the one holding the lease syncs; the other adopts its
    versions (and an operator's --force) from the store; refusals show in the metrics."""
    from devicegate.sources import Refresher

    url = f"sqlite:///{tmp_path}/store.db"
    path = server.source_yaml(tmp_path / "ldap.yaml", refresh={"delta": "60s", "full": "1h"})
    now = {"t": 1000.0}
    seen: dict[str, list[str]] = {"a": [], "b": []}

    def refresher(name: str) -> Refresher:
        source = Source.open(path, open_store(url))
        current = source.ensure_version()
        made = Refresher(
            source,
            lambda served, version: seen[name].append(version.version),
            current=current,
            clock=lambda: now["t"],
        )
        made.owner = f"server-{name}"
        return made

    a, b = refresher("a"), refresher("b")
    start = a.current.version.version
    assert b.current.version.version == start
    _move(server, "s.volkova", "gov/minfin/budget", "gov/minpromtorg/industry")
    now["t"] += 61
    assert a.tick() is not None and a.metrics().last_outcome == "accepted"
    assert b.tick() is None  # the lease is a's: b does not read LDAP
    assert seen["a"] == seen["b"] and len(seen["a"]) == 1 and seen["a"][0] != start
    moved = b.current.served
    assert isinstance(moved, Directory)
    volkova = moved.get("s.volkova")
    assert volkova is not None and volkova.unit == "gov/minpromtorg/industry"
    # a refused pass: metrics say so, nothing is swapped
    conn: Any = server.admin()
    from tests.sources.ldapserver import generated

    for n in range(20):
        login, unit, _ = generated(n)
        conn.delete_s(user_dn(login, unit))
    conn.unbind_s()
    now["t"] += 3601
    refused = a.tick()
    assert refused is not None and refused.outcome == "refused"
    metrics = a.metrics()
    assert metrics.refusals == 1 and "would remove 20 of 67 users" in (metrics.last_reason or "")
    assert metrics.size == 67 and metrics.version == seen["a"][-1]
    # the operator forces it; both servers take it on their next tick
    forced = Source.open(path, open_store(url)).sync(force=True, by="operator")
    assert forced.accepted and forced.loaded is not None
    a.tick()
    b.tick()
    assert seen["a"][-1] == seen["b"][-1] == forced.loaded.version.version
    assert a.metrics().size == b.metrics().size == 47


def test_the_refresher_thread_swaps_in_a_change_within_its_interval(
    server: Slapd, tmp_path: Path
) -> None:
    import threading
    from datetime import timedelta

    from devicegate.sources import Refresher

    path = server.source_yaml(tmp_path / "ldap.yaml", refresh={"delta": "1s", "full": "1h"})
    source = Source.open(path, open_store(f"sqlite:///{tmp_path}/store.db"))
    swapped = threading.Event()
    served: list[Directory] = []

    def on_version(directory: Any, _version: Any) -> None:
        served.append(directory)
        swapped.set()

    refresher = Refresher(
        source, on_version, current=source.ensure_version(), poll=timedelta(seconds=0.2)
    )
    refresher.start()
    try:
        _move(server, "i.petrov", "gov/minpromtorg/industry", "gov/minfin/budget")
        assert swapped.wait(30), "no new version within 30 s"
    finally:
        refresher.stop()
    petrov = served[-1].get("i.petrov")
    assert petrov is not None and petrov.unit == "gov/minfin/budget"
    assert refresher.metrics().last_outcome == "accepted"


def test_a_server_takes_over_the_reading_when_the_lease_holder_stops(
    shared: Slapd, tmp_path: Path
) -> None:
    import time

    from devicegate.sources import Refresher

    url = f"sqlite:///{tmp_path}/store.db"
    path = shared.source_yaml(tmp_path / "ldap.yaml", refresh={"delta": "1s", "full": "1h"})

    def refresher(owner: str) -> Refresher:
        source = Source.open(path, open_store(url))
        made = Refresher(source, lambda *_: None, current=source.ensure_version())
        made.owner = owner
        return made

    a, b = refresher("server-a"), refresher("server-b")
    assert a.tick() is not None  # a holds the lease (2 × the 1 s delta)
    assert b.tick() is None
    time.sleep(2.5)  # a has stopped ticking: its lease runs out
    taken = b.tick()
    assert taken is not None and taken.outcome == "unchanged"


def test_an_audit_on_an_ldap_source_never_reuses_a_run_from_another_directory(
    server: Slapd, tmp_path: Path
) -> None:
    """The audit reuses its last results when its input files are unchanged; a source YAML is
    unchanged while the directory behind it moves."""
    log = tmp_path / "access.log"
    log.write_text(
        '198.51.100.7 - s.volkova [18/Jul/2023:09:00:00 +0300] "GET /mail HTTP/1.1" 200 1 "-" '
        f'"{IPHONE}"\n'
    )
    path = server.source_yaml(tmp_path / "ldap.yaml")
    args = [DEVICEGATE, "audit", "-p", str(POLICY), "-d", str(path), "--out",
            str(tmp_path / "out"), str(log), "--json"]  # fmt: skip
    first = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    _move(server, "s.volkova", "gov/minfin/budget", "gov/minpromtorg/industry")
    second = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert "results are reused" not in second.stderr
    assert first.stdout != second.stdout
