"""Policy loading: every error names file, line and field; an invalid policy never loads."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devicegate.errors import PolicyError
from devicegate.policy import Severity, check_policy, load_policy

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "apple-ban" / "policy.yaml"

GOOD = """\
timezone: Europe/Moscow
units: [gov/minfin, gov/mintsifry/ios-lab]
rules:
  - id: ban
    scope: {units: [gov]}
    when: {vendor: [Apple]}
    resources: [email]
    from: 2023-07-17
"""


def issues_of(tmp_path: Path, text: str, **kw: object) -> list[str]:
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    _, issues = check_policy([path], **kw)  # type: ignore[arg-type]
    return [i.format() for i in issues if i.severity is Severity.ERROR]


def test_example_policy_is_valid_and_versioned() -> None:
    loaded = load_policy([EXAMPLE])
    assert len(loaded.version) == 16
    assert {r.id for r in loaded.policy.rules} >= {"apple-wave-1", "apple-wave-2", "ios-lab"}
    assert load_policy([EXAMPLE]).version == loaded.version


def test_good_policy_has_no_errors(tmp_path: Path) -> None:
    assert issues_of(tmp_path, GOOD) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rules: [\n  - id: x\n    when: {vendor: [Apple]\n", ":2: (document): invalid YAML"),
        (GOOD.replace("resources: [email]", "resources: email"), ":7: rules[0].resources:"),
        (GOOD.replace("from: 2023-07-17", "from: 2023-02-30"), ":8: rules[0].from: invalid value"),
        (GOOD.replace("from: 2023-07-17", "from: next monday"), ":8: rules[0].from:"),
        (GOOD.replace("Europe/Moscow", "Mars/Olympus"), ":1: timezone: `Mars/Olympus` is not"),
        (
            GOOD.replace("    when:", "    wehn:"),
            ":6: rules[0].wehn: unknown field `wehn` (hint: did you mean `when`?)",
        ),
        (
            GOOD.replace("units: [gov]}", "units: [gov/minfn]}"),
            "rules[0].scope.units[0]: unknown unit `gov/minfn` (hint: did you mean `gov/minfin`?)",
        ),
        (
            GOOD.replace("[email]", "[emial]"),
            "rules[0].resources[0]: unknown resource `emial` (hint: did you mean `email`?)",
        ),
        (
            GOOD
            + "  - id: ban\n    when: {vendor: [Apple]}\n"
            + "    resources: [web]\n    from: 2023-08-01\n",
            ":9: rules[1].id: duplicate rule id `ban`",
        ),
        (
            GOOD.replace("    when: {vendor: [Apple]}\n", ""),
            "rules[0]: a rule needs `when` (deny-list) or `only` (allow-list)",
        ),
        (
            GOOD + "exceptions:\n  - user: a\n    rules: [ban]\n    reason: r\n",
            ":10: exceptions[0].until: this field is required",
        ),
        (
            GOOD
            + "exceptions:\n  - user: a\n    rules: [bna]\n    until: 2023-09-01\n    reason: r\n",
            "exceptions[0].rules[0]: unknown rule `bna` (hint: did you mean `ban`?)",
        ),
        (
            GOOD.replace("from: 2023-07-17", "from: 2023-07-17\n    until: 2023-07-01"),
            "rules[0].until: `until` 2023-07-01 is not after `from`",
        ),
        (
            GOOD.replace("from: 2023-07-17", "from: 2023-07-17\n    notice: two weeks"),
            "rules[0].notice: `two weeks` is not a duration",
        ),
        (
            GOOD.replace("from: 2023-07-17", "from: 2023-07-17\n    notice: 1000000000d"),
            "rules[0].notice: `1000000000d` is too long a duration",
        ),
        (
            GOOD.replace("vendor: [Apple]", "os_version: 'sixteen'"),
            "rules[0].when.os_version: `sixteen` is not a version range",
        ),
        ("- just\n- a list\n", ":1: (document): a policy file is a mapping"),
        (GOOD + "timezone: UTC\n", "duplicate key `timezone`"),
    ],
)
def test_errors_name_file_line_field(tmp_path: Path, text: str, expected: str) -> None:
    found = issues_of(tmp_path, text)
    assert found, "expected an error"
    assert any(expected in issue for issue in found), found
    assert all(issue.startswith(str(tmp_path / "p.yaml") + ":") for issue in found)


def test_load_policy_raises_with_every_error_and_never_returns(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace("[gov]", "[gov/x]").replace("[email]", "[mail]"), "utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy([path])
    assert len(caught.value.issues) == 2
    assert "and 1 more error" in caught.value.message


def test_several_files_merge_and_keep_their_origins(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD, "utf-8")
    (tmp_path / "b.yaml").write_text(
        "units: [rostec]\nrules:\n  - id: r2\n    scope: {units: [rostec]}\n"
        "    when: {vendor: [Apple]}\n    resources: [web]\n    from: 2023-08-01\n",
        "utf-8",
    )
    loaded = load_policy([tmp_path / "a.yaml", tmp_path / "b.yaml"])
    assert [r.id for r in loaded.policy.rules] == ["ban", "r2"]
    assert loaded.where_rule(1) == (str(tmp_path / "b.yaml"), 3)
    clash = tmp_path / "c.yaml"
    clash.write_text("timezone: UTC\n", "utf-8")
    _, issues = check_policy([tmp_path / "a.yaml", clash])
    assert any("differs from `Europe/Moscow`" in i.message for i in issues)


def test_lints_rank_by_severity(tmp_path: Path) -> None:
    text = GOOD + (
        "  - id: lab\n    scope: {units: [gov/mintsifry/ios-lab]}\n    when: {vendor: [Apple]}\n"
        "    resources: [web]\n    from: 2023-07-17\n    effect: allow\n"
        "  - id: never\n    when: {platform: [iOS]}\n    only: {platform: [iOS, Android]}\n"
        "    resources: [vpn]\n    from: 2023-07-17\n"
        "exceptions:\n  - user: a\n    rules: [ban]\n    until: 2023-08-01\n    reason: r\n"
    )
    path = tmp_path / "lint.yaml"
    path.write_text(text, "utf-8")
    loaded, issues = check_policy([path], now=datetime(2023, 9, 1, tzinfo=UTC))
    assert loaded is not None
    codes = {i.code: i.severity for i in issues}
    assert codes["allow-shadows-nothing"] is Severity.WARNING  # ban covers email, lab web only
    assert codes["never-matches"] is Severity.WARNING
    assert codes["expired-exception"] is Severity.WARNING
    assert codes["past-date"] is Severity.INFO
    assert [i.severity.rank for i in issues] == sorted(i.severity.rank for i in issues)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=400))
def test_arbitrary_text_never_raises_unexpectedly(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    loaded, issues = check_policy([path])
    assert loaded is not None or any(i.severity is Severity.ERROR for i in issues)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_binary_files_are_clear_errors(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "bin.yaml"
    path.write_bytes(data)
    loaded, issues = check_policy([path])
    assert loaded is not None or issues[0].format().startswith(str(path))
