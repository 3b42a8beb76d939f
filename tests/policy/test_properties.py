"""Invariants of the engine over generated policies and requests (hypothesis)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from devicegate.model import Action, Conflict, DeviceProfile, Request
from devicegate.policy import decide
from devicegate.policy.compile import Snapshot

from .helpers import USERS, profile, request, snapshot

UNITS = ["gov", "gov/minfin", "gov/mintsifry", "gov/mintsifry/ios-lab", "rostec", "rostec/cii"]
RESOURCES = ["email", "web", "vpn"]
DATES = ["2023-07-03", "2023-07-17", "2023-08-14", "2023-09-04"]
# before, inside and after the notice periods of DATES (7 or 14 days) and exceptions' last days
TIMES = [
    "2023-07-01",
    "2023-07-10",
    "2023-07-12",
    "2023-07-20",
    "2023-08-10",
    "2023-08-20",
    "2023-08-30",
    "2023-09-10",
    "2024-01-01",
]
PROFILES: list[DeviceProfile] = [
    profile("Apple", "iOS"),
    profile("Apple", "macOS", managed=True),
    profile("Samsung", "Android"),
    profile("OMP", "Aurora"),
    profile(None, None),
    profile(
        "Samsung",
        "Android",
        more={"vendor": ("Samsung", "Apple"), "platform": ("Android", "iOS")},
        conflicts=(Conflict("vendor", (("ua", "Samsung"), ("eas", "Apple"))),),
    ),
]

conditions = st.one_of(
    st.fixed_dictionaries(
        {"vendor": st.lists(st.sampled_from(["Apple", "Samsung", "OMP"]), min_size=1, max_size=2)}
    ),
    st.fixed_dictionaries(
        {
            "platform": st.lists(
                st.sampled_from(["iOS", "Android", "Aurora", "macOS"]), min_size=1, max_size=2
            )
        }
    ),
    st.just({"spoofing_suspected": True}),
    st.just({"managed": True}),
)


@st.composite
def rules(draw: st.DrawFn, index: int) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": f"r{index}",
        "scope": {"units": draw(st.lists(st.sampled_from(UNITS), max_size=2, unique=True))},
        "resources": draw(
            st.one_of(
                st.just(["all"]),
                st.lists(st.sampled_from(RESOURCES), min_size=1, max_size=3, unique=True),
            )
        ),
        "from": draw(st.sampled_from(DATES)),
        "effect": draw(st.sampled_from(["block", "quarantine", "warn", "allow"])),
        "mode": draw(st.sampled_from(["enforce", "enforce", "report-only"])),
    }
    key = draw(st.sampled_from(["when", "when", "only"]))
    rule[key] = draw(conditions)
    if draw(st.booleans()):
        rule["notice"] = draw(st.sampled_from(["7d", "14d"]))
    if draw(st.booleans()):
        rule["on_unidentified"] = draw(st.sampled_from(["allow", "warn", "block"]))
    return rule


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(min_value=1, max_value=5))
    # a resource whose default refuses: an announcement must never let its requests through
    default = draw(st.sampled_from(["allow", "allow", "warn", "block"]))
    drawn = [draw(rules(i)) for i in range(count)]
    exceptions = []
    for user in draw(st.lists(st.sampled_from([u.id for u in USERS]), max_size=2, unique=True)):
        exception: dict[str, Any] = {
            "user": user,
            "rules": draw(st.lists(st.sampled_from([r["id"] for r in drawn]), min_size=1)),
            "until": draw(st.sampled_from(["2023-07-12", "2023-07-25", "2023-08-20"])),
            "reason": "generated",
        }
        if draw(st.booleans()):
            exception["notice"] = draw(st.sampled_from(["3d", "14d"]))
        exceptions.append(exception)
    return {
        "resources": {"vpn": {"default": default}},
        "rules": drawn,
        "exceptions": exceptions,
    }


requests = st.tuples(
    st.sampled_from([u.id for u in USERS]),
    st.sampled_from(RESOURCES),
    st.sampled_from(TIMES),
    st.sampled_from(range(len(PROFILES))),
)


def build(data: dict[str, Any]) -> Snapshot:
    with tempfile.TemporaryDirectory() as tmp:
        return snapshot(Path(tmp), {"units": UNITS, **data})


@settings(max_examples=120, deadline=None)
@given(policies(), st.lists(requests, min_size=1, max_size=12), st.data())
def test_adding_a_block_rule_never_turns_a_block_into_an_allow(
    policy: dict[str, Any], reqs: list[tuple[str, str, str, int]], data: st.DataObject
) -> None:
    extra = data.draw(rules(99))
    extra.update(effect="block", mode="enforce")
    if extra.get("on_unidentified") == "warn":
        extra["on_unidentified"] = "block"
    before = build(policy)
    after = build({**policy, "rules": [*policy["rules"], extra]})
    for user, resource, when, p in reqs:
        old = decide(before, request(user, resource, when, PROFILES[p]))
        new = decide(after, request(user, resource, when, PROFILES[p]))
        if old.action in (Action.BLOCK, Action.QUARANTINE):
            assert new.action in (Action.BLOCK, Action.QUARANTINE), (old, new)


@settings(max_examples=80, deadline=None)
@given(policies(), st.lists(requests, min_size=1, max_size=15))
def test_equal_requests_get_equal_decisions_cached_or_not(
    policy: dict[str, Any], reqs: list[tuple[str, str, str, int]]
) -> None:
    first, second = build(policy), build(policy)
    for user, resource, when, p in reqs:
        a = decide(first, request(user, resource, when, PROFILES[p]))
        b = decide(first, request(user, resource, when, PROFILES[p]))
        c = decide(second, request(user, resource, when, PROFILES[p]))
        assert a == b == c


@settings(max_examples=80, deadline=None)
@given(policies(), st.lists(requests, min_size=1, max_size=10), st.sampled_from(DATES))
def test_an_exception_past_its_until_has_no_effect(
    policy: dict[str, Any], reqs: list[tuple[str, str, str, int]], until: str
) -> None:
    ids = [r["id"] for r in policy["rules"]]
    excepted = {
        **policy,
        "exceptions": [
            *policy["exceptions"],
            *({"user": u.id, "rules": ids, "until": until, "reason": "test"} for u in USERS),
        ],
    }
    plain, with_exc = build(policy), build(excepted)
    for user, resource, when, p in reqs:
        if when < until:
            continue
        a = decide(plain, request(user, resource, when, PROFILES[p]))
        b = decide(with_exc, request(user, resource, when, PROFILES[p]))
        assert (a.action, a.rule, a.matched, a.report_only) == (
            b.action,
            b.rule,
            b.matched,
            b.report_only,
        )


@settings(max_examples=80, deadline=None)
@given(policies(), st.lists(requests, min_size=1, max_size=12))
def test_an_announcement_never_lets_through_what_the_default_refuses(
    policy: dict[str, Any], reqs: list[tuple[str, str, str, int]]
) -> None:
    """docs/semantics.md rules 3 and 9: where every resource's default is `block`, only a
    rule in force lets a request through — never a warning about a rule still to come."""
    refusing = build({**policy, "resources": {r: {"default": "block"} for r in RESOURCES}})
    for user, resource, when, p in reqs:
        decision = decide(refusing, request(user, resource, when, PROFILES[p]))
        if decision.action in (Action.ALLOW, Action.WARN) and decision.rule is not None:
            assert decision.effective_from is None, decision


@settings(max_examples=80, deadline=None)
@given(policies(), st.lists(requests, min_size=1, max_size=12), st.data())
def test_a_warning_announces_only_what_will_happen_to_that_request(
    policy: dict[str, Any], reqs: list[tuple[str, str, str, int]], data: st.DataObject
) -> None:
    """docs/semantics.md rule 3: a warning naming a date (a rule's start, an exception's
    end) is given only if the same request, at that moment, is refused or warned by a rule.
    A drawn carve-out (an allow in a deeper unit, from one of the rules' dates) makes the
    case the rule is about — a ban and its exemption taking force together — common."""
    carve_out = {
        "id": "carve-out",
        "scope": {"units": [data.draw(st.sampled_from(UNITS[1:]))]},
        "when": data.draw(conditions),
        "resources": ["all"],
        "from": data.draw(st.sampled_from([r["from"] for r in policy["rules"]])),
        "effect": "allow",
    }
    snap = build({**policy, "rules": [*policy["rules"], carve_out]})
    for user, resource, when, p in reqs:
        warned = decide(snap, request(user, resource, when, PROFILES[p]))
        if warned.effective_from is None:
            continue
        assert warned.action is Action.WARN
        then = decide(snap, Request(user, resource, warned.effective_from, profile=PROFILES[p]))
        assert then.action is not Action.ALLOW and then.rule is not None, (warned, then)
