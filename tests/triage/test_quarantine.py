"""`--quarantine`: the verdict reaches the store, and the engine then refuses the device
for every resource, whatever exception its user holds."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

import pytest
import yaml
from typer.testing import CliRunner, Result

from devicegate.cli.triage_cmd import app
from devicegate.errors import StoreError
from devicegate.triage import TriageError, Verdict
from devicegate.triage.quarantine import record, redact

from .builder import SERIAL, UDID
from .scenarios import PASSWORD

Make = Callable[[str], Path]
ENV = {"BACKUP_PW": PASSWORD}


def _scan_triangulation(make: Make, *options: str) -> Result:
    """`triage scan` of the Triangulation backup, its password from the environment."""
    return CliRunner().invoke(
        app,
        ["scan", str(make("triangulation")), "--password-env", "BACKUP_PW", *options],
        env=ENV,
    )


class FakeStore:
    calls: ClassVar[list[dict[str, object]]] = []

    def record_verdict(
        self,
        *,
        keys: Sequence[tuple[str, str]],
        verdict: str,
        evidence: list[dict[str, object]],
        scan_id: str,
        source: str,
    ) -> str:
        FakeStore.calls.append(
            {"keys": list(keys), "verdict": verdict, "evidence": evidence, "scan_id": scan_id}
        )
        return "dev-1"


@pytest.fixture
def fake_store(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    FakeStore.calls = []
    module = types.ModuleType("devicegate.store")
    module.open_store = lambda url: FakeStore()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "devicegate.store", module)
    return FakeStore.calls


def test_quarantine_records_keys_verdict_and_evidence(
    make: Make, fake_store: list[dict[str, object]]
) -> None:
    result = _scan_triangulation(
        make, "--json", "--store", "sqlite:///ignored.db", "--quarantine", "--device", "dev-42"
    )
    assert result.exit_code == 5, result.stderr
    (call,) = fake_store
    assert call["keys"] == [("serial", SERIAL), ("udid", UDID), ("device_id", "dev-42")]
    assert call["verdict"] == "compromised"
    evidence = call["evidence"]
    assert isinstance(evidence, list)
    assert any(item.get("kind") == "triangulation-exact" for item in evidence)
    summary = evidence[-1]
    assert (
        summary["kind"] == "scan-summary"
        and "operation_triangulation.stix2" in summary["indicators"]
    )


def test_backup_without_identity_needs_device(
    tmp_path: Path, fake_store: list[dict[str, object]]
) -> None:
    from devicegate.triage import load_indicators, scan_backup

    from .scenarios import base_builder

    b = base_builder(tmp_path / "b", password=PASSWORD)
    b.serial = b.udid = None
    report = scan_backup(b.write(), load_indicators(), password=lambda: PASSWORD)
    with pytest.raises(TriageError, match="no serial or UDID") as caught:
        record(report, "sqlite:///x.db")
    assert "--device" in (caught.value.hint or "")
    assert record(report, "sqlite:///x.db", device_ref="dev-7") == "dev-1"


def test_store_failure_is_an_error_without_the_password(
    make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = types.ModuleType("devicegate.store")

    def broken(url: str) -> object:
        raise RuntimeError("connection refused")

    module.open_store = broken  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "devicegate.store", module)
    result = _scan_triangulation(
        make, "--store", "postgresql://gate:s3cret@db.example.org/gate", "--quarantine"
    )
    assert result.exit_code == 1
    assert "s3cret" not in result.stderr and "connection refused" in result.stderr
    assert "verdict: compromised" in result.stdout  # the verdict is shown all the same
    assert redact("postgresql://u:p@h/d") == "postgresql://u:***@h/d"
    assert isinstance(StoreError("x"), Exception)


def test_quarantined_device_is_refused_everywhere_despite_exception(
    make: Make, tmp_path: Path
) -> None:
    """End to end: triage --quarantine → store → engine, with the user's exception active."""
    import devicegate.store as store_module
    from devicegate.directory import Directory, User
    from devicegate.model import Action, DeviceKind, DeviceProfile, Request, Trust
    from devicegate.policy import compile_policy, decide, load_policy

    url = f"sqlite:///{tmp_path / 'gate.db'}"
    store = store_module.open_store(url)
    # the inventory links the phone's serial to the ActiveSync DeviceId the mail server sees
    with store.engine.begin() as conn:
        store.ensure_device(conn, [("serial", SERIAL), ("activesync_id", "ABCDEF0123456789")])

    result = _scan_triangulation(make, "--store", url, "--quarantine")
    assert result.exit_code == 5, result.stderr
    state = store.device_state([("activesync_id", "ABCDEF0123456789")])
    assert state.compromised

    policy = tmp_path / "policy.yaml"
    policy.write_text(
        yaml.safe_dump(
            {
                "timezone": "Europe/Moscow",
                "units": ["gov/minfin/budget"],
                "rules": [
                    {
                        "id": "ban",
                        "scope": {"units": ["gov"]},
                        "when": {"vendor": ["Apple"]},
                        "resources": ["all"],
                        "from": "2023-07-17",
                        "effect": "block",
                        "message": "no Apple devices for work",
                    }
                ],
                "exceptions": [
                    {"user": "alice", "rules": ["ban"], "until": "2030-01-01", "reason": "vip"}
                ],
            }
        )
    )
    snap = compile_policy(
        load_policy([policy]), Directory([User("alice", "gov/minfin/budget", frozenset())])
    )
    iphone = DeviceProfile(
        vendor="Apple",
        platform="iOS",
        kind=DeviceKind.HANDSET,
        trust=Trust.REPORTED,
        claims=(("vendor", ("Apple",)), ("platform", ("iOS",))),
    )
    from datetime import UTC, datetime

    when = datetime(2023, 8, 1, 9, tzinfo=UTC)
    for resource in ("email", "web", "vpn", "wifi", "messaging", "files"):
        decision = decide(snap, Request("alice", resource, when, profile=iphone), state)
        assert decision.action is Action.QUARANTINE, resource
    # the exception still lifts the ban for the same phone before it was found compromised
    assert decide(snap, Request("alice", "email", when, profile=iphone)).action is Action.ALLOW


