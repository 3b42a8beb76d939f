"""A broken policy gives every command the same `file:line: field: message` error, exit 1:
an impossible date such as `from: 2023-08-34` must never surface as `internal error:
ValueError` (exit 70), and a reload must answer with the file and the line."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.cli.test_cli import DIRECTORY, EXAMPLE, POLICY, run

DEVICES = str(EXAMPLE / "devices.csv")
LOG = str(EXAMPLE / "logs" / "nginx" / "access.log")


def broken_policy(tmp_path: Path) -> tuple[Path, str]:
    """The bundled policy with an impossible date, and the error every command must give."""
    text = Path(POLICY).read_text(encoding="utf-8")
    assert text.count("from: 2023-08-14") == 1
    bad = text.replace("from: 2023-08-14", "from: 2023-08-34")
    line = bad.splitlines().index("    from: 2023-08-34") + 1
    path = tmp_path / "policy.yaml"
    path.write_text(bad, encoding="utf-8")
    expected = (
        f"error: {path}:{line}: rules[2].from: invalid value `2023-08-34`: "
        "day is out of range for month"
    )
    return path, expected


COMMANDS = {
    "validate": lambda p, tmp: ["validate", p, "-d", DIRECTORY],
    "check": lambda p, tmp: ["check", "-p", p, "-d", DIRECTORY, "-u", "a", "-r", "email", "-q"],
    "explain": lambda p, tmp: ["explain", "-p", p, "-u", "a", "-r", "email", "-q"],
    "impact": lambda p, tmp: ["impact", "-p", p, "-d", DIRECTORY, "--devices", DEVICES, "-q"],
    "audit": lambda p, tmp: ["audit", "-p", p, "-d", DIRECTORY, "-o", f"{tmp}/out", "-q", LOG],
    "notify": lambda p, tmp: [
        "notify",
        *("-p", p, "-d", DIRECTORY, "--devices", DEVICES),
        *("--store", f"sqlite:///{tmp}/store.db", "--dry-run"),
    ],
    "serve": lambda p, tmp: [
        "serve",
        *("-p", p, "-d", DIRECTORY, "--store", f"sqlite:///{tmp}/store.db", "--port", "0"),
    ],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_impossible_date_is_the_same_error_everywhere(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, expected = broken_policy(tmp_path)
    code, out, err = run(COMMANDS[command](str(path), tmp_path), capsys)
    assert code == 1, err
    if command == "validate":  # the lint lists every finding on stdout
        assert expected in out
    else:
        assert err.strip().splitlines()[-1] == expected


def test_a_reload_answers_with_file_and_line(tmp_path: Path) -> None:
    from devicegate.server import ServerConfig, create_app
    from devicegate.server.admin import reload_policy

    path, expected = broken_policy(tmp_path)
    path.write_text(Path(POLICY).read_text(encoding="utf-8"), encoding="utf-8")
    config = ServerConfig(
        policy=(path,), directory=Path(DIRECTORY), store_url=f"sqlite:///{tmp_path}/s.db"
    )
    app = create_app(config)
    good = app.service.snapshot.version
    broken_policy(tmp_path)  # rewrites the file in place
    ok, payload = asyncio.run(reload_policy(app.service))
    assert not ok and payload["policy_version"] == good
    assert payload["error"] == expected.removeprefix("error: ")
    assert app.service.snapshot.version == good
