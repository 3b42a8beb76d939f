"""One test per line of the decision semantics (docs/semantics.md)."""

from __future__ import annotations

from pathlib import Path

from devicegate.model import Action, Conflict, DeviceState, Trust
from devicegate.policy import decide, explain
from devicegate.policy.engine import COMPROMISED_RULE, HELD_RULE, UNKNOWN_USER_RULE

from .helpers import profile, request, rule, snapshot

IPHONE = profile("Apple", "iOS")
ANDROID = profile("Samsung", "Android")
UNKNOWN = profile(None, None)


def test_1_compromised_device_is_quarantined_everywhere_despite_exception(tmp_path: Path) -> None:
    snap = snapshot(
        tmp_path,
        {
            "rules": [rule()],
            "exceptions": [
                {"user": "alice", "rules": ["ban"], "until": "2030-01-01", "reason": "vip"}
            ],
        },
    )
    state = DeviceState(compromised=True, verdict="compromised")
    for resource in ("email", "web", "vpn", "wifi", "messaging", "files"):
        decision = decide(snap, request("alice", resource, "2023-08-01", ANDROID), state)
        assert decision.action is Action.QUARANTINE
        assert decision.rule == COMPROMISED_RULE
    # the same exception does lift the ban for a device that is not compromised
    assert decide(snap, request("alice", "email", "2023-08-01", IPHONE)).action is Action.ALLOW


def test_1b_operator_hold_keeps_device_quarantined_until_released(tmp_path: Path) -> None:
    snap = snapshot(tmp_path, {"rules": [rule()]})
    held = DeviceState(held=frozenset({"email"}))
    assert decide(snap, request("erin", "email", "2023-08-01", ANDROID), held).rule == HELD_RULE
    assert decide(snap, request("erin", "web", "2023-08-01", ANDROID), held).action is Action.ALLOW


def test_2_rule_applies_only_in_scope_resource_window_and_device(tmp_path: Path) -> None:
    snap = snapshot(
        tmp_path,
        {"rules": [rule(scope={"units": ["gov/minfin"]}, resources=["email"], until="2024-01-01")]},
    )
    hit = request("alice", "email", "2023-08-01", IPHONE)
    assert decide(snap, hit).action is Action.BLOCK
    assert decide(snap, request("carol", "email", "2023-08-01", IPHONE)).action is Action.ALLOW
    assert decide(snap, request("alice", "web", "2023-08-01", IPHONE)).action is Action.ALLOW
    assert (
        decide(snap, request("alice", "email", "2023-07-16T23:59", IPHONE)).action is Action.ALLOW
    )
    assert (
        decide(snap, request("alice", "email", "2023-07-17T00:00", IPHONE)).action is Action.BLOCK
    )
    assert (
        decide(snap, request("alice", "email", "2024-01-01T00:00", IPHONE)).action is Action.ALLOW
    )
    assert decide(snap, request("alice", "email", "2023-08-01", ANDROID)).action is Action.ALLOW


def test_3_notice_period_warns_naming_the_date(tmp_path: Path) -> None:
    snap = snapshot(tmp_path, {"rules": [rule(notice="14d")]})
    before_notice = decide(snap, request("alice", "email", "2023-07-02T23:59", IPHONE))
    assert before_notice.action is Action.ALLOW
    warned = decide(snap, request("alice", "email", "2023-07-03T00:00", IPHONE))
    assert warned.action is Action.WARN
    assert warned.rule == "ban"
    assert "2023-07-17" in warned.message
    assert (
        warned.effective_from is not None
        and warned.effective_from.date().isoformat() == "2023-07-17"
    )
    assert decide(snap, request("alice", "email", "2023-07-17", IPHONE)).action is Action.BLOCK


