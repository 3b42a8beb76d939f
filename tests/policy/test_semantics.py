"""One test per line of the decision semantics (docs/semantics.md)."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devicegate.model import Action, Conflict, Decision, DeviceState, Request, Signals, Trust
from devicegate.policy import decide, explain
from devicegate.policy.engine import COMPROMISED_RULE, HELD_RULE, UNKNOWN_USER_RULE

from .helpers import USERS, at, exception, profile, request, rule, snapshot
from .test_properties import PROFILES, policies, requests
from .test_properties import UNITS as PROPERTY_UNITS

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
        {"rules": [rule(scope={"units": ["gov/minfin"]}, resources=["email"], until="2023-12-31")]},
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
    # a date-only `until` includes that whole day: the window ends at the next midnight
    assert (
        decide(snap, request("alice", "email", "2023-12-31T23:59", IPHONE)).action is Action.BLOCK
    )
    assert (
        decide(snap, request("alice", "email", "2024-01-01T00:00", IPHONE)).action is Action.ALLOW
    )
    assert decide(snap, request("alice", "email", "2023-08-01", ANDROID)).action is Action.ALLOW


def test_2_date_only_until_includes_the_whole_day_a_time_is_an_instant(tmp_path: Path) -> None:
    """docs/semantics.md rule 2 (and docs/policy.md): a date-only `until`, of a rule or an
    exception, ends at the next local midnight; with a time it is that instant."""
    snap = snapshot(
        tmp_path,
        {
            "rules": [
                rule(until="2023-08-31", resources=["web"]),
                rule(id="mail", resources=["email"]),
            ],
            "exceptions": [
                {"user": "alice", "rules": ["mail"], "until": "2023-07-31", "reason": "x"},
                {"user": "carol", "rules": ["mail"], "until": "2023-07-31T00:00", "reason": "x"},
            ],
        },
    )
    assert decide(snap, request("erin", "web", "2023-08-31T23:59", IPHONE)).action is Action.BLOCK
    assert decide(snap, request("erin", "web", "2023-09-01T00:00", IPHONE)).action is Action.ALLOW
    assert decide(snap, request("alice", "email", "2023-07-31T18:00", IPHONE)).rule is None
    assert decide(snap, request("alice", "email", "2023-08-01", IPHONE)).rule == "mail"
    assert decide(snap, request("carol", "email", "2023-07-31T00:00", IPHONE)).rule == "mail"
    instant = snapshot(tmp_path, {"rules": [rule(until="2023-08-31T00:00")]})
    assert decide(instant, request("erin", "web", "2023-08-31", IPHONE)).action is Action.ALLOW
    assert decide(instant, request("erin", "web", "2023-08-30T23:59", IPHONE)).action is (
        Action.BLOCK
    )


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


def test_3_no_warning_when_a_deeper_allow_starts_the_same_day(tmp_path: Path) -> None:
    """docs/semantics.md rule 3: a rule warns only when the same request, at the moment the
    rule takes force, would get that rule's effect (the bundled iOS lab, issue 16 finding 3)."""
    lab = {"id": "lab-allow", "scope": {"units": ["gov/mintsifry/ios-lab"]}, "effect": "allow"}
    snap = snapshot(tmp_path, {"rules": [rule(notice="14d"), rule(**lab)]})
    lab_member = decide(snap, request("bob", "web", "2023-07-10", IPHONE))
    assert (lab_member.action, lab_member.rule, lab_member.message) == (Action.ALLOW, None, "")
    assert lab_member.effective_from is None
    assert any("no warning" in r and "lab-allow" in r for r in lab_member.reasons)
    assert decide(snap, request("carol", "web", "2023-07-10", IPHONE)).action is Action.WARN
    # an allow that starts later leaves days of ban in between: those are announced
    later = snapshot(
        tmp_path, {"rules": [rule(notice="14d"), rule(**lab, **{"from": "2023-07-20"})]}
    )
    warned = decide(later, request("bob", "web", "2023-07-10", IPHONE))
    assert (warned.action, warned.rule) == (Action.WARN, "ban")
    # an exception that will cover the start: nothing to announce to that user
    covered = snapshot(
        tmp_path,
        {
            "rules": [rule(notice="14d")],
            "exceptions": [exception(**{"from": "2023-07-17", "until": "2023-12-31"})],
        },
    )
    assert decide(covered, request("alice", "web", "2023-07-10", IPHONE)).action is Action.ALLOW
    assert decide(covered, request("carol", "web", "2023-07-10", IPHONE)).action is Action.WARN


