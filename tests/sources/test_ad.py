"""Active Directory specifics against a real Samba AD DC: detection, the in-chain matching
rule for nested groups, userAccountControl's ACCOUNTDISABLE, and uSNChanged deltas."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devicegate.directory import Directory
from devicegate.sources import Source
from devicegate.store import open_store
from tests.sources.adserver import ADMIN, ADMIN_PW, BASE, SambaAd, ou, samba_ad

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def ad(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SambaAd]:
    with samba_ad(tmp_path_factory.mktemp("samba")) as server:
        yield server


def source_file(path: Path, **overrides: Any) -> Path:
    data: dict[str, Any] = {
        "kind": "ldap",
        "name": "ad",
        "url": SambaAd.url,
        "bind_dn": ADMIN,
        "password": {"env": "DG_TEST_AD_PW"},
        "page_size": 2,
        "users": {"base": BASE},
        "unit": {
            "ou_base": BASE,
            "map": {"Gov/Ministry of Finance": "gov/minfin", "Gov": "gov", "Rostec": "rostec"},
        },
        "groups": {"base": f"CN=Users,{BASE}", "name": "sAMAccountName"},
    }
    data.update(overrides)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DG_TEST_AD_PW", ADMIN_PW)


def test_ad_is_detected_and_mapped(ad: SambaAd, tmp_path: Path) -> None:
    source = Source.open(source_file(tmp_path / "ad.yaml"))
    state, watermark = source.read_full()
    assert getattr(state, "server", None) == "ad" and getattr(state, "mode", None) == "in_chain"
    assert watermark is not None and watermark.isdigit()  # highestCommittedUSN
    directory = source.serve(state)
    assert isinstance(directory, Directory)
    petrov = directory.get("i.petrov")
    assert petrov is not None and petrov.unit == "gov/minpromtorg/industry"
    assert petrov.email == "i.petrov@gov.example"
    volkova = directory.get("s.volkova")
    assert volkova is not None and volkova.unit == "gov/minfin/budget" and volkova.disabled
    assert not petrov.disabled
    kozlov = directory.get("d.kozlov")  # a member of mobile-users through ios-lab-leads
    assert kozlov is not None and kozlov.groups >= {"ios-lab-leads", "mobile-users"}
    assert "mobile-users" in petrov.groups and "ios-lab-leads" not in petrov.groups
    belov = directory.get("k.belov")
    assert belov is not None and belov.unit == "rostec/cii"


def test_a_uSN_delta_re_resolves_a_nested_change(ad: SambaAd, tmp_path: Path) -> None:
    import ldap

    store = open_store(f"sqlite:///{tmp_path}/store.db")
    source = Source.open(source_file(tmp_path / "ad.yaml"), store)
    first = source.sync()
    assert first.accepted
    conn: Any = ad.admin()
    belov = f"CN=k.belov,{ou('Rostec', 'CII')}"
    # belov joins the inner group: only ios-lab-leads changes; mobile-users (above) must follow
    conn.modify_s(f"CN=ios-lab-leads,CN=Users,{BASE}", [(ldap.MOD_ADD, "member", [belov.encode()])])
    conn.modify_s(belov, [(ldap.MOD_REPLACE, "userAccountControl", [str(0x0222).encode()])])
    conn.unbind_s()
    delta = source.sync()
    assert delta.accepted and not delta.full and delta.diff is not None
    assert delta.diff.groups == (("k.belov", ("ios-lab-leads", "mobile-users"), ()),)
    assert delta.diff.disabled == ("k.belov",)
    unchanged = source.sync()
    assert unchanged.outcome == "unchanged" and not unchanged.full