def test_4_exception_lifts_named_rules_until_its_date(tmp_path: Path) -> None:
    snap = snapshot(
        tmp_path,
        {
            "rules": [rule(), rule(id="other", resources=["email"], effect="warn")],
            "exceptions": [
                {
                    "user": "alice@minfin.example",
                    "rules": ["ban"],
                    "until": "2023-09-01",
                    "reason": "replacement on order",
                    "approver": "ciso",
                },
                {"device": "DEV-1", "rules": ["ban"], "until": "2023-09-01", "reason": "lab"},
            ],
        },
    )
    lifted = decide(snap, request("alice", "email", "2023-08-01", IPHONE))
    assert lifted.action is Action.WARN and lifted.rule == "other"
    assert lifted.excepted == ("ban",)
    assert decide(snap, request("alice", "web", "2023-08-01", IPHONE)).action is Action.ALLOW
    assert decide(snap, request("alice", "web", "2023-09-01", IPHONE)).action is Action.BLOCK
    assert decide(snap, request("carol", "web", "2023-08-01", IPHONE)).action is Action.BLOCK
    by_device = profile("Apple", "iOS", device_id="DEV-1")
    assert decide(snap, request("carol", "web", "2023-08-01", by_device)).action is Action.ALLOW


def test_5_deeper_unit_overrides_broader_then_severity(tmp_path: Path) -> None:
    snap = snapshot(
        tmp_path,
        {
            "rules": [
                rule(id="gov-ban"),
                rule(id="lab-allow", scope={"units": ["gov/mintsifry/ios-lab"]}, effect="allow"),
                rule(id="gov-warn", effect="warn"),
            ]
        },
    )
    lab = decide(snap, request("bob", "web", "2023-08-01", IPHONE))
    assert (lab.action, lab.rule) == (Action.ALLOW, "lab-allow")
    other = decide(snap, request("carol", "web", "2023-08-01", IPHONE))
    assert (other.action, other.rule) == (Action.BLOCK, "gov-ban")
    assert [h.rule for h in other.matched] == ["gov-ban", "gov-warn"]


def test_5b_user_named_in_scope_is_most_specific(tmp_path: Path) -> None:
    snap = snapshot(
        tmp_path,
        {
            "rules": [
                rule(id="lab-allow", scope={"units": ["gov/mintsifry/ios-lab"]}, effect="allow"),
                rule(id="bob-ban", scope={"users": ["bob"]}),
            ]
        },
    )
    assert decide(snap, request("bob", "web", "2023-08-01", IPHONE)).rule == "bob-ban"


def test_6_report_only_never_changes_the_action(tmp_path: Path) -> None:
    snap = snapshot(tmp_path, {"rules": [rule(mode="report-only")]})
    decision = decide(snap, request("alice", "email", "2023-08-01", IPHONE))
    assert decision.action is Action.ALLOW and decision.rule is None
    assert [(h.rule, h.action) for h in decision.report_only] == [("ban", Action.BLOCK)]


def test_7_unidentified_device_follows_on_unidentified(tmp_path: Path) -> None:
    deny = snapshot(tmp_path, {"rules": [rule()]})
    assert decide(deny, request("alice", "email", "2023-08-01", UNKNOWN)).action is Action.ALLOW
    strict = snapshot(tmp_path, {"rules": [rule(on_unidentified="block")]})
    assert decide(strict, request("alice", "email", "2023-08-01", UNKNOWN)).action is Action.BLOCK
    warn = snapshot(tmp_path, {"rules": [rule(on_unidentified="warn")]})
    assert decide(warn, request("alice", "email", "2023-08-01", UNKNOWN)).action is Action.WARN
    allow_list = snapshot(
        tmp_path,
        {
            "rules": [
                rule(when=None, only={"platform": ["Aurora", "Linux"]}, scope={"units": ["rostec"]})
            ]
        },
    )
    assert decide(allow_list, request("dave", "web", "2023-08-01", UNKNOWN)).action is Action.BLOCK
    aurora = profile("OMP", "Aurora")
    assert decide(allow_list, request("dave", "web", "2023-08-01", aurora)).action is Action.ALLOW
    assert decide(allow_list, request("dave", "web", "2023-08-01", ANDROID)).action is Action.BLOCK