def test_3_a_long_chain_of_announcements(tmp_path: Path) -> None:
    """docs/semantics.md rule 3 checks each announcement against the plan of its moment: with
    a wave a day, each in notice when the one before starts, that is a chain as long as the
    policy — planned without recursion, so no length of policy breaks `decide`."""
    first = date(2023, 1, 1)
    waves = [
        rule(id=f"wave-{n}", notice="2d", **{"from": (first + timedelta(days=n)).isoformat()})
        for n in range(1, 1100)
    ]
    snap = snapshot(tmp_path, {"rules": waves})
    warned = decide(snap, request("alice", "web", "2023-01-01T12:00", IPHONE))
    assert (warned.action, warned.rule) == (Action.WARN, "wave-1")
    assert decide(snap, request("alice", "web", "2023-06-01", IPHONE)).action is Action.BLOCK


def test_3_a_notice_never_softens_a_default_block(tmp_path: Path) -> None:
    """docs/semantics.md rules 3 and 9: an announcement is a warning in place of an allow; it
    never lets through a request the resource's default refuses."""
    snap = snapshot(
        tmp_path, {"resources": {"vpn": {"default": "block"}}, "rules": [rule(notice="14d")]}
    )
    during = decide(snap, request("alice", "vpn", "2023-07-10", IPHONE))
    assert (during.action, during.rule) == (Action.BLOCK, None)
    assert decide(snap, request("alice", "web", "2023-07-10", IPHONE)).action is Action.WARN


def test_3_exception_in_its_last_days_warns_naming_its_end(tmp_path: Path) -> None:
    """docs/semantics.md rule 3: an exception in its last days (its own `notice`, default the
    rule's) yields `warn` naming its end (issue 16 finding 4)."""
    exc = exception()
    snap = snapshot(tmp_path, {"rules": [rule(notice="14d")], "exceptions": [exc]})
    early = decide(snap, request("alice", "web", "2023-08-10", IPHONE))
    assert (early.action, early.excepted) == (Action.ALLOW, ("ban",))
    for when in ("2023-08-19T00:00", "2023-08-20", "2023-09-01T23:59"):
        warned = decide(snap, request("alice", "web", when, IPHONE))
        assert (warned.action, warned.rule, warned.excepted) == (Action.WARN, "ban", ("ban",))
        assert "2023-09-01" in warned.message and "no Apple devices for work" in warned.message
        assert warned.effective_from == at("2023-09-02T00:00")
    assert decide(snap, request("alice", "web", "2023-08-18T23:59", IPHONE)).action is Action.ALLOW
    assert decide(snap, request("alice", "web", "2023-09-02", IPHONE)).action is Action.BLOCK
    assert decide(snap, request("alice", "web", "2023-08-20", ANDROID)).action is Action.ALLOW
    # the exception's own notice overrides the rule's
    own = snapshot(
        tmp_path, {"rules": [rule(notice="14d")], "exceptions": [{**exc, "notice": "3d"}]}
    )
    assert decide(own, request("alice", "web", "2023-08-20", IPHONE)).action is Action.ALLOW
    assert decide(own, request("alice", "web", "2023-08-30", IPHONE)).action is Action.WARN
    # a device exception warns the same way, on that device only
    by_device = snapshot(
        tmp_path,
        {
            "rules": [rule(notice="14d")],
            "exceptions": [exception(user=None, device="DEV-1", until="2023-07-31")],
        },
    )
    phone = profile("Apple", "iOS", device_id="DEV-1")
    assert decide(by_device, request("carol", "web", "2023-07-31T18:00", phone)).action is (
        Action.WARN
    )
    assert decide(by_device, request("carol", "web", "2023-08-01", phone)).action is Action.BLOCK


