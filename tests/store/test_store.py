"""The store links identifiers to devices, keeps verdicts and holds, and survives reopening."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devicegate.errors import StoreError
from devicegate.store import make_engine, open_store


def test_verdict_by_serial_reaches_a_lookup_by_udid(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dg.db'}"
    store = open_store(url)
    ref = store.record_verdict(
        keys=[("serial", "f2lx1234"), ("udid", "u-1")],
        verdict="compromised",
        evidence=[{"kind": "process"}],
        scan_id="s1",
        source="backup",
    )
    reopened = open_store(url)
    state = reopened.device_state([("udid", "U-1")])
    assert state.compromised and state.device_ref == ref
    assert reopened.release(ref, by="analyst") == 1
    assert not reopened.device_state([("serial", "F2LX1234")]).compromised


def test_holds_are_per_resource_until_released(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'dg.db'}")
    ref = store.hold([("activesync_id", "abc")], resource="email", rule="r", reason="spoof")
    store.hold([("activesync_id", "ABC")], resource="email", rule="r", reason="again")
    assert store.device_state([("activesync_id", "Abc")]).held == {"email"}
    listed = store.list_devices(only_restricted=True)
    assert [d.device_ref for d in listed] == [ref] and listed[0].held == ("email",)
    store.release(ref)
    assert store.list_devices(only_restricted=True) == []


def test_batches_and_recent_sightings(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'dg.db'}")
    now = datetime.now(UTC)
    sightings = [
        {
            "at": now - timedelta(hours=h),
            "user": "Alice",
            "resource": "email",
            "adapter": "dovecot",
            "device_ref": None,
            "vendor": "Apple",
            "platform": "iOS",
            "signals": {"imap_id": "x"},
        }
        for h in (1, 30)
    ]
    store.write_sightings(sightings)
    recent = store.recent_sightings("alice", since=timedelta(hours=24))
    assert len(recent) == 1 and recent[0]["vendor"] == "Apple"
    assert store.count("sightings") == 2


@pytest.mark.parametrize(
    "url",
    [
        "postgres://official:hunter2@db.example/devicegate",  # the dialect is `postgresql`
        "postgresql+nosuchdriver://official:p@ss:hunter2@db.example/devicegate",
    ],
)
def test_a_store_url_that_cannot_be_used_is_refused_without_its_password(url: str) -> None:
    """The reason reaches the terminal and `serve`'s log (the writer reports it): a typo in
    the URL must not print the password."""
    with pytest.raises(StoreError) as caught:
        make_engine(url)
    assert "hunter2" not in caught.value.message
    assert "official:***@db.example" in caught.value.message
