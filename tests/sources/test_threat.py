"""`mdm_threat`: the jailbreak or threat state an MDM reports, as attested evidence a rule
names — never a quarantine by itself."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from devicegate.directory import Directory
from devicegate.inventory import load_inventory
from devicegate.model import Action, Request, Signals
from devicegate.policy import compile_policy, decide, load_policy
from tests.policy.helpers import USERS, rule, write_policy

DEVICES = """\
device_id,user,vendor,platform,model,mdm_id,mdm_threat,compliant
d-broken,alice,Google,Android,Pixel 7,mdm-broken,rooted,false
d-clean,alice,Google,Android,Pixel 7,mdm-clean,none,true
d-silent,alice,Google,Android,Pixel 7,mdm-silent,,
"""


def _decide(tmp_path: Path, policy: dict[str, object], mdm_id: str) -> Action:
    (tmp_path / "devices.csv").write_text(DEVICES)
    inventory = load_inventory(tmp_path / "devices.csv")
    snapshot = compile_policy(
        load_policy([write_policy(tmp_path, policy)]), Directory(USERS), inventory
    )
    at = datetime(2023, 8, 1, 9, tzinfo=UTC)
    request = Request("alice", "email", at, Signals(mdm_id=mdm_id))
    return decide(snapshot, request).action


def test_a_rule_on_mdm_threat_quarantines_only_what_the_mdm_reports(tmp_path: Path) -> None:
    policy = {"rules": [rule(id="threat", when={"mdm_threat": True}, effect="quarantine")]}
    assert _decide(tmp_path, policy, "mdm-broken") is Action.QUARANTINE
    assert _decide(tmp_path, policy, "mdm-clean") is Action.ALLOW
    # the MDM says nothing: unknown, so the rule's on_unidentified decides (allow by default)
    assert _decide(tmp_path, policy, "mdm-silent") is Action.ALLOW
    strict = {
        "rules": [
            rule(id="threat", when={"mdm_threat": True}, effect="quarantine",
                 on_unidentified="block")
        ]
    }  # fmt: skip
    assert _decide(tmp_path, strict, "mdm-silent") is Action.BLOCK


def test_a_reported_threat_changes_nothing_without_a_rule(tmp_path: Path) -> None:
    policy = {"rules": [rule(id="ban")]}  # Apple only
    assert _decide(tmp_path, policy, "mdm-broken") is Action.ALLOW


def test_the_csv_columns_reach_the_record(tmp_path: Path) -> None:
    (tmp_path / "devices.csv").write_text(DEVICES)
    inventory = load_inventory(tmp_path / "devices.csv")
    broken = inventory.lookup("mdm_id", "mdm-broken")
    silent = inventory.lookup("mdm_id", "mdm-silent")
    assert broken is not None and (broken.mdm_threat, broken.compliant) == ("rooted", False)
    assert broken.threatened is True
    assert silent is not None and silent.threatened is None and silent.compliant is None