def test_3_exception_end_warns_only_when_the_rule_then_applies(tmp_path: Path) -> None:
    """docs/semantics.md rule 3: as for a rule's notice, an ending exception warns only when
    the request, once it has ended, gets the lifted rule's effect."""
    exc = exception(user="bob")
    lab = {
        "id": "lab-allow",
        "scope": {"units": ["gov/mintsifry/ios-lab"]},
        "effect": "allow",
        "from": "2023-09-02",
    }
    snap = snapshot(tmp_path, {"rules": [rule(notice="14d"), rule(**lab)], "exceptions": [exc]})
    assert decide(snap, request("bob", "web", "2023-08-25", IPHONE)).action is Action.ALLOW
    renewed = {**exc, "from": "2023-09-02", "until": "2023-10-01"}
    snap = snapshot(tmp_path, {"rules": [rule(notice="14d")], "exceptions": [exc, renewed]})
    assert decide(snap, request("bob", "web", "2023-08-25", IPHONE)).action is Action.ALLOW
    last = decide(snap, request("bob", "web", "2023-09-25", IPHONE))
    assert last.action is Action.WARN and "2023-10-01" in last.message
    # a rule in force decides: an ending exception of another rule adds no warning
    strict = snapshot(
        tmp_path,
        {
            "rules": [rule(notice="14d"), rule(id="bob-ban", scope={"users": ["bob"]})],
            "exceptions": [exc],
        },
    )
    assert decide(strict, request("bob", "web", "2023-08-25", IPHONE)).rule == "bob-ban"


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
    # a date-only `until` includes that day: the exception ends at the next midnight
    assert decide(snap, request("alice", "web", "2023-09-01T23:59", IPHONE)).action is Action.ALLOW
    assert decide(snap, request("alice", "web", "2023-09-02", IPHONE)).action is Action.BLOCK
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


SEVERITY_ORDER = ("block", "quarantine", "warn", "allow")
EQUAL_DEPTH = [
    (stronger, weaker, first)
    for i, stronger in enumerate(SEVERITY_ORDER)
    for weaker in SEVERITY_ORDER[i + 1 :]
    for first in ("stronger first", "weaker first")
]


@pytest.mark.parametrize(
    ("stronger", "weaker", "order"),
    EQUAL_DEPTH,
    ids=[" over ".join(r[:2]) + f", {r[2]}" for r in EQUAL_DEPTH],
)
def test_5_at_equal_depth_the_most_severe_effect_wins(
    tmp_path: Path, stronger: str, weaker: str, order: str
) -> None:
    """docs/semantics.md rule 5, one row per pair of the order block > quarantine > warn >
    allow: two rules of the same unit scope, in either order in the file."""
    rules = [
        rule(id=f"r-{stronger}", scope={"units": ["gov/minfin"]}, effect=stronger),
        rule(id=f"r-{weaker}", scope={"units": ["gov/minfin"]}, effect=weaker),
    ]
    if order == "weaker first":
        rules.reverse()
    decision = decide(
        snapshot(tmp_path, {"rules": rules}), request("alice", "web", "2023-08-01", IPHONE)
    )
    assert (decision.action.value, decision.rule) == (stronger, f"r-{stronger}")
    assert f"`r-{stronger}` wins: most severe at equal depth" in decision.reasons


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


