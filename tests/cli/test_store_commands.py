"""Commands that read the store: they refuse a store that is not there (never a false
all-clear), take it from `--store` or DEVICEGATE_STORE alike, and let the help desk explain a
refusal — `devices show|list|release` by any identifier, `check`/`explain --store`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devicegate.identify import Identifier
from devicegate.inventory import EMPTY_INVENTORY
from devicegate.model import Signals
from devicegate.store import Store, open_store, seen_json
from tests.cli.test_cli import DIRECTORY, POLICY, run

USER = "m.sokolova@minpromtorg.example"
EAS = Signals(
    user_agent="Apple-iPhone14C2/2003.1.1",
    activesync_query="Cmd=Sync&User=m.sokolova&DeviceId=FFEE00112233&DeviceType=iPhone",
)


def held_store(path: Path) -> tuple[str, Store, str]:
    """A store with m.sokolova's iPhone held on e-mail, as `serve` records it."""
    url = f"sqlite:///{path}"
    store = open_store(url)
    profile = Identifier(EMPTY_INVENTORY).profile(EAS)
    ref = store.hold(
        profile.keys,
        resource="email",
        rule="spoofed-mail-clients",
        reason="held for review by IT security",
        user=USER,
        seen=seen_json(EAS, profile),
        created_by="forward-auth",
    )
    return url, store, ref


def sighting(user: str, adapter: str, signals: dict[str, str]) -> dict[str, object]:
    return {
        "at": datetime(2023, 7, 17, 9, tzinfo=UTC),
        "user": user,
        "resource": "email",
        "adapter": adapter,
        "device_ref": None,
        "vendor": "Apple",
        "platform": "iOS",
        "signals": signals,
    }


READERS = [
    ["devices", "list"],
    ["devices", "list", "--all"],
    ["devices", "show", "FFEE00112233"],
    ["devices", "release", "FFEE00112233"],
    ["decisions", "export"],
    ["notify", "--policy", POLICY, "--directory", DIRECTORY, "--dry-run"],
    ["check", "-p", POLICY, "-u", USER, "-r", "email", "--store", "sqlite:///devicegate.db"],
    ["explain", "-p", POLICY, "-u", USER, "-r", "email", "--store", "sqlite:///devicegate.db"],
]


