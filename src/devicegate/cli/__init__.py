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

from devicegate import installed_version
from devicegate.cli import (
    audit_cmd,
    console_cmd,
    decide_cmds,
    decisions_cmd,
    devices_cmd,
    impact_cmd,
    notify_cmd,
    policy_cmds,
    serve_cmd,
    sources_cmd,
    triage_cmd,
)
from devicegate.errors import DevicegateError

app = typer.Typer(
    name="devicegate",
    help="Take a class of devices out of work use: policy, identification, enforcement, audit.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"devicegate {installed_version()}")
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


#: Every command module registers its commands with `register(app)`, in the order `--help`
#: lists them. Each keeps its heavy imports inside its commands, so that starting the
#: `devicegate` command imports none of DuckDB, Arrow, SQLAlchemy or the web stack.
COMMAND_MODULES = (
    policy_cmds,
    decide_cmds,
    impact_cmd,
    serve_cmd,
    audit_cmd,
    notify_cmd,
    devices_cmd,
    decisions_cmd,
    sources_cmd,
    console_cmd,
    triage_cmd,
)
for _module in COMMAND_MODULES:
    _module.register(app)


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