def test_8_allow_list_needs_every_signal_identified_from_real_signals(tmp_path: Path) -> None:
    """docs/semantics.md rule 8, the allow-list half, through identification: a client whose
    User-Agent says Samsung but whose ActiveSync device type says iPhone is not approved by
    `only: {vendor: [Samsung]}` — one disagreeing signal is enough to refuse approval."""
    snap = snapshot(
        tmp_path,
        {"rules": [rule(id="samsung-only", when=None, only={"vendor": ["Samsung"]})]},
    )
    android_ua = (
        "Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.6099.144 Mobile Safari/537.36"
    )

    def check(signals: Signals) -> Decision:
        return decide(snap, Request("alice", "email", at("2023-08-01"), signals))

    honest = check(Signals(user_agent=android_ua))
    assert (honest.action, honest.rule, honest.spoofing_suspected) == (Action.ALLOW, None, False)
    mixed = check(Signals(user_agent=android_ua, activesync_device_type="iPhone"))
    assert (mixed.action, mixed.rule) == (Action.BLOCK, "samsung-only")
    assert mixed.spoofing_suspected
    assert any("not among approved" in hit.reason for hit in mixed.matched)


@settings(max_examples=60, deadline=None)
@given(policies(), st.lists(requests, min_size=1, max_size=8))
def test_1_no_exception_lifts_a_compromise_whatever_the_rules(
    policy: dict[str, Any], reqs: list[tuple[str, str, str, int]]
) -> None:
    """docs/semantics.md rule 1, over generated policies: with every rule lifted for every
    user and device, a user-named allow on top, and a hold besides, a compromised device is
    quarantined by `builtin:compromised` for every resource at every time."""
    with tempfile.TemporaryDirectory() as tmp:
        ids = [r["id"] for r in policy["rules"]]
        everything = {
            "units": PROPERTY_UNITS,
            **policy,
            "rules": [
                *policy["rules"],
                rule(id="vip", scope={"users": [u.id for u in USERS]}, effect="allow", when={}),
            ],
            "exceptions": [
                *[
                    {"user": u.id, "rules": [*ids, "vip"], "until": "2030-01-01", "reason": "vip"}
                    for u in USERS
                ],
                {"device": "DEV-1", "rules": [*ids, "vip"], "until": "2030-01-01", "reason": "x"},
            ],
        }
        snap = snapshot(Path(tmp), everything)
    compromised = DeviceState(compromised=True, verdict="compromised", held=frozenset({"*"}))
    for user, resource, when, p in reqs:
        device = replace(PROFILES[p], device_id="DEV-1", keys=(("device_id", "DEV-1"),))
        decision = decide(snap, request(user, resource, when, device), compromised)
        assert (decision.action, decision.rule) == (Action.QUARANTINE, COMPROMISED_RULE)
        assert decision.excepted == ()


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


def test_rule_4_a_device_exception_names_a_mac_in_any_notation(tmp_path: Path) -> None:
    """docs/semantics.md rule 4: an exception for `AA-BB-CC-00-11-22` lifts the rule for the
    device whose keys carry `aa:bb:cc:00:11:22` (as identification normalises a MAC), and
    twelve bare hex digits still match an ActiveSync DeviceId written that way."""
    snap = snapshot(
        tmp_path,
        {
            "rules": [rule()],
            "exceptions": [
                exception(user=None, device="AA-BB-CC-00-11-22"),
                exception(user=None, device="AABBCC001133"),
            ],
        },
    )
    mac = replace(profile(), keys=(("mac", "aa:bb:cc:00:11:22"),))
    eas = replace(profile(), keys=(("activesync_id", "AABBCC001133"),))
    other = replace(profile(), keys=(("mac", "aa:bb:cc:00:11:99"),))
    when = "2023-08-01T10:00"
    assert decide(snap, request("bob", "email", when, mac)).action is Action.ALLOW
    assert decide(snap, request("bob", "email", when, eas)).action is Action.ALLOW
    assert decide(snap, request("bob", "email", when, other)).action is Action.BLOCK


