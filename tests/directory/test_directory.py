"""Directories from CSV and LDIF; problems are reported, never silently dropped."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devicegate.directory import load_directory
from devicegate.errors import DirectoryError

LDIF = """\
version: 1

dn: ou=gov,dc=example,dc=org
objectClass: organizationalUnit
ou: gov

dn: uid=s.volkova,ou=budget,ou=minfin,ou=gov,dc=example,dc=org
objectClass: inetOrgPerson
uid: s.volkova
cn: Svetlana Volkova
mail: s.volkova@minfin.example
memberOf: cn=finance-staff,ou=groups,dc=example,dc=org

dn: uid=k.belov,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: k.belov
devicegateUnit: rostec/cii
jpegPhoto:< file:///etc/passwd

dn: cn=Service Account,dc=example,dc=org
objectClass: person
cn: Service Account
"""


def test_csv_with_groups_and_aliases(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text(
        "user,unit,groups,email\nalice,Gov/MinFin/,a;b,alice@x.example\n"
        "bob,gov/bad unit,,\n,gov,,\nalice,gov,,\n",
        "utf-8",
    )
    directory = load_directory(path)
    alice = directory.get("ALICE@x.example")
    assert alice is not None and alice.unit == "gov/minfin" and alice.groups == {"a", "b"}
    messages = [f"{p.file}:{p.line}: {p.message}" for p in directory.problems]
    assert messages == [
        f"{path}:3: user `bob`: invalid unit `gov/bad unit`",
        f"{path}:4: empty `user`",
        f"{path}:5: user `alice` already listed on line 2",
    ]


def test_csv_rows_are_read_by_column_name_whatever_their_length(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text(
        " Email ,name,USER,unit,extra,name\n"  # any order and case; `name` read from its last place
        "c@x.example,,carol,gov,1,Carol C\n"
        "\n"  # a blank line is no row
        "d@x.example,,dave,gov\n"  # a short row: no name
        '"e@x.example",,"erin",gov,1,"Erin\nE",more,cells\n'  # a long row, a cell on two lines
        ",,,gov\n",
        "utf-8",
    )
    directory = load_directory(path)
    found = {u.id: (u.email, u.name, u.unit, u.groups) for u in directory.users}
    assert found == {
        "carol": ("c@x.example", "Carol C", "gov", frozenset()),
        "dave": ("d@x.example", None, "gov", frozenset()),
        "erin": ("e@x.example", "Erin\nE", "gov", frozenset()),
    }
    assert [(p.line, p.message) for p in directory.problems] == [(7, "empty `user`")]


def test_csv_without_required_columns_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("login,ou\na,b\n", "utf-8")
    with pytest.raises(DirectoryError, match="needs columns `user` and `unit`"):
        load_directory(path)


def test_ldif_units_from_ou_path_or_attribute_and_no_url_following(tmp_path: Path) -> None:
    path = tmp_path / "d.ldif"
    path.write_text(LDIF, "utf-8")
    directory = load_directory(path)
    volkova = directory.get("s.volkova@minfin.example")
    assert volkova is not None
    assert (volkova.unit, volkova.groups, volkova.name) == (
        "gov/minfin/budget",
        frozenset({"finance-staff"}),
        "Svetlana Volkova",
    )
    belov = directory.get("k.belov")
    assert belov is not None and belov.unit == "rostec/cii"
    assert [p.message for p in directory.problems] == [
        "entry `cn=Service Account,dc=example,dc=org` has no uid, sAMAccountName or mail"
    ]


def test_units_unknown_to_the_policy_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("user,unit\na,gov/minfin\nb,gov/secret\nc,gov/secret\n", "utf-8")
    directory = load_directory(path).with_known_units({"gov", "gov/minfin"})
    assert [p.message for p in directory.problems] == [
        "unit `gov/secret` (2 users) is not in the policy"
    ]


def test_every_problem_names_its_own_line_and_a_hint_that_fits(tmp_path: Path) -> None:
    """An unknown unit is reported on its first user's line, not line 0, and each problem
    gets a hint that fits it, not the unknown-unit hint."""
    path = tmp_path / "d.csv"
    path.write_text(
        "user,unit\na,gov/minfin\n,gov/minfin\nb,gov/secret\nc,gov/secret\na,gov\n", "utf-8"
    )
    directory = load_directory(path).with_known_units({"gov", "gov/minfin"})
    problems = {p.message: p for p in directory.problems}
    unit = problems["unit `gov/secret` (2 users) is not in the policy"]
    assert unit.line == 4  # the first user in that unit
    assert unit.hint is not None and "`units:`" in unit.hint
    empty = problems["empty `user`"]
    assert empty.line == 3 and empty.hint is not None and "units" not in empty.hint
    twice = problems["user `a` already listed on line 2"]
    assert twice.line == 6 and twice.hint is not None and "units" not in twice.hint
    assert unit.format() == f"{path}:4: {unit.message} (hint: {unit.hint})"


def test_ldif_problems_point_at_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "d.ldif"
    path.write_text(
        LDIF + "\n# a comment\n\ndn: uid=x,ou=secret,ou=gov,dc=example,dc=org\n"
        "objectClass: person\nuid: x\n",
        "utf-8",
    )
    directory = load_directory(path).with_known_units(
        {"gov", "gov/minfin", "gov/minfin/budget", "rostec", "rostec/cii"}
    )
    lines = LDIF.splitlines()
    service = lines.index("dn: cn=Service Account,dc=example,dc=org") + 1
    assert [(p.line, p.message) for p in directory.problems] == [
        (
            service,
            "entry `cn=Service Account,dc=example,dc=org` has no uid, sAMAccountName or mail",
        ),
        (len(lines) + 4, "unit `gov/secret` (1 user) is not in the policy"),
    ]
    assert all(p.hint for p in directory.problems)


def test_validate_reports_directory_problems_with_their_lines_and_hints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.cli.test_cli import POLICY, run

    path = tmp_path / "d.csv"
    path.write_text("user,unit\na,gov/minfin/budget\n,gov/minfin\nb,gov/secret\n", "utf-8")
    code, out, _ = run(["validate", POLICY, "-d", str(path), "--at", "2023-07-01"], capsys)
    assert code == 0
    found = [line for line in out.splitlines() if ": directory: " in line]
    assert len(found) == 2
    assert found[0].startswith(f"warning: {path}:3: directory: empty `user` (hint: ")
    assert "units" not in found[0]
    assert found[1].startswith(
        f"warning: {path}:4: directory: unit `gov/secret` (1 user) is not in the policy (hint: "
    )


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400), st.sampled_from(["d.csv", "d.ldif"]))
def test_hostile_files_give_directory_errors_only(tmp_path: Path, data: bytes, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    try:
        load_directory(path)
    except DirectoryError as exc:
        assert str(path) in exc.message
