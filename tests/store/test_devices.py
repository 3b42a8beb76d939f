"""What the help desk reads: a hold says whose request, what it carried and who set it; a
device is found by any of its identifiers; a store that is not there is never made up."""

from __future__ import annotations

from pathlib import Path

import pytest

from devicegate.errors import StoreError
from devicegate.identify import Identifier
from devicegate.inventory import EMPTY_INVENTORY
from devicegate.model import Signals
from devicegate.store import describe_seen, open_store, seen_json

EAS = Signals(
    user_agent="Apple-iPhone14C2/2003.1.1",
    activesync_query="Cmd=Sync&User=m.sokolova&DeviceId=ffee0011aabb&DeviceType=iPhone",
    mac="AA-BB-CC-00-11-22",
)


def test_a_hold_keeps_who_what_and_by_whom(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'dg.db'}")
    profile = Identifier(EMPTY_INVENTORY).profile(EAS)
    seen = seen_json(EAS, profile)
    ref = store.hold(
        profile.keys,
        resource="email",
        rule="spoofed-mail-clients",
        reason="held for review",
        user="m.sokolova@minpromtorg.example",
        seen=seen,
        created_by="forward-auth",
    )
    record = store.device(ref)
    assert record is not None and record.held == ("email",)
    (hold,) = record.holds
    assert (hold.rule, hold.user, hold.created_by) == (
        "spoofed-mail-clients",
        "m.sokolova@minpromtorg.example",
        "forward-auth",
    )
    assert hold.seen is not None and hold.seen["signals"]["user_agent"] == EAS.user_agent
    assert hold.seen["device"]["model"] == "iPhone14,2"
    assert "user agent `Apple-iPhone14C2/2003.1.1`" in describe_seen(hold.seen)
    # the device row says what it is, not "unidentified"
    assert (record.vendor, record.model) == ("Apple", "iPhone14,2")
    # a second hold on the same resource keeps the first (and what it saw)
    store.hold(profile.keys, resource="email", rule="other", reason="again")
    again = store.device(ref)
    assert again is not None and [h.rule for h in again.holds] == ["spoofed-mail-clients"]


def test_a_hold_without_details_still_works(tmp_path: Path) -> None:
    """Callers that pass no `seen`/`created_by` (older servers) keep working."""
    store = open_store(f"sqlite:///{tmp_path / 'dg.db'}")
    ref = store.hold([("activesync_id", "abc")], resource="email", rule="r", reason="x")
    record = store.device(ref)
    assert record is not None and record.holds[0].seen is None
    assert describe_seen(record.holds[0].seen) == "-"


def test_seen_is_bounded_whatever_the_client_sends(tmp_path: Path) -> None:
    signals = Signals(user_agent="A" * 100_000, imap_id='("name" "' + "x" * 50_000 + '")')
    seen = seen_json(signals, Identifier(EMPTY_INVENTORY).profile(signals))
    assert len(str(seen)) < 5_000


def test_a_device_is_found_by_any_identifier(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'dg.db'}")
    profile = Identifier(EMPTY_INVENTORY).profile(EAS)
    ref = store.hold(profile.keys, resource="email", rule="r", reason="x")
    other = store.record_verdict(
        keys=[("serial", "F2LX1234"), ("device_id", "DEV-1")],
        verdict="compromised",
        evidence=[],
        scan_id="s1",
        source="backup",
    )
    assert store.find(ref) == [ref]
    assert store.find("FFEE0011AABB") == [ref]  # ActiveSync id as the server saw it
    assert store.find("ffee0011aabb") == [ref]  # … in any case
    assert store.find("aa:bb:cc:00:11:22") == [ref]  # MAC in another notation
    assert store.find("mac=aabb.cc00.1122") == [ref]  # kind=value
    assert store.find("f2lx1234") == [other]  # serial
    assert store.find("DEV-1") == [other]  # inventory device id
    assert store.find("FFEE00") == [] and store.find("") == []
    assert store.find("serial=FFEE0011AABB") == []  # the kind narrows the search


def test_list_shows_released_devices_only_with_all(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'dg.db'}")
    ref = store.hold([("activesync_id", "abc")], resource="email", rule="r", reason="x")
    store.release(ref, by="ops")
    assert store.list_devices(only_restricted=True) == []
    (record,) = store.list_devices()
    assert record.holds[0].released_by == "ops" and not record.restricted


def test_readers_refuse_a_store_that_is_not_there(tmp_path: Path) -> None:
    path = tmp_path / "devicegate.db"
    with pytest.raises(StoreError, match="no store at `sqlite:///") as raised:
        open_store(f"sqlite:///{path}", create=False)
    assert "DEVICEGATE_STORE" in (raised.value.hint or "")
    assert not path.exists()  # and none was created
    path.write_bytes(b"")  # an empty file is not a store either
    with pytest.raises(StoreError, match="no store at"):
        open_store(f"sqlite:///{path}", create=False)
    path.unlink()
    open_store(f"sqlite:///{path}")  # serve and triage --quarantine create it
    assert open_store(f"sqlite:///{path}", create=False).count("holds") == 0


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("not a database\n" * 100)
    with pytest.raises(StoreError, match="cannot open store"):
        open_store(f"sqlite:///{path}", create=False)


def test_passwords_stay_out_of_messages() -> None:
    with pytest.raises(StoreError) as raised:
        open_store("postgresql://gate:s3cret@127.0.0.1:1/nothing", create=False)
    assert "s3cret" not in raised.value.one_line()


def test_seen_has_the_shape_the_server_writes() -> None:
    """`{"signals": …, "device": {vendor, platform, model, os_version}}`, as `serve` records
    it; a `seen` of another shape (or none) is read as nothing known, never an error."""
    profile = Identifier(EMPTY_INVENTORY).profile(EAS)
    seen = seen_json(EAS, profile)
    assert set(seen) == {"signals", "device"}
    assert seen["device"] == {
        "vendor": "Apple",
        "platform": "iOS",
        "model": "iPhone14,2",
        "os_version": "16.2",
    }
    assert describe_seen({"device": "junk", "signals": ["x"]}) == "unidentified device"