def test_3_why_an_announcement_is_not_made_is_named(tmp_path: Path) -> None:
    """docs/semantics.md rule 3: the reason chain names what keeps a notice from warning —
    the resource's default, a rule in force, or what the request gets once the rule starts;
    one announcement that does not hold never hides the next that does; a default of `warn`
    does not stand in the way of an announcement."""
    refused = snapshot(
        tmp_path, {"resources": {"vpn": {"default": "block"}}, "rules": [rule(notice="14d")]}
    )
    during = decide(refused, request("alice", "vpn", "2023-07-10", IPHONE))
    assert "rule `ban` announces a change, but the default (block) stands" in during.reasons
    warned = snapshot(
        tmp_path, {"resources": {"vpn": {"default": "warn"}}, "rules": [rule(notice="14d")]}
    )
    during = decide(warned, request("alice", "vpn", "2023-07-10", IPHONE))
    assert (during.action, during.rule) == (Action.WARN, "ban")
    assert "2023-07-17" in during.message
    covered = exception(**{"from": "2023-07-17", "until": "2023-12-31"})
    later = rule(id="wave-2", notice="30d", **{"from": "2023-07-20"})
    alone = snapshot(tmp_path, {"rules": [rule(notice="14d")], "exceptions": [covered]})
    made = decide(alone, request("alice", "web", "2023-07-10", IPHONE))
    assert made.action is Action.ALLOW
    assert (
        "rule `ban` would block from 2023-07-17, but then this request gets allow "
        "(the default): no warning"
    ) in made.reasons
    for rules in ([rule(notice="14d"), later], [later, rule(notice="14d")]):
        snap = snapshot(tmp_path, {"rules": rules, "exceptions": [covered]})
        made = decide(snap, request("alice", "web", "2023-07-10", IPHONE))
        assert (made.action, made.rule) == (Action.WARN, "wave-2")
        assert any("rule `ban` would block from 2023-07-17, but" in r for r in made.reasons)


def test_explain_judges_an_allow_list_under_the_device_state(tmp_path: Path) -> None:
    """An allow-list may name the device state (`only: {compromised: false}`): `explain`
    judges it under the request's state, as `decide` does."""
    clean_only = rule(id="clean-only", when=None, only={"compromised": False})
    snap = snapshot(tmp_path, {"rules": [clean_only]})
    lines = explain(snap, request("alice", "web", "2023-08-01", ANDROID))
    assert "rule `clean-only`: device does not match (device is on the approved list)" in lines
    flagged = explain(
        snap, request("alice", "web", "2023-08-01", ANDROID), DeviceState(compromised=True)
    )
    assert not any(line.startswith("rule `clean-only`: device does not match") for line in flagged)


