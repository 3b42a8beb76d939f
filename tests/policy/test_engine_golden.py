"""The engine and its conditions: every outcome — action, rule, message, the reason chain,
the hits, what was excepted and reported, `explain` — for the corpus requests under each
device state and for small policies at each row of the combining rule; and each condition
judged on devices that claim, conflict or say nothing; against `golden/engine.json`
(written by `python -m tests.golden`)."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from devicegate.directory import Directory, User, load_directory
from devicegate.inventory import load_inventory
from devicegate.model import NO_STATE, Conflict, DeviceKind, DeviceState, Ownership, Trust
from devicegate.policy import Snapshot, compile_policy, load_policy
from devicegate.policy.conditions import (
    CompiledCondition,
    Tri,
    compile_globs,
    glob_problem,
    match_deny,
    match_only,
    parse_version,
    tri_and,
)
from devicegate.policy.engine import decide, explain
from devicegate.policy.schema import DeviceCondition
from tests.corpus.loader import DEVICES, DIRECTORY, POLICY
from tests.corpus.loader import cases as corpus_cases
from tests.golden import Case, assert_family, assert_same_cases, params
from tests.policy.helpers import USERS as HELPER_USERS
from tests.policy.helpers import profile, request, rule, write_policy

GOLDEN = Path(__file__).with_name("golden") / "engine.json"

STATES = {
    "no state": NO_STATE,
    "compromised": DeviceState(compromised=True, verdict="compromised"),
    "compromised no verdict": DeviceState(compromised=True),
    "held everywhere": DeviceState(held=frozenset({"*"})),
    "held on email": DeviceState(held=frozenset({"email"})),
}


def summary(decision: Any, version: str | None = None) -> dict[str, Any]:
    """A decision without the device profile (the identification tests pin that); whether it
    names the policy version it was made under, when that is given."""
    return {
        "names_its_policy": version is None or decision.policy_version == version,
        "action": decision.action,
        "rule": decision.rule,
        "message": decision.message,
        "reasons": decision.reasons,
        "matched": decision.matched,
        "report_only": decision.report_only,
        "excepted": decision.excepted,
        "effective_from": decision.effective_from and decision.effective_from.isoformat(),
        "spoofing_suspected": decision.spoofing_suspected,
    }


@cache
def corpus_inputs() -> tuple[Any, Any, Any]:
    return load_policy([POLICY]), load_directory(DIRECTORY), load_inventory(DEVICES)


def corpus() -> Snapshot:
    """Compiled anew for every case (1 ms): a snapshot caches decisions, and one kept from
    another case — or, under mutation testing, from the unmutated run the worker was forked
    from — would answer without the engine running."""
    return compile_policy(*corpus_inputs())


def explained(snapshot: Snapshot, req: Any, state: DeviceState) -> list[str]:
    """`explain`, the policy's hash written `<version>` (it changes with the file's text)."""
    return [line.replace(snapshot.version, "<version>") for line in explain(snapshot, req, state)]


def corpus_case(index: int, state: str) -> Any:
    case = corpus_cases()[index]
    req = case.request()
    snapshot = corpus()
    return {
        "decision": summary(decide(snapshot, req, STATES[state]), snapshot.version),
        "explain": explained(snapshot, req, STATES[state]),
    }


APPLE = profile("Apple", "iOS", more={"model": ("iPhone14,2",), "os_version": ("16.5",)})
ANDROID = profile(None, "Android", more={"model": ("SM-S911B",), "os_version": ("14",)})
AURORA = profile("OMP", "Aurora", more={"os_version": ("4.0.2",)})
UNKNOWN = profile(None, None)
CONFLICTED = profile(
    "Apple",
    "iOS",
    more={"platform": ("iOS", "Android"), "vendor": ("Apple", "Samsung")},
    conflicts=(Conflict("platform", (("user_agent", "Android"), ("activesync", "iOS"))),),
)
MANAGED = profile(
    "Apple",
    "macOS",
    trust=Trust.ATTESTED,
    managed=True,
    ownership=Ownership.CORPORATE,
    device_id="C02X",
)
ODD_VERSION = profile("Apple", "iOS", more={"os_version": ("beta",)})  # no version in it


def mdm(*threats: str) -> Any:
    """An Android handset the inventory's MDM records report on (`none`: clean), beside
    evidence that says nothing of a threat."""
    from dataclasses import replace

    from devicegate.model import Evidence

    said = [Evidence("mdm_id", Trust.ATTESTED, "inventory", (("mdm_threat", t),)) for t in threats]
    plain = Evidence("user_agent", Trust.REPORTED, "ua", (("platform", "Android"),))
    return replace(ANDROID, evidence=(plain, *said))


PROFILES = {
    "apple": APPLE,
    "odd version": ODD_VERSION,
    "android": ANDROID,
    "aurora": AURORA,
    "unknown": UNKNOWN,
    "conflicted": CONFLICTED,
    "managed": MANAGED,
    "mdm clean": mdm("none"),
    "mdm rooted": mdm("rooted"),
    "mdm both": mdm("rooted", "none", "jailbroken"),
}

POLICIES: dict[str, dict[str, Any]] = {
    "deeper unit and equal depth": {
        "rules": [
            rule(id="ban"),
            rule(id="lab", scope={"units": ["gov/mintsifry/ios-lab"]}, effect="allow"),
            rule(id="warn-gov", effect="warn", message="warned"),
            rule(id="hold-gov", effect="quarantine", message="held"),
        ]
    },
    "notice and allow starting": {
        "rules": [
            rule(id="soon", **{"from": "2030-01-10", "notice": "30d"}),
            rule(
                id="lab-soon",
                scope={"units": ["gov/mintsifry/ios-lab"]},
                effect="allow",
                **{"from": "2030-01-10"},
            ),
            rule(id="allow-notice", effect="allow", **{"from": "2030-01-05", "notice": "30d"}),
            rule(
                id="soon-unknown-allowed",
                when={"platform": ["iOS"]},
                on_unidentified="allow",
                resources=["vpn"],
                **{"from": "2030-01-10", "notice": "30d"},
            ),
            rule(
                id="allow-unknown-blocked",
                effect="allow",
                when={"platform": ["iOS"]},
                on_unidentified="block",
                resources=["vpn"],
                **{"from": "2030-01-10", "notice": "30d"},
            ),
        ]
    },
    "notice under a ban in force": {
        "rules": [
            rule(id="now"),
            rule(id="later", effect="block", **{"from": "2030-01-10", "notice": "30d"}),
        ]
    },
    "exceptions": {
        "rules": [rule(id="ban"), rule(id="ban2", effect="warn", message="w")],
        "exceptions": [
            {
                "user": "alice",
                "rules": ["ban"],
                "until": "2030-06-01",
                "reason": "order",
                "approver": "cio",
            },
            {"user": "bob", "rules": ["ban", "ban2"], "until": "2030-06-01", "reason": "lab"},
        ],
    },
    "report only and default": {
        "resources": {"email": {"default": "block"}, "web": {}},
        "rules": [
            rule(id="shadow", mode="report-only", resources=["email", "web"]),
            rule(id="android-only", when={"platform": ["Android"]}, resources=["web"]),
        ],
    },
    "when and only, ended, compromised": {
        "rules": [
            rule(id="mixed", only={"platform": ["macOS"]}, resources=["email"]),
            rule(id="ended", resources=["web"], until="2029-12-20"),
            rule(id="bad-state", when={"compromised": True}, resources=["vpn"], effect="warn"),
        ]
    },
    "unidentified and only": {
        "unknown_user": "block",
        "rules": [
            rule(id="deny-warn", on_unidentified="warn", resources=["web"]),
            rule(
                id="approved",
                when=None,
                only={"platform": ["Aurora"], "vendor": ["OMP"]},
                on_unidentified="block",
                resources=["email"],
            ),
            rule(id="plain-only", when=None, only={"platform": ["Aurora"]}, resources=["vpn"]),
        ],
    },
}

USERS_HERE = [*HELPER_USERS, User("frank", "gov/minzdrav", frozenset({"medics", "it"}))]
USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "nobody")
TIMES = ("2029-12-01T09:00", "2030-01-07T09:00", "2030-01-12T09:00", "2030-07-01T09:00")


@cache
def loaded_policy(name: str) -> Any:
    data = {key: value for key, value in POLICIES[name].items()}
    for item in data.get("rules", []):
        if item.get("when", "") is None:
            del item["when"]
    with tempfile.TemporaryDirectory() as folder:
        return load_policy([write_policy(Path(folder), data)])


def policy_snapshot(name: str) -> Snapshot:
    """Compiled anew for every case, as `corpus`."""
    return compile_policy(loaded_policy(name), Directory(USERS_HERE))


def policy_case(name: str, user: str, resource: str, when: str, device: str) -> Any:
    req = request(user, resource, when, PROFILES[device])
    snapshot = policy_snapshot(name)
    state = STATES["compromised"] if device == "managed" else NO_STATE
    return {
        "decision": summary(decide(snapshot, req, state), snapshot.version),
        "explain": explained(snapshot, req, state),
    }


CONDITIONS: dict[str, dict[str, Any]] = {
    "vendor": {"vendor": ["APPLE"]},
    "platform": {"platform": ["ios", "iPadOS"]},
    "model": {"model": ["iPhone14*", "SM-S9?1B"]},
    "os range": {"os_version": ">=16, <17"},
    "kind": {"kind": [DeviceKind.HANDSET]},
    "ownership": {"ownership": [Ownership.CORPORATE]},
    "managed": {"managed": True},
    "attested": {"attested": True},
    "compromised": {"compromised": True},
    "spoofing": {"spoofing_suspected": True},
    "vendor and platform": {"vendor": ["Apple"], "platform": ["Android"]},
    "model and os": {"model": ["iPhone*"], "os_version": "<16"},
    "model as the hardware id": {"model": ["iPhone14C*"]},
    "two vendors": {"vendor": ["Apple", "Samsung"]},
    "mdm threat": {"mdm_threat": True},
    "mdm clean": {"mdm_threat": False},
}


def condition(name: str, device: str, compromised: bool, mode: str, detail: bool) -> Any:
    built = CompiledCondition.build(DeviceCondition(**CONDITIONS[name]))
    state = DeviceState(compromised=compromised)
    judge = match_deny if mode == "deny" else match_only
    result, note = judge(built, PROFILES[device], state, detail=detail)
    return [result.name, note]


def cached() -> Any:
    """One snapshot answering requests in turn, each twice: its caches (per user class and
    segment, device class, state, signals) never hand one request another's decision."""
    from devicegate.model import Request, Signals

    snapshot = compile_policy(*corpus_inputs())
    iphone = Signals(user_agent="Apple-iPhone14C2/2003.1.1")
    android = Signals(user_agent="Mozilla/5.0 (Linux; Android 14; SM-S911B)")
    at = datetime(2023, 8, 1, 9, 0, tzinfo=UTC)
    out = []
    for state in ("no state", "compromised", "held on email", "no state"):
        for user in ("m.sokolova@minpromtorg.example", "d.kozlov@mintsifry.example"):
            for resource, signals in (("email", iphone), ("web", iphone), ("email", android)):
                for _ in range(2):
                    made = decide(snapshot, Request(user, resource, at, signals), STATES[state])
                    out.append([state, user, resource, made.action.value, made.rule])
            profiled = Request(user, "web", at, iphone, snapshot.identifier.profile(iphone))
            made = decide(snapshot, profiled, STATES[state])
            out.append([state, user, "web (profile)", made.action.value, made.rule])
    return out