def test_verdict_enum_is_what_the_store_expects() -> None:
    from devicegate.store import COMPROMISED

    assert Verdict.COMPROMISED.value == COMPROMISED


DEVICEGATE = str(Path(sys.executable).with_name("devicegate"))


@pytest.mark.parametrize(
    ("command", "streams"),
    [
        ("scan", "stdout"),
        ("scan --json", "stdout"),
        ("scan", "stdout+stderr"),
        ("scan-many", "stdout"),
        ("scan-many", "stdout+stderr"),
    ],
)
def test_a_reader_that_leaves_never_costs_the_verdict(
    make: Make, tmp_path: Path, command: str, streams: str
) -> None:
    """`devicegate triage scan … --quarantine | head -1`: through the real CLI, with a real
    pipe whose reader is gone before the first byte, the verdict is stored all the same and
    the exit code still says `compromised` — no traceback, no exit 0."""
    import os
    import subprocess

    import devicegate.store as store_module

    url = f"sqlite:///{tmp_path / 'gate.db'}"
    backup = make("triangulation")
    name, *flags = command.split()
    target = str(backup.parent) if name == "scan-many" else str(backup)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone: every write to the pipe fails with EPIPE
    argv = [DEVICEGATE, "triage", name, target, *flags, "--password-env", "BACKUP_PW"]
    try:
        done = subprocess.run(
            [*argv, "--store", url, "--quarantine"],
            stdout=write_end,
            stderr=write_end if streams == "stdout+stderr" else subprocess.PIPE,
            env={**os.environ, **ENV},
            timeout=300,
            check=False,
        )
    finally:
        os.close(write_end)
    stderr = (done.stderr or b"").decode()
    assert done.returncode == 5, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    store = store_module.open_store(url)
    assert store.device_state([("serial", SERIAL)]).compromised