class _NotAgain:
    """Stands in for a part `decide` must not call again once its answer is cached."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __call__(self, *args: object) -> Any:
        raise AssertionError(f"{self.what} called: the cached answer was not used")

    def __getattr__(self, name: str) -> Any:
        return _NotAgain(f"{self.what}.{name}")


def test_decide_answers_a_repeated_request_from_its_caches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`decide` is pure, and its caches (docs/semantics.md, "How it stays fast") hand back the
    very decision made before: per signals without identifying the device again, per
    device profile, per device class (two profiles of one class share one template), and
    per time segment without planning again — and never one state's or device's answer for
    another's."""
    snap = snapshot(tmp_path, {"rules": [rule()]})
    when = at("2023-08-01")
    iphone = Signals(user_agent="Apple-iPhone14C2/2003.1.1")
    first = decide(snap, Request("alice", "web", when, iphone))
    compromised = decide(snap, Request("alice", "web", when, iphone), DeviceState(compromised=True))
    assert (first.action, compromised.action) == (Action.BLOCK, Action.QUARANTINE)
    phone = replace(IPHONE)
    other = replace(IPHONE)  # equal, not the same object
    by_phone = decide(snap, request("alice", "web", "2023-08-01", phone))
    by_other = decide(snap, request("alice", "web", "2023-08-01", other))
    assert by_phone.device is phone and by_other.device is other
    assert by_other.reasons is by_phone.reasons  # one device class: one template
    android = decide(snap, request("alice", "web", "2023-08-01", ANDROID))
    assert android.action is Action.ALLOW
    held = decide(snap, request("alice", "web", "2023-08-01", phone), DeviceState(compromised=True))
    assert held.action is Action.QUARANTINE and held.device is phone
    monkeypatch.setattr(snap, "identifier", _NotAgain("identifier"))
    monkeypatch.setattr(snap, "plan", _NotAgain("snapshot.plan"))
    assert decide(snap, Request("alice", "web", when, iphone)) is first
    assert decide(snap, request("alice", "web", "2023-08-01", phone)) is by_phone
    assert decide(snap, request("alice", "web", "2023-08-01", other)) is by_other
    third = replace(IPHONE)  # a new device of a known class, in a known segment
    by_third = decide(snap, request("alice", "web", "2023-08-01", third))
    assert by_third.device is third and by_third.reasons is by_phone.reasons


def test_4_the_latest_end_among_exceptions_lifting_a_rule_counts(tmp_path: Path) -> None:
    """docs/semantics.md rule 4: a rule two exceptions lift is lifted until the later end,
    whatever their order; at equal ends the first listed is named."""
    short, long = exception(until="2023-09-01"), exception(until="2023-12-31", reason="long")
    for order in ([short, long], [long, short]):
        snap = snapshot(tmp_path, {"rules": [rule(notice="14d")], "exceptions": order})
        made = decide(snap, request("alice", "web", "2023-08-25", IPHONE))
        assert made.action is Action.ALLOW, order
        assert any("exception until 2023-12-31 (long)" in r for r in made.reasons)
    same = [exception(reason="first"), exception(reason="second")]
    snap = snapshot(tmp_path, {"rules": [rule()], "exceptions": same})
    made = decide(snap, request("alice", "web", "2023-08-10", IPHONE))
    assert any("(first)" in r for r in made.reasons)
    assert not any("(second)" in r for r in made.reasons)


def test_3_an_allow_in_notice_leaves_the_rules_in_force(tmp_path: Path) -> None:
    """docs/semantics.md rule 3: an allow rule in its notice period announces nothing, and
    the rules after it still apply."""
    lab = {
        "id": "lab-allow",
        "scope": {"units": ["gov/mintsifry/ios-lab"]},
        "effect": "allow",
        "from": "2023-09-01",
        "notice": "30d",
    }
    for rules in ([rule(**lab), rule()], [rule(), rule(**lab)]):
        snap = snapshot(tmp_path, {"rules": rules})
        made = decide(snap, request("bob", "web", "2023-08-10", IPHONE))
        assert (made.action, made.rule) == (Action.BLOCK, "ban")


def test_6_a_report_only_rule_in_notice_reports_a_warning(tmp_path: Path) -> None:
    """docs/semantics.md rules 3 and 6: in its notice period a report-only rule is recorded
    as a would-be warning naming its start; the action is unchanged."""
    preview = rule(id="preview", mode="report-only", notice="14d")
    snap = snapshot(tmp_path, {"rules": [preview]})
    made = decide(snap, request("alice", "web", "2023-07-10", IPHONE))
    assert made.action is Action.ALLOW
    (hit,) = made.report_only
    assert (hit.rule, hit.action, hit.mode) == ("preview", Action.WARN, "report-only")
    assert hit.reason == "vendor in [apple]; in notice period: block from 2023-07-17"
    assert (
        "report-only rule `preview` would warn: vendor in [apple]; in notice period: "
        "block from 2023-07-17"
    ) in made.reasons