def test_8_conflicting_signals_deny_on_any_allow_list_needs_all(tmp_path: Path) -> None:
    conflict = (Conflict("vendor", (("user_agent", "Samsung"), ("activesync", "Apple"))),)
    spoofed = profile(
        "Samsung",
        "Android",
        more={"vendor": ("Samsung", "Apple"), "platform": ("Android", "iOS")},
        conflicts=conflict,
    )
    deny = snapshot(tmp_path, {"rules": [rule()]})
    decision = decide(deny, request("alice", "email", "2023-08-01", spoofed))
    assert decision.action is Action.BLOCK
    assert decision.spoofing_suspected
    assert any("spoofing suspected" in r for r in decision.reasons)
    allow_list = snapshot(tmp_path, {"rules": [rule(when=None, only={"platform": ["Android"]})]})
    assert decide(allow_list, request("alice", "web", "2023-08-01", spoofed)).action is Action.BLOCK
    assert decide(allow_list, request("alice", "web", "2023-08-01", ANDROID)).action is Action.ALLOW
    on_spoof = snapshot(
        tmp_path, {"rules": [rule(id="q", when={"spoofing_suspected": True}, effect="quarantine")]}
    )
    assert (
        decide(on_spoof, request("alice", "email", "2023-08-01", spoofed)).action
        is Action.QUARANTINE
    )
    assert decide(on_spoof, request("alice", "email", "2023-08-01", ANDROID)).action is Action.ALLOW


def test_9_default_is_allow_unless_the_resource_says_otherwise(tmp_path: Path) -> None:
    snap = snapshot(
        tmp_path,
        {"resources": {"vpn": {"default": "block"}}, "rules": [rule(scope={"units": ["rostec"]})]},
    )
    assert decide(snap, request("alice", "web", "2023-08-01", IPHONE)).action is Action.ALLOW
    blocked = decide(snap, request("alice", "vpn", "2023-08-01", ANDROID))
    assert blocked.action is Action.BLOCK and blocked.rule is None


def test_unknown_user_follows_policy_setting(tmp_path: Path) -> None:
    snap = snapshot(tmp_path, {"rules": [rule()]})
    decision = decide(snap, request("mallory", "email", "2023-08-01", IPHONE))
    assert (decision.action, decision.rule) == (Action.ALLOW, UNKNOWN_USER_RULE)
    strict = snapshot(tmp_path, {"unknown_user": "block", "rules": [rule()]})
    assert decide(strict, request("mallory", "email", "2023-08-01", ANDROID)).action is Action.BLOCK


def test_conditions_model_os_version_managed_attested(tmp_path: Path) -> None:
    snap = snapshot(
        tmp_path,
        {
            "rules": [
                rule(
                    id="old-ios",
                    when={"platform": ["iOS"], "os_version": "<16.5", "model": ["iPhone1[0-2]*"]},
                ),
                rule(
                    id="managed-only",
                    when=None,
                    only={"managed": True, "attested": True},
                    resources=["vpn"],
                ),
            ]
        },
    )
    old = profile("Apple", "iOS", more={"os_version": ("16.4.1",), "model": ("iPhone12,1",)})
    new = profile("Apple", "iOS", more={"os_version": ("16.6",), "model": ("iPhone12,1",)})
    assert decide(snap, request("alice", "web", "2023-08-01", old)).rule == "old-ios"
    assert decide(snap, request("alice", "web", "2023-08-01", new)).action is Action.ALLOW
    mdm = profile("Samsung", "Android", managed=True, trust=Trust.ATTESTED)
    assert decide(snap, request("alice", "vpn", "2023-08-01", mdm)).action is Action.ALLOW
    assert decide(snap, request("alice", "vpn", "2023-08-01", ANDROID)).rule == "managed-only"


def test_explain_lists_every_rule_and_the_decision(tmp_path: Path) -> None:
    snap = snapshot(tmp_path, {"rules": [rule(), rule(id="mail", scope={"units": ["rostec"]})]})
    lines = explain(snap, request("alice", "email", "2023-08-01", IPHONE))
    text = "\n".join(lines)
    assert "user `alice` in unit `gov/minfin/budget`" in text
    assert "rule `mail`: user not in scope" in text
    assert lines[-1].startswith("decision: block by rule `ban`")
