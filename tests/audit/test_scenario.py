"""The bundled scenario: a month of sample logs around wave 1, audited end to end."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from devicegate.audit import AuditOptions, read_events, run_audit
from devicegate.directory import load_directory
from devicegate.inventory import load_inventory
from devicegate.policy import compile_policy, load_policy

HERE = Path(__file__).resolve().parents[2] / "examples" / "apple-ban"


@pytest.fixture(scope="module")
def audited(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, object], list[dict[str, object]]]:
    snapshot = compile_policy(
        load_policy([HERE / "policy.yaml"]),
        load_directory(HERE / "directory.csv"),
        load_inventory(HERE / "devices.csv"),
    )
    out = tmp_path_factory.mktemp("scenario")
    result = run_audit(snapshot, AuditOptions(logs=[HERE / "logs"], out=out))
    return result.summary, read_events(out).to_pylist()


def test_every_format_contributes(
    audited: tuple[dict[str, object], list[dict[str, object]]],
) -> None:
    summary, _ = audited
    formats = {f["format"] for f in summary["files"]}  # type: ignore[attr-defined]
    assert formats == {"nginx", "w3c", "dovecot", "postfix", "radius"}
    assert all(f["events"] > 0 for f in summary["files"])  # type: ignore[attr-defined]
    assert summary["bad_lines"] == 1  # the TLS garbage line in the rotated nginx log


def test_wave_one_as_of_each_events_time(
    audited: tuple[dict[str, object], list[dict[str, object]]],
) -> None:
    _, events = audited
    wave1 = ("gov/minpromtorg", "gov/mintsifry/platforms", "rostec")
    before = [e for e in events if e["day"] < date(2023, 7, 17)]  # type: ignore[operator]
    after = [e for e in events if e["day"] >= date(2023, 7, 17)]  # type: ignore[operator]
    assert not any(e["violation"] for e in before)
    assert any(e["action"] == "warn" and e["rule"] == "apple-wave-1" for e in before)
    late = [e for e in after if e["violation"] and str(e["unit"]).startswith(wave1)]
    assert late and all(e["vendor"] == "Apple" for e in late)
    # wave 2 starts on 14 August: finance has warnings, never a violation, this month
    assert not any(e["violation"] for e in events if str(e["unit"]).startswith("gov/minfin"))
    # the iOS lab keeps its iPhones once its allow rule starts
    assert not any(e["violation"] for e in events if e["unit"] == "gov/mintsifry/ios-lab")


def test_the_ios_lab_is_not_warned_of_wave_one(
    audited: tuple[dict[str, object], list[dict[str, object]]],
) -> None:
    """Issue 16 finding 3 (docs/semantics.md rule 3): the lab's allow takes force on the
    day wave 1 does, so its Apple devices are never warned, and the unit counts no
    warnings — while the rest of the ministry is warned before the date."""
    summary, events = audited
    lab = [e for e in events if e["unit"] == "gov/mintsifry/ios-lab"]
    early = [e for e in lab if e["day"] < date(2023, 7, 17) and e["vendor"] == "Apple"]  # type: ignore[operator]
    assert early, "the sample logs must hold lab Apple events in the notice period"
    assert not any(e["action"] == "warn" for e in lab)
    assert summary["by_unit"]["gov/mintsifry/ios-lab"]["warned"] == 0  # type: ignore[index]
    platforms = summary["by_unit"]["gov/mintsifry/platforms"]  # type: ignore[index]
    assert platforms["warned"] > 0


def test_exceptions_expire(audited: tuple[dict[str, object], list[dict[str, object]]]) -> None:
    _, events = audited
    orlov = [e for e in events if e["user"] == "a.orlov@rostec.example" and e["vendor"] == "Apple"]
    assert any(e["excepted"] == "apple-wave-1" for e in orlov)  # excepted until 15 August
    assert not any(e["violation"] for e in orlov)
