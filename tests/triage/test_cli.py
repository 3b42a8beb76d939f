"""The CLI contract of `devicegate triage`, through typer's CliRunner on the triage app."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from devicegate.cli import triage_cmd as cli
from devicegate.cli.triage_cmd import app

from . import fakes
from .builder import BASE
from .scenarios import PASSWORD, base_builder, build

Make = Callable[[str], Path]
ENV = {"BACKUP_PW": PASSWORD}


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env or ENV)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.exit_code, result.stdout, result.stderr


def scan_json(path: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = run("scan", str(path), "--password-env", "BACKUP_PW", "--json", *extra)
    return code, json.loads(out)


@pytest.mark.parametrize(
    ("kind", "verdict", "code"),
    [
        ("clean", "clean", 0),
        ("missing", "inconclusive", 3),
        ("clean-plain", "inconclusive", 3),
        ("heuristic", "suspicious", 4),
        ("triangulation", "compromised", 5),
    ],
)
def test_exit_codes_per_verdict(make: Make, kind: str, verdict: str, code: int) -> None:
    exit_code, data = scan_json(make(kind))
    assert (data["verdict"], exit_code) == (verdict, code)


def test_json_contract_keys(make: Make) -> None:
    _, data = scan_json(make("triangulation"))
    assert {"verdict", "detections", "coverage", "indicators", "device"} <= set(data)
    detections = data["detections"]
    assert isinstance(detections, list) and detections
    assert {"kind", "source", "value", "time"} <= set(detections[0])
    assert set(data["coverage"].values()) <= {"parsed", "missing", "error"}
    sets = data["indicators"]
    assert isinstance(sets, dict)
    assert set(sets["operation_triangulation.stix2"]) >= {"sha256", "count"}
    assert {"serial", "udid", "ios_version"} <= set(data["device"])


def test_exit_code_table_is_documented() -> None:
    doc = cli.__doc__ or ""
    for code, word in (
        (0, "clean"),
        (1, "error"),
        (2, "usage"),
        (3, "inconclusive"),
        (4, "suspicious"),
        (5, "compromised"),
    ):
        assert f"| {code}    | {word}" in doc


def test_errors_exit_1_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    code, out, err = run("scan", str(tmp_path), "--json")
    assert code == 1 and out == ""
    (line,) = [x for x in err.splitlines() if x.startswith("error: ")]
    assert "not an iOS backup" in line


def test_wrong_password(make: Make) -> None:
    code, _, err = run(
        "scan", str(make("clean")), "--password-env", "BACKUP_PW", env={"BACKUP_PW": "nope"}
    )
    assert code == 1 and "does not unlock" in err


def test_password_env_unset(make: Make) -> None:
    code, _, err = run("scan", str(make("clean")), "--password-env", "NOT_SET_ANYWHERE", env={})
    assert code == 1 and "NOT_SET_ANYWHERE" in err


def test_no_tty_and_no_password_env_is_an_error(make: Make) -> None:
    code, _, err = run("scan", str(make("clean")), env={})
    assert code == 1 and "--password-env" in err


def test_password_is_not_a_command_line_option() -> None:
    code, _, _ = run("scan", ".", "--password", "x")
    assert code == 2


def test_corrupt_indicator_file_is_an_error(make: Make, tmp_path: Path) -> None:
    bad = tmp_path / "bad.stix2"
    bad.write_text("{")
    code, _, err = run(
        "scan", str(make("clean")), "--password-env", "BACKUP_PW", "--iocs", str(bad)
    )
    assert code == 1 and "bad.stix2" in err


def test_quarantine_without_store_is_a_usage_error(make: Make) -> None:
    code, _, err = run("scan", str(make("clean")), "--quarantine")
    assert code == 2 and "--store" in err
    code, _, err = run("scan", str(make("clean")), "--store", "sqlite:///x.db")
    assert code == 2 and "--quarantine" in err


def test_human_output_says_what_was_loaded(make: Make) -> None:
    code, out, err = run("scan", str(make("triangulation")), "--password-env", "BACKUP_PW")
    assert code == 5
    assert "verdict: compromised" in out and "triangulation-exact" in out
    assert "operation_triangulation.stix2 112 loaded" in err


def test_out_writes_mvt_shaped_files(make: Make, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, data = scan_json(make("triangulation"), "--out", str(out))
    assert code == 5
    with (out / "timeline.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["UTC Timestamp", "Plugin", "Event", "Description"]
    assert any(row[3] == "BackupAgent" for row in rows[1:])
    alerts = json.loads((out / "alerts.json").read_text())
    assert alerts == data["detections"]
    assert json.loads((out / "report.json").read_text())["verdict"] == "compromised"


def test_shutdown_log_option(make: Make, tmp_path: Path) -> None:
    log = tmp_path / "shutdown.log"
    log.write_text("remaining client pid: 8 (/private/var/tmp/x)\nSIGTERM: [1685700000]\n")
    code, data = scan_json(make("clean"), "--shutdown-log", str(log))
    assert code == 4 and data["coverage"]["shutdown_log"] == "parsed"


def _fleet(tmp_path: Path, kinds: list[str]) -> Path:
    fleet = tmp_path / "fleet"
    for kind in kinds:
        build(kind, fleet / kind)
    (fleet / "not-a-backup").mkdir()
    return fleet


def test_scan_many_json_and_worst_exit_code(tmp_path: Path) -> None:
    fleet = _fleet(tmp_path, ["clean", "triangulation", "missing"])
    code, out, _ = run("scan-many", str(fleet), "--password-env", "BACKUP_PW", "--json", "-j", "2")
    rows = json.loads(out)
    assert {Path(r["backup"]).name: r["verdict"] for r in rows} == {
        "clean": "clean",
        "missing": "inconclusive",
        "triangulation": "compromised",
    }
    assert code == 5


def test_scan_many_table_and_error_rows(tmp_path: Path) -> None:
    fleet = _fleet(tmp_path, ["clean", "missing"])
    broken = fleet / "broken"
    build("clean", broken)
    (broken / "Manifest.db").write_bytes(b"garbage")
    code, out, _ = run("scan-many", str(fleet), "--password-env", "BACKUP_PW", "-j", "1")
    assert "broken" in out and "error" in out and "clean" in out
    assert "1 error, 1 inconclusive, 1 clean" in out
    assert code == 1  # an unreadable backup outranks inconclusive and clean


def test_scan_many_out_writes_one_folder_per_backup(tmp_path: Path) -> None:
    fleet = _fleet(tmp_path, ["clean", "heuristic"])
    out = tmp_path / "out"
    code, _, _ = run("scan-many", str(fleet), "--password-env", "BACKUP_PW", "--out", str(out))
    assert code == 4
    assert (out / "clean" / "timeline.csv").is_file() and (
        out / "heuristic" / "alerts.json"
    ).is_file()


def test_scan_many_empty_folder(tmp_path: Path) -> None:
    code, _, err = run("scan-many", str(tmp_path))
    assert code == 2 and "no backup" in err


def _linked(tmp_path: Path) -> Path:
    """A clean phone but for one message linking to a Triangulation domain."""
    sms = fakes.sms([("friend@example.org", "look https://www.backuprabbit.com/x", BASE)])
    fleet = tmp_path / "fleet"
    return base_builder(fleet / "linked", password=PASSWORD, sms=sms).write()


@pytest.mark.parametrize(
    ("setting", "flag", "code"),
    [
        (None, None, 0),
        ("1", None, 4),
        ("true", None, 4),
        ("0", None, 0),
        ("1", "--no-message-text", 0),
        ("0", "--include-message-text", 4),
        ("perhaps", None, 2),
    ],
)
def test_message_text_default_is_a_deployment_setting(
    tmp_path: Path, setting: str | None, flag: str | None, code: int
) -> None:
    env = dict(ENV)
    if setting is not None:
        env["DEVICEGATE_TRIAGE_MESSAGE_TEXT"] = setting
    backup = _linked(tmp_path)
    flags = [flag] if flag else []
    assert run("scan", str(backup), "--password-env", "BACKUP_PW", *flags, env=env)[0] == code
    fleet = str(backup.parent)
    assert run("scan-many", fleet, "--password-env", "BACKUP_PW", *flags, env=env)[0] == code


def test_reports_say_links_were_not_checked_and_how(tmp_path: Path) -> None:
    backup = _linked(tmp_path)
    code, out, _ = run("scan", str(backup), "--password-env", "BACKUP_PW")
    assert code == 0
    text = " ".join(out.split())  # the console wraps long lines
    assert "- not checked: links in SMS/iMessage text (message text is off" in text
    assert "--include-message-text" in text
    assert "sms=parsed except links in SMS/iMessage text," in text
    code, data = scan_json(backup)
    (item,) = data["not_checked"]["sms"]
    assert "DEVICEGATE_TRIAGE_MESSAGE_TEXT=1" in item
    code, out, _ = run("scan-many", str(backup.parent), "--password-env", "BACKUP_PW")
    assert "not checked in 1 backup(s): links in SMS/iMessage text" in out
    code, data = scan_json(backup, "--include-message-text")
    assert code == 4 and data["not_checked"] == {}
