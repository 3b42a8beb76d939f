"""The `devicegate` command: one entry point, a sub-command per feature.

Errors raised on purpose (`DevicegateError`) print one line, `error: …`, and exit with the
error's code; usage errors exit 2. No traceback reaches the user unless DEVICEGATE_DEBUG=1.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import click
import typer

from devicegate.cli.decide_cmds import check, explain_cmd, identify
from devicegate.cli.impact_cmd import impact_cmd
from devicegate.cli.policy_cmds import schema, validate
from devicegate.errors import DevicegateError

app = typer.Typer(
    name="devicegate",
    help="Take a class of devices out of work use: policy, identification, enforcement, audit.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def version() -> str:
    """The installed distribution's version (what `pip show devicegate` says)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("devicegate")
    except PackageNotFoundError:
        return "unknown (not installed: run from a source tree)"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"devicegate {version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Take a class of devices out of work use: policy, identification, enforcement, audit."""


app.command("validate")(validate)
app.command("schema")(schema)
app.command("identify")(identify)
app.command("check")(check)
app.command("explain")(explain_cmd)
app.command("impact")(impact_cmd)


#: Command modules that register themselves with `register(app)`: an explicit list, so
#: nothing is discovered implicitly at import time.
COMMAND_MODULES = (
    "devicegate.cli.serve_cmd",
    "devicegate.cli.devices_cmd",
    "devicegate.cli.decisions_cmd",
    "devicegate.cli.audit_cmd",
    "devicegate.cli.notify_cmd",
    "devicegate.cli.console_cmd",
)


def _mount() -> None:
    import importlib

    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # feature not part of this build
            raise
        module.register(app)
    try:
        triage = importlib.import_module("devicegate.triage.cli")
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("devicegate.triage"):
            raise
    else:
        app.add_typer(triage.app, name="triage", help="Triage iPhone backups for compromise.")


_mount()


#: Typer vendors its own copy of click: catch usage errors from both.
_TYPER_CLICK_ERROR: type[click.ClickException] = typer.BadParameter.__mro__[2]
USAGE_ERRORS: tuple[type[click.ClickException], ...] = (click.ClickException, _TYPER_CLICK_ERROR)


def main(argv: list[str] | None = None) -> None:
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="devicegate", standalone_mode=False)
    except (typer.Exit, click.exceptions.Exit) as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, click.exceptions.Abort):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except USAGE_ERRORS as exc:  # bad flags and arguments: click's own message, exit 2
        exc.show()
        sys.exit(exc.exit_code)
    except DevicegateError as exc:
        typer.echo(f"error: {exc.one_line()}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # a bug: say so on one line; the traceback only on request
        if os.environ.get("DEVICEGATE_DEBUG"):
            raise
        typer.echo(
            f"error: internal error: {type(exc).__name__}: {exc} "
            "(set DEVICEGATE_DEBUG=1 for a traceback)",
            err=True,
        )
        sys.exit(70)
    sys.exit(result if isinstance(result, int) else 0)
