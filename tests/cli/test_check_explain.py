"""`check` and `explain` share their plumbing (load, resource check, `--at` in the policy's
zone): the same options must give the same decision, and the same errors."""

from __future__ import annotations

import json

import pytest

from tests.cli.test_cli import DIRECTORY, POLICY, run

# gov/minenergo, no exception: wave 2 blocks work e-mail from 2023-08-14, Moscow time
USER = "p.sidorov72"
IPHONE = "Apple-iPhone14C2/2003.1.1"


@pytest.mark.parametrize(
    ("at", "action"),
    [
        ("2023-08-13T23:30", "warn"),  # naive: Moscow, still the notice period (UTC: blocked)
        ("2023-08-14T00:30", "block"),
        ("2023-08-13T21:30+00:00", "block"),  # 00:30 in Moscow
    ],
)
def test_check_and_explain_decide_alike(
    at: str, action: str, capsys: pytest.CaptureFixture[str]
) -> None:
    options = ["-p", POLICY, "-d", DIRECTORY, "-u", USER, "-r", "email", "--at", at]
    options += ["--user-agent", IPHONE]
    code, out, err = run(["check", *options, "--json"], capsys)
    assert code == 0 and json.loads(out)["action"] == action
    assert err == ""  # --json is quiet: stdout stays JSON, stderr says nothing
    code, out, err = run(["explain", *options], capsys)
    assert code == 0, err
    assert out.splitlines()[-1].startswith(f"decision: {action} by rule `apple-wave-2-email`")
    assert err.startswith("policy ")  # explain says what it loaded unless --quiet
    code, _, err = run(["explain", *options, "--quiet"], capsys)
    assert code == 0 and err == ""


@pytest.mark.parametrize("command", ["check", "explain"])
def test_unknown_resource_is_refused_alike(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run([command, "-p", POLICY, "-u", USER, "-r", "emial", "-q"], capsys)
    assert code == 2 and out == ""
    assert err.strip() == "error: unknown resource `emial` (hint: did you mean `email`?)"
