"""The CLI contract: exit codes, one-line errors, JSON keys, JSON lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from devicegate.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "apple-ban"
POLICY = str(EXAMPLE / "policy.yaml")
DIRECTORY = str(EXAMPLE / "directory.csv")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), out, err


def test_validate_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["validate", POLICY, "--at", "2023-07-01"], capsys)[0] == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "rules:\n  - id: x\n    when: {vendor: [Apple]}\n    resources: [mail]\n"
        "    from: 2023-07-17\n",
        "utf-8",
    )
    code, out, _ = run(["validate", str(bad)], capsys)
    assert code == 1
    assert f"error: {bad}:4: rules[0].resources[0]: unknown resource `mail`" in out
    assert run(["validate"], capsys)[0] == 2
    assert run(["validate", POLICY, "--at", "yesterday"], capsys)[0] == 2


def test_validate_strict_fails_on_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["validate", POLICY, "--at", "2030-01-01", "--strict", "--json"], capsys)
    report = json.loads(out)
    assert code == 1 and not report["valid"]
    assert {"expired-exception"} <= {i["code"] for i in report["issues"]}


def test_schema_is_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["schema"], capsys)
    schema = json.loads(out)
    assert code == 0 and schema["title"] == "devicegate policy"
    assert "from" in schema["$defs"]["Rule"]["properties"]


def test_identify_json_keys(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["identify", "--user-agent", "Apple-iPhone14C2/2003.1.1", "--json"], capsys)
    profile = json.loads(out)
    assert code == 0
    assert {
        "vendor",
        "platform",
        "model",
        "os_version",
        "confidence",
        "evidence",
        "conflicts",
    } <= set(profile)
    assert (profile["vendor"], profile["platform"]) == ("Apple", "iOS")


def test_check_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["check", "--policy", POLICY, "--directory", DIRECTORY, "--user", "a"]
    code, _, err = run([*base, "--resource", "emial"], capsys)
    assert code == 2 and err.strip().splitlines()[-1] == (
        "error: unknown resource `emial` (hint: did you mean `email`?)"
    )
    code, _, err = run(
        ["check", "--policy", str(tmp_path / "none.yaml"), "--user", "a", "--resource", "email"],
        capsys,
    )
    assert code == 1 and "no such file" in err and "Traceback" not in err
    code, _, err = run([*base, "--resource", "email", "--at", "17/07/2023"], capsys)
    assert code == 2 and "is not an ISO-8601 date" in err


def test_identify_jsonl_keeps_order_and_reports_bad_lines() -> None:
    lines = [
        json.dumps({"user_agent": "Apple-iPhone14C2/2003.1.1"}),
        "not json",
        json.dumps({"mac": "3c:22:fb:00:00:01"}),
        json.dumps({"imap_id": '("name" "Thunderbird" "version" "115.0")', "colour": "red"}),
        json.dumps([1, 2]),
    ] * 2000
    result = subprocess.run(
        [sys.executable, "-m", "devicegate.cli", "identify", "--jsonl"],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == len(lines)
    assert result.returncode == 1
    assert out[0]["vendor"] == "Apple" and out[2]["vendor"] == "Apple"
    assert out[1] == {"error": "invalid JSON: Expecting value: line 1 column 1 (char 0)", "line": 2}
    assert out[3]["platform"] is None or "vendor" in out[3]
    assert out[4]["error"] == "each line must be a JSON object"


@pytest.mark.parametrize("value", ["\x00\x01\x02", "A" * 100_000, "é" * 5000, "() (" * 100])
def test_hostile_header_values_never_traceback(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for flag in ("--user-agent", "--imap-id", "--activesync-query", "--mac"):
        code, out, err = run(["identify", flag, value, "--json"], capsys)
        assert code == 0, err
        assert "vendor" in json.loads(out)


def test_every_command_is_documented() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    readme = "\n".join(page.read_text(encoding="utf-8") for page in pages)
    import typer.main

    from devicegate.cli import app

    command = typer.main.get_command(app)
    names = list(getattr(command, "commands", {}))
    assert names, "no commands registered"
    missing = [name for name in names if f"devicegate {name}" not in readme]
    assert not missing, f"undocumented commands: {missing}"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    code, out, err = run(["--version"], capsys)
    assert code == 0 and err == ""
    assert out == f"devicegate {version('devicegate')}\n"
