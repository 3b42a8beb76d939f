"""`devicegate impact` lists every rule, saying "matches nobody" where it does: a rule that
reaches no device must be seen, not vanish from the list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer.main

from devicegate.cli import app
from tests.cli.test_cli import DIRECTORY, EXAMPLE, POLICY, run

DEVICES = str(EXAMPLE / "devices.csv")
RULES = [
    "apple-wave-1",
    "ios-lab",
    "apple-wave-2-email",
    "apple-wave-2",
    "spoofed-mail-clients",
    "other-bodies-preview",
    "minfin-managed-mail-preview",
    "cii-domestic-only",
]


def impact(policy: str, capsys: pytest.CaptureFixture[str], *more: str) -> tuple[int, str, str]:
    argv = ["impact", "-p", policy, "-d", DIRECTORY, "--devices", DEVICES, "-q"]
    return run([*argv, "--at", "2023-07-03", *more], capsys)


def test_every_rule_is_listed_in_policy_order(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = impact(POLICY, capsys, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert [r["rule"] for r in report["rules"]] == RULES
    by_id = {r["rule"]: r for r in report["rules"]}
    lab = by_id["ios-lab"]
    assert lab["effect"] == "allow" and lab["devices"] > 0
    assert {row["status"] for row in lab["rows"]} == {"allow"}
    assert {row["unit"] for row in lab["rows"]} == {"gov/mintsifry/ios-lab"}
    spoof = by_id["spoofed-mail-clients"]
    assert spoof["devices"] == 0 and spoof["rows"] == []
    assert spoof["users_in_scope"] > 0
    assert spoof["note"].startswith("matches nobody")
    wave1 = by_id["apple-wave-1"]
    assert wave1["note"] is None and wave1["devices"] == len(wave1["rows"]) > 900


def test_a_rule_switched_off_by_a_typo_says_it_matches_nobody(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = Path(POLICY).read_text(encoding="utf-8")
    wave2 = text.index("  - id: apple-wave-2\n")
    typo = text[:wave2] + text[wave2:].replace("vendor: [Apple]", "vendor: [Appel]", 1)
    policy = tmp_path / "policy.yaml"
    policy.write_text(typo, encoding="utf-8")
    code, out, err = impact(str(policy), capsys)
    assert code == 0, err
    flat = " ".join(out.split())
    assert "apple-wave-2 from 2023-09-04 (block): matches nobody" in flat
    assert "apple-wave-2-email from 2023-08-14 (block): 530 users, 608 devices" in flat


def test_directory_is_a_required_option_and_help_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    command = typer.main.get_command(app)
    impact_cmd = command.commands["impact"]  # type: ignore[attr-defined]
    option = next(p for p in impact_cmd.params if p.name == "directory")
    assert option.required
    code, _, err = run(["impact", "-p", POLICY, "--devices", DEVICES], capsys)
    assert code == 2 and "Missing option '--directory'" in err