def condition_defaults(device: str) -> Any:
    """`match_deny` and `match_only` without `detail`: the values are named."""
    state = DeviceState()
    deny = CompiledCondition.build(DeviceCondition(vendor=["Apple"], platform=["iOS"]))
    only = CompiledCondition.build(DeviceCondition(platform=["Aurora"]))
    return [match_deny(deny, PROFILES[device], state), match_only(only, PROFILES[device], state)]


def globs(patterns: tuple[str, ...], texts: tuple[str, ...]) -> Any:
    compiled = compile_globs(patterns)
    return [bool(compiled.fullmatch(text)) for text in texts]


def cases() -> list[Case]:
    out: list[Case] = []
    for index, case in enumerate(corpus_cases()):
        for state in STATES:
            out.append((f"corpus {case.name} / {state}", corpus_case, (index, state)))
    for name in POLICIES:
        for user in USERS:
            for when in TIMES:
                for resource, device in (("email", "apple"), ("web", "android"),
                                         ("vpn", "unknown"), ("web", "conflicted"),
                                         ("email", "aurora"), ("vpn", "managed"),
                                         ("web", "apple")):  # fmt: skip
                    label = f"policy {name} / {user} {resource} {when} {device}"
                    out.append((label, policy_case, (name, user, resource, when, device)))
    for name in CONDITIONS:
        for device in PROFILES:
            for compromised in (False, True):
                for mode in ("deny", "only"):
                    for detail in (True, False):
                        label = f"condition {name} / {device} {compromised} {mode} {detail}"
                        out.append((label, condition, (name, device, compromised, mode, detail)))
    for device in PROFILES:
        out.append((f"condition defaults / {device}", condition_defaults, (device,)))
    for text in ("16.5.1", "16.5 (20F66)", "iOS 17.0", "no version", "1.2.3.4.5", "", "99999"):
        out.append((f"parse_version {text!r}", _version, (text,)))
    # each of `[]`, `[!]`, `[[-!]`… tells a reading of fnmatch's brackets from a near miss
    globs_seen = ("iPhone*", "", "iPhone[", "iPhone[!", "a[]]", "a[!]]b", "[z-a]", "[a-z]",
                  "[!a-c]x", "x[ab", "[--z]", "ok[a-]", "[]", "[[]", "[!]", "[[][", "[[-[]",
                  "[[-!]", "[[[-!]", "[!--!]", "[a-bc-d]", "[a-bz-a]")  # fmt: skip
    for glob in globs_seen:
        out.append((f"glob_problem {glob!r}", glob_problem, (glob,)))
    texts = ("iPhone14,2", "IPHONE14C2", "iPhone", "SM-S911B", "SM-S9X1B", "")
    for patterns in (("iPhone14*",), ("SM-S9?1B", "iPhone"), ()):
        out.append((f"compile_globs {patterns}", globs, (patterns, texts)))
    for a in Tri:
        for b in Tri:
            out.append((f"tri_and {a.name} {b.name}", tri_and, (a, b)))
    out.append(("corpus policy loaded at", _loaded, ()))
    out.append(("cache / one snapshot, requests in turn", cached, ()))
    return out


def _version(text: str) -> str | None:
    version = parse_version(text)
    return None if version is None else str(version)


def _loaded() -> Any:
    return datetime(2030, 1, 1, tzinfo=UTC).isoformat()


def test_the_file_holds_every_case() -> None:
    assert_same_cases(GOLDEN, cases())


@params(cases())
def test_outcomes_are_the_kept_ones(cases: list[Case]) -> None:
    assert_family(GOLDEN, cases)
