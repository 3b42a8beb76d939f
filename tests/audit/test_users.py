"""The audit takes a logged user name as `devicegate serve` takes a presented one.

`DOMAIN\\login` and `login@DOMAIN` go through the policy's `login_domains`
(`devicegate.directory.names`); a domain the map lacks names nobody — the domain is never
stripped to guess the login. Two officials share the login `i.petrov` in two ministries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from devicegate.audit import AuditOptions, read_events, run_audit
from devicegate.directory import Directory, User
from devicegate.model import Request, Signals
from devicegate.policy import Snapshot, compile_policy, decide, load_policy
from tests.audit.conftest import POLICY, USERS
from tests.audit.logs import W3C_FIELDS, w3c_header, w3c_line

PETROVS = [
    User("i.petrov", "gov/minfin", frozenset(), "i.petrov@minfin.example"),
    User("i.petrov2", "gov/minpromtorg", frozenset(), "i.petrov@minpromtorg.example"),
]
DOMAINS = {
    "MINFIN": "{login}@minfin.example",
    "MINPROMTORG": "{login}@minpromtorg.example",
}
AT = datetime(2023, 7, 20, 9, 0, tzinfo=UTC)  # wave 1 (minpromtorg) in force, minfin's not
IPHONE = ("Apple-iPhone14C5/2006.2", "iPhone")


@pytest.fixture
def mapped(tmp_path: Path) -> Snapshot:
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({**POLICY, "login_domains": DOMAINS}), encoding="utf-8")
    return compile_policy(load_policy([policy]), Directory([*USERS, *PETROVS]))


def audit_names(
    tmp_path: Path, snapshot: Snapshot, names: list[str]
) -> dict[int, dict[str, object]]:
    """Each name's ActiveSync request from an iPhone, one IIS line each, audited."""
    lines = w3c_header(W3C_FIELDS)
    for i, name in enumerate(names):
        lines.append(w3c_line(AT, name, f"DEV{i}", IPHONE[1], IPHONE[0]))
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "u_ex2307.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    run_audit(snapshot, AuditOptions(logs=[logs], out=tmp_path / "out"))
    # the IIS header takes three lines
    return {row["line"] - 4: row for row in read_events(tmp_path / "out").to_pylist()}


def test_domain_logins_resolve_to_the_directory_user_as_serve_does(
    tmp_path: Path, mapped: Snapshot
) -> None:
    names = ["MINFIN\\i.petrov", "MINPROMTORG\\i.petrov", "MINCULT\\i.petrov", "minfin\\I.Petrov"]
    rows = audit_names(tmp_path, mapped, names)
    # the minfin official: e-mail wave not yet in force
    assert (rows[0]["user"], rows[0]["unit"], rows[0]["action"]) == (
        "i.petrov@minfin.example",
        "gov/minfin",
        "allow",
    )
    # the other i.petrov, in wave 1: blocked — stripping the domain made him the first one
    assert (rows[1]["user"], rows[1]["unit"], rows[1]["action"], rows[1]["rule"]) == (
        "i.petrov@minpromtorg.example",
        "gov/minpromtorg",
        "block",
        "wave-1",
    )
    # a domain the map lacks names nobody: an unknown user, shown as presented
    assert (rows[2]["user"], rows[2]["unit"], rows[2]["rule"]) == (
        "MINCULT\\i.petrov",
        "(not in directory)",
        "builtin:unknown-user",
    )
    assert rows[3]["user"] == "i.petrov@minfin.example"  # case is folded, as online
    for i, name in enumerate(names):
        query = f"Cmd=Sync&User={name}&DeviceId=DEV{i}&DeviceType={IPHONE[1]}"
        signals = Signals(user_agent=IPHONE[0], activesync_query=query)
        online = decide(mapped, Request(name, "email", AT, signals))
        assert (rows[i]["action"], rows[i]["rule"]) == (online.action.value, online.rule), name


def test_without_the_map_a_domain_login_is_nobody(tmp_path: Path, snapshot: Snapshot) -> None:
    rows = audit_names(tmp_path, snapshot, ["GOV\\ivanov", "ivanov"])
    assert rows[0]["unit"] == "(not in directory)"
    assert rows[0]["rule"] == "builtin:unknown-user"
    assert (rows[1]["user"], rows[1]["action"]) == ("ivanov@minpromtorg.example", "block")
