"""The public surface of devicegate.triage, pinned so a change to it is deliberate."""

from __future__ import annotations

import typer

import devicegate.triage as triage
from devicegate.cli.triage_cmd import app
from devicegate.errors import DevicegateError, InputError


def test_public_names() -> None:
    assert sorted(triage.__all__) == [
        "ArtefactError",
        "Backup",
        "BackupCorruptError",
        "Coverage",
        "Detection",
        "DeviceInfo",
        "IndicatorError",
        "IndicatorIndex",
        "Limits",
        "NotABackupError",
        "Options",
        "PasswordRequiredError",
        "RiskAttributes",
        "ScanReport",
        "TriageError",
        "Verdict",
        "WrongPasswordError",
        "load_indicators",
        "open_backup",
        "scan_backup",
    ]


def test_errors_share_the_devicegate_root() -> None:
    for name in ("NotABackupError", "BackupCorruptError", "WrongPasswordError", "IndicatorError"):
        error = getattr(triage, name)
        assert issubclass(error, InputError) and issubclass(error, DevicegateError)
        assert error.exit_code == 1


def test_cli_app_is_a_typer_with_the_two_commands() -> None:
    assert isinstance(app, typer.Typer)
    names = {
        command.name or command.callback.__name__
        for command in app.registered_commands
        if command.callback
    }
    assert names == {"scan", "scan-many"}


def test_every_artefact_is_documented_in_the_readme() -> None:
    from pathlib import Path

    from devicegate.triage.artefacts import ARTEFACTS

    readme = (Path(__file__).resolve().parents[2] / "docs" / "triage.md").read_text()
    for artefact in ARTEFACTS:
        assert f"`{artefact.name}`" in readme, artefact.name


def test_every_setting_of_the_cli_is_documented() -> None:
    """An environment variable that changes what a scan reads is a setting: documented."""
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "triage.md").read_text()
    group = typer.main.get_command(app)  # a group of typer's own click: no isinstance here
    envvars = {
        param.envvar
        for sub in group.commands.values()  # type: ignore[attr-defined]
        for param in sub.params
        if isinstance(param.envvar, str)
    }
    assert envvars == {"DEVICEGATE_TRIAGE_MESSAGE_TEXT"}
    for name in envvars:
        assert f"| `{name}` |" in page, name