@pytest.mark.parametrize("argv", READERS, ids=lambda a: " ".join(a[:2]))
def test_readers_refuse_a_missing_store_and_create_none(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DEVICEGATE_STORE", raising=False)
    code, out, err = run(argv, capsys)
    assert code == 1, out + err
    assert err.strip().splitlines()[-1] == (
        "error: no store at `sqlite:///devicegate.db` "
        "(hint: pass --store URL or set DEVICEGATE_STORE)"
    )
    assert "no device is held" not in out
    assert list(tmp_path.iterdir()) == []  # no empty store left behind


@pytest.mark.parametrize("argv", READERS[:5], ids=lambda a: " ".join(a[:2]))
def test_the_store_comes_from_the_environment_alike(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, _, _ = held_store(tmp_path / "gate.db")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEVICEGATE_STORE", url)
    code, _, err = run(argv, capsys)
    assert "no store at" not in err and code == 0, err
    assert not (tmp_path / "devicegate.db").exists()


def test_show_by_any_identifier_explains_the_hold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _, ref = held_store(tmp_path / "gate.db")
    for name in ("ffee00112233", "activesync_id=FFEE00112233", ref):
        code, out, err = run(["devices", "show", name, "--store", url], capsys)
        assert code == 0, err
        assert f"device {ref}: Apple iOS iPhone14,2" in out
        assert "hold on email: HELD" in out
        assert "rule: spoofed-mail-clients" in out
        assert "reason: held for review by IT security" in out
        assert "set by forward-auth" in out and f"request of: {USER}" in out
        assert "user agent `Apple-iPhone14C2/2003.1.1`" in out
    code, out, _ = run(["devices", "show", ref, "--store", url, "--json"], capsys)
    shown = json.loads(out)
    (hold,) = shown["holds"]
    assert hold["rule"] == "spoofed-mail-clients" and hold["by"] == "forward-auth"
    assert hold["user"] == USER and hold["seen"]["device"]["model"] == "iPhone14,2"
    assert hold["since"].startswith(str(datetime.now(UTC).year))


def test_show_says_plainly_when_a_device_is_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _, _ = held_store(tmp_path / "gate.db")
    code, out, err = run(["devices", "show", "FFEE00", "--store", url], capsys)
    assert code == 1 and out == ""
    assert err.strip().startswith("error: no device known by `FFEE00`")


def test_show_finds_a_device_only_seen(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url, store, _ = held_store(tmp_path / "gate.db")
    store.write_sightings([sighting("i.petrov", "radius", {"mac": "F0-18-98-00-11-22"})])
    code, out, err = run(["devices", "show", "f0:18:98:00:11:22", "--store", url], capsys)
    assert code == 0, err
    assert "no hold and no verdict" in out and "i.petrov" in out and "via radius" in out


def test_release_by_any_identifier(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url, store, ref = held_store(tmp_path / "gate.db")
    code, out, err = run(["devices", "release", "ffee00112233", "--store", url], capsys)
    assert code == 0, err
    assert out.strip() == f"released {ref} (`ffee00112233`) (1 record)"
    assert store.device_state([("activesync_id", "FFEE00112233")]).held == frozenset()
    code, _, err = run(["devices", "release", "FFEE00112233", "--store", url], capsys)
    assert code == 1 and f"device {ref} (`FFEE00112233`) has no hold or verdict" in err
    code, _, err = run(["devices", "release", "FFEE00", "--store", url], capsys)
    assert code == 1 and "no held or judged device is known by `FFEE00`" in err


def test_an_identifier_of_two_devices_is_not_guessed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, store, ref = held_store(tmp_path / "gate.db")
    other = store.record_verdict(
        keys=[("serial", "FFEE00112233")],
        verdict="compromised",
        evidence=[],
        scan_id="s1",
        source="backup",
    )
    code, _, err = run(["devices", "release", "FFEE00112233", "--store", url], capsys)
    assert code == 1 and "names 2 devices" in err and ref in err and other in err
    assert store.device_state([("serial", "FFEE00112233")]).compromised  # nothing released
    code, out, _ = run(["devices", "release", "serial=FFEE00112233", "--store", url], capsys)
    assert code == 0 and other in out


def test_list_rows_say_rule_since_and_what_was_seen(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _, ref = held_store(tmp_path / "gate.db")
    code, out, err = run(["devices", "list", "--store", url], capsys)
    assert code == 0, err
    first, detail = out.splitlines()
    assert first.startswith(f"{ref}  {USER}  Apple iOS iPhone14,2  held: email")
    assert "email: rule spoofed-mail-clients since " in detail
    assert "(set by forward-auth" in detail
    assert "seen: Apple iOS iPhone14,2; user agent `Apple-iPhone14C2/2003.1.1`" in detail


def test_list_all_shows_every_device_the_store_knows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, store, ref = held_store(tmp_path / "gate.db")
    released = store.hold([("mac", "aa:bb:cc:00:00:01")], resource="wifi", rule="r", reason="x")
    store.release(released, by="ops")
    store.write_sightings(
        [
            sighting(USER, "forward-auth", {"user_agent": EAS.user_agent or ""}),
            sighting("i.petrov", "dovecot", {"imap_id": '"name" "iPhone Mail" "os" "iOS"'}),
            # the held iPhone, seen again: it is the held device, not a second one
            sighting(USER, "forward-auth", {"activesync_query": EAS.activesync_query or ""}),
        ]
    )
    code, out, _ = run(["devices", "list", "--store", url], capsys)
    assert code == 0 and released not in out and "i.petrov" not in out
    code, out, err = run(["devices", "list", "--all", "--store", url], capsys)
    assert code == 0, err
    assert ref in out and released in out and "released " in out and "by ops" in out
    assert "(seen only)  i.petrov  Apple iOS  not held  [no stable identifier]" in out
    assert out.count("activesync_id=FFEE00112233") == 1
    code, out, _ = run(["devices", "list", "--all", "--store", url, "--json"], capsys)
    listed = json.loads(out)["devices"]
    assert {d["device_ref"] for d in listed} == {ref, released, None}
    assert sum(d.get("seen_only", False) for d in listed) == 2


def test_client_text_cannot_steer_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'gate.db'}")
    hostile = Signals(user_agent="Evil\x1b[2J\x1b]0;owned\x07\x9b31m", mac="aa:bb:cc:00:00:02")
    profile = Identifier(EMPTY_INVENTORY).profile(hostile)
    store.hold(
        profile.keys,
        resource="email",
        rule="r",
        reason="x",
        seen=seen_json(hostile, profile),
    )
    store.write_sightings([sighting("x\x1b[31m", "radius", {"user_agent": "\x1b[2J"})])
    for argv in (["devices", "list", "--all"], ["devices", "show", "aa:bb:cc:00:00:02"]):
        code, out, err = run([*argv, "--store", f"sqlite:///{tmp_path / 'gate.db'}"], capsys)
        assert code == 0, err
        assert not any(ch in out for ch in "\x1b\x07\x9b"), out


CHECK = ["-p", POLICY, "-d", DIRECTORY, "-u", USER, "-r", "email", "--at", "2023-07-10T09:00"]
CHECK += ["--user-agent", EAS.user_agent or "", "--activesync-device-id", "ffee00112233"]


def test_check_and_explain_apply_the_stores_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, store, ref = held_store(tmp_path / "gate.db")
    code, out, _ = run(["check", *CHECK, "--json"], capsys)
    assert json.loads(out)["rule"] == "apple-wave-1"  # without a store: the policy alone
    code, out, _ = run(["check", *CHECK, "--json", "--store", url], capsys)
    assert code == 0 and json.loads(out)["rule"] == "builtin:quarantine-hold"
    code, out, _ = run(["check", *CHECK, "--store", url, "-q"], capsys)
    assert out.startswith("QUARANTINE by rule builtin:quarantine-hold")
    assert f"store: {ref} held on email: rule spoofed-mail-clients since " in out
    assert "(set by forward-auth, request of m.sokolova@minpromtorg.example)" in out
    code, out, _ = run(["explain", *CHECK, "--store", url, "-q"], capsys)
    assert out.splitlines()[-1].startswith("decision: quarantine by rule `builtin:quarantine-hold`")
    store.release(ref)
    store.record_verdict(
        keys=[("activesync_id", "FFEE00112233")],
        verdict="compromised",
        evidence=[{"indicator": "x"}],
        scan_id="scan-7",
        source="backup",
    )
    code, out, _ = run(["check", *CHECK, "--store", url, "-q"], capsys)
    assert out.startswith("QUARANTINE by rule builtin:compromised")
    assert "verdict compromised since" in out and "scan scan-7" in out
    code, out, _ = run(["explain", *CHECK, "-q"], capsys)  # no store: policy alone again
    assert "builtin:compromised" not in out


@pytest.mark.parametrize(
    "name", ["", "=", "mac=", "serial==x", "\x00\x1b", "é" * 3000, "A" * 100_000]
)
@pytest.mark.parametrize("command", ["show", "release"])
def test_hostile_identifiers_get_a_one_line_answer(
    name: str, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _, _ = held_store(tmp_path / "gate.db")
    code, out, err = run(["devices", command, name, "--store", url], capsys)
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
