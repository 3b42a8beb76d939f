"""Lints that catch the mistakes which silently switch a rule off.

A misspelt vendor or platform, a broken glob, a group the directory does not have, a scope
its own exclusion swallows: each is valid YAML of the right shape, and without these lints
would validate cleanly and then match nobody.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devicegate.directory import Directory, User
from devicegate.errors import PolicyError
from devicegate.inventory import Inventory, InventoryDevice
from devicegate.policy import Issue, Severity, check_policy, json_schema, load_policy
from devicegate.policy.conditions import compile_globs, glob_problem

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "apple-ban"
BEFORE = datetime(2023, 7, 1, tzinfo=UTC)

HEAD = """\
timezone: Europe/Moscow
units: [gov/minfin/budget, gov/mintsifry/ios-lab, rostec/cii]
unknown_user: allow
"""


def policy_text(condition: str, *, scope: str = "{units: [gov]}", extra: str = "") -> str:
    return (
        HEAD
        + extra
        + "rules:\n  - id: r\n"
        + f"    scope: {scope}\n"
        + f"    {condition}\n"
        + "    resources: [all]\n    from: 2023-07-17\n"
    )


def findings(
    tmp_path: Path,
    text: str,
    *,
    directory: Directory | None = None,
    inventory: Inventory | None = None,
) -> list[Issue]:
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    _, issues = check_policy([path], directory=directory, inventory=inventory, now=BEFORE)
    return issues


def only(issues: list[Issue], code: str) -> list[Issue]:
    return [i for i in issues if i.code == code]


# --- values identification never reports --------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "code", "field", "hint"),
    [
        ("when: {vendor: [Appel]}", "unknown-vendor", "rules[0].when.vendor[0]", "`Apple`"),
        (
            "only: {platform: [Aurroa, Linux]}",
            "unknown-platform",
            "rules[0].only.platform[0]",
            "`Aurora`",
        ),
        (
            "when: {platform: [andriod]}",
            "unknown-platform",
            "rules[0].when.platform[0]",
            "`Android`",
        ),
    ],
)
def test_a_misspelt_vendor_or_platform_is_a_warning_with_a_suggestion(
    tmp_path: Path, condition: str, code: str, field: str, hint: str
) -> None:
    issues = findings(tmp_path, policy_text(condition))
    found = only(issues, code)
    assert len(found) == 1, issues
    assert found[0].severity is Severity.WARNING
    assert found[0].field == field and found[0].line == 7
    assert found[0].hint is not None and f"did you mean {hint}" in found[0].hint
    assert "declare it" in found[0].hint


def test_vendor_and_platform_compare_case_insensitively_like_the_engine(tmp_path: Path) -> None:
    text = policy_text("when: {vendor: [apple, SAMSUNG], platform: [ios, Android]}")
    assert findings(tmp_path, text) == []


def test_a_vendor_or_platform_declared_in_the_policy_passes_cleanly(tmp_path: Path) -> None:
    condition = "when: {vendor: [Kitezh], platform: [KitezhOS]}"
    assert only(findings(tmp_path, policy_text(condition)), "unknown-vendor")
    declared = policy_text(condition, extra="vendors: [Kitezh]\nplatforms: [KitezhOS]\n")
    assert findings(tmp_path, declared) == []
    assert load_policy([tmp_path / "p.yaml"]).policy.vendors == ["Kitezh"]


def test_a_name_identification_spells_differently_never_matches(tmp_path: Path) -> None:
    issues = findings(tmp_path, policy_text("when: {platform: [Mac OS X]}"))
    (found,) = only(issues, "other-spelling")
    assert "identification reports `Mac OS X` as `macOS`" in found.message
    assert found.hint == "write `macOS`"
    # Declaring it does not help: identification still says `macOS`.
    declared = findings(
        tmp_path, policy_text("when: {platform: [macOS]}", extra="platforms: [Mac OS X]\n")
    )
    (flagged,) = only(declared, "other-spelling")
    assert flagged.field == "platforms[0]"


def test_declaring_a_name_identification_already_knows_is_info(tmp_path: Path) -> None:
    issues = findings(tmp_path, policy_text("when: {vendor: [Apple]}", extra="vendors: [apple]\n"))
    (found,) = only(issues, "declared-known")
    assert found.severity is Severity.INFO and found.field == "vendors[0]"


def test_kind_and_ownership_name_only_what_identification_reports(tmp_path: Path) -> None:
    issues = findings(tmp_path, policy_text("when: {kind: [handest]}"))
    errors = [i for i in issues if i.severity is Severity.ERROR]
    assert len(errors) == 1 and errors[0].field == "rules[0].when.kind[0]"
    assert errors[0].hint == "did you mean `handset`?"
    unknown = findings(tmp_path, policy_text("when: {ownership: [unknown]}"))
    (found,) = only(unknown, "never-reported")
    assert found.severity is Severity.WARNING and found.field == "rules[0].when.ownership[0]"
    assert "on_unidentified" in (found.hint or "")


# --- globs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("glob", "message"),
    [
        ("iPhone[", "`[` at position 7 is never closed"),
        ("iPhone1[5-3]*", "the range `5-3` is empty"),
        ("", "an empty glob matches no model"),
    ],
)
def test_a_broken_glob_is_an_error_naming_the_entry(
    tmp_path: Path, glob: str, message: str
) -> None:
    text = policy_text(f"when: {{vendor: [Apple], model: ['iPhone*', '{glob}']}}")
    errors = [i for i in findings(tmp_path, text) if i.severity is Severity.ERROR]
    assert [(i.field, i.line, i.code) for i in errors] == [("rules[0].when.model[1]", 7, "glob")]
    assert message in errors[0].message
    with pytest.raises(PolicyError, match=r"p\.yaml:7: rules\[0\]\.when\.model\[1\]"):
        load_policy([tmp_path / "p.yaml"])


def test_good_globs_pass(tmp_path: Path) -> None:
    text = policy_text("when: {model: ['iPhone1[45]*', 'iPad?', '[!x]*', '[]]', 'a[b-]']}")
    assert findings(tmp_path, text) == []


# --- rules that can never match ----------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "matches"),
    [
        ("{units: [gov/minfin/budget], exclude: {units: [gov/minfin]}}", False),
        ("{units: [gov/minfin/budget, rostec], exclude: {units: [gov/minfin]}}", True),
        ("{units: [gov/minfin], exclude: {units: [gov/minfin/budget]}}", True),
        ("{users: [Alice], exclude: {users: [alice]}}", False),
        ("{groups: [lab], exclude: {groups: [lab]}}", False),
        ("{units: [gov/minfin], groups: [lab], exclude: {units: [gov]}}", True),
    ],
)
def test_a_scope_its_exclusion_swallows_never_matches(
    tmp_path: Path, scope: str, matches: bool
) -> None:
    issues = findings(tmp_path, policy_text("when: {vendor: [Apple]}", scope=scope))
    assert bool(only(issues, "never-matches")) is not matches, issues


def test_contradictory_vendor_and_platform_never_match(tmp_path: Path) -> None:
    issues = findings(tmp_path, policy_text("when: {vendor: [Apple], platform: [Android]}"))
    (found,) = only(issues, "never-matches")
    assert "no device is both" in found.message and found.field == "rules[0].when"
    # Partly contradictory: only the dead entry is flagged.
    partly = findings(tmp_path, policy_text("when: {vendor: [Apple], platform: [iOS, Android]}"))
    assert not only(partly, "never-matches")
    (entry,) = only(partly, "contradiction")
    assert entry.field == "rules[0].when.platform[1]"
    # A platform only one maker's hardware runs excludes every other maker.
    assert only(
        findings(tmp_path, policy_text("when: {vendor: [Samsung], platform: [iOS, HarmonyOS]}")),
        "never-matches",
    )
    # Aimed at spoofed signals on purpose: no warning.
    spoof = "when: {vendor: [Apple], platform: [Android], spoofing_suspected: true}"
    assert not only(findings(tmp_path, policy_text(spoof)), "never-matches")
    # Compatible pairs are fine.
    assert findings(tmp_path, policy_text("when: {vendor: [Apple], platform: [Windows]}")) == []


def test_an_allow_list_no_device_satisfies_is_flagged(tmp_path: Path) -> None:
    issues = findings(tmp_path, policy_text("only: {vendor: [Apple], platform: [Aurora]}"))
    (found,) = only(issues, "only-unsatisfiable")
    assert found.severity is Severity.WARNING and "every device" in found.message


# --- groups, users and devices against the directory and the inventory -----------------

USERS = Directory(
    [
        User("alice", "gov/minfin/budget", frozenset(), "alice@minfin.example"),
        User("bob", "gov/mintsifry/ios-lab", frozenset({"ios-developers"})),
    ],
    source="d.csv",
)
DEVICES = Inventory(
    [InventoryDevice("DEV-1", user="alice", activesync_id="ab12cd", mac="AA-BB-CC-00-11-22")]
)


def test_groups_users_and_devices_are_checked_when_given(tmp_path: Path) -> None:
    text = policy_text(
        "when: {vendor: [Apple]}",
        scope="{units: [gov], users: [carol], exclude: {groups: [ios-developer], users: [Bob]}}",
    ) + (
        "exceptions:\n"
        "  - {user: ALICE@minfin.example, rules: [r], until: 2023-09-01, reason: x}\n"
        "  - {user: alica, rules: [r], until: 2023-09-01, reason: x}\n"
        "  - {device: dev-1, rules: [r], until: 2023-09-01, reason: x}\n"
        "  - {device: aa:bb:cc:00:11:22, rules: [r], until: 2023-09-01, reason: x}\n"
        "  - {device: AB12CD, rules: [r], until: 2023-09-01, reason: x}\n"
        "  - {device: DEV-2, rules: [r], until: 2023-09-01, reason: x}\n"
    )
    assert findings(tmp_path, text) == []  # nothing to check against
    issues = findings(tmp_path, text, directory=USERS, inventory=DEVICES)
    got = {(i.code, i.field): i for i in issues}
    assert set(got) == {
        ("unknown-user", "rules[0].scope.users[0]"),
        ("unknown-group", "rules[0].scope.exclude.groups[0]"),
        ("unknown-user", "exceptions[1].user"),
        ("unknown-device", "exceptions[5].device"),
    }
    assert all(i.severity is Severity.WARNING for i in issues)
    group = got["unknown-group", "rules[0].scope.exclude.groups[0]"]
    assert group.line == 6 and "no user in `d.csv`" in group.message
    assert group.hint == "did you mean `ios-developers`?"
    assert got["unknown-user", "exceptions[1].user"].hint == "did you mean `alice`?"
    assert got["unknown-user", "exceptions[1].user"].line == 12
    assert "not in the inventory" in got["unknown-device", "exceptions[5].device"].message


# --- the bundled example and the schema ----------------------------------------------------


def test_the_bundled_example_has_no_findings_with_directory_and_inventory() -> None:
    from devicegate.directory import load_directory
    from devicegate.inventory import load_inventory

    _, issues = check_policy(
        [EXAMPLE / "policy.yaml"],
        directory=load_directory(EXAMPLE / "directory.csv"),
        inventory=load_inventory(EXAMPLE / "devices.csv"),
        now=BEFORE,
    )
    assert issues == []


def test_the_json_schema_has_the_declared_vocabulary() -> None:
    properties = json_schema()["properties"]
    assert isinstance(properties, dict)
    for name in ("vendors", "platforms"):
        assert properties[name]["type"] == "array"
        assert properties[name]["items"]["type"] == "string"


# --- hostile input ------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_glob_is_either_refused_or_compiles(glob: str) -> None:
    problem = glob_problem(glob)
    if problem is None:
        pattern = compile_globs([glob])
        if not set("*?[") & set(glob):
            assert pattern.fullmatch(glob) is not None
    else:
        assert problem[0] and problem[1]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=3),
    st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=3),
    st.lists(st.text(max_size=12), max_size=3),
)
def test_arbitrary_condition_values_never_raise(
    tmp_path: Path, vendors: list[str], platforms: list[str], models: list[str]
) -> None:
    policy = {
        "timezone": "UTC",
        "vendors": vendors[:1],
        "rules": [
            {
                "id": "r",
                "when": {"vendor": vendors, "platform": platforms, "model": models},
                "only": {"platform": platforms[::-1]},
                "resources": ["all"],
                "from": "2023-07-17",
            }
        ],
    }
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")
    loaded, issues = check_policy([path], directory=USERS, inventory=DEVICES, now=BEFORE)
    assert loaded is not None or any(i.severity is Severity.ERROR for i in issues)
    assert all(i.file == str(path) or i.field == "directory" for i in issues)


def test_an_allowed_unknown_user_is_made_visible(tmp_path: Path) -> None:
    """Left at its default, `unknown_user` lets a name the directory lacks through every
    rule: validate says so (docs/security.md), and is silent once the policy chooses."""
    default = policy_text("when: {vendor: [Apple]}").replace("unknown_user: allow\n", "")
    assert "unknown-user-allowed" in [issue.code for issue in findings(tmp_path, default)]
    for choice in ("block", "allow"):
        chosen = default.replace("rules:", f"unknown_user: {choice}\nrules:", 1)
        assert "unknown-user-allowed" not in [i.code for i in findings(tmp_path, chosen)]
