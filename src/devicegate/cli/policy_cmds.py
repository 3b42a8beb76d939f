"""`devicegate validate` and `devicegate schema`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from devicegate.cli.common import AtOpt, JsonOpt, err, parse_at, write_json
from devicegate.directory import load_directory
from devicegate.inventory import load_inventory
from devicegate.policy import Severity, check_policy, json_schema


def validate(
    files: Annotated[list[Path], typer.Argument(help="Policy YAML files, merged as one policy.")],
    directory: Annotated[
        Path | None,
        typer.Option(
            "--directory", "-d", help="Also check units, groups and users against this directory."
        ),
    ] = None,
    devices: Annotated[
        Path | None,
        typer.Option(
            "--devices", help="Also check devices named by exceptions against this inventory."
        ),
    ] = None,
    at: AtOpt = None,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail too.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List every error and lint finding as `file:line: field: message`.

    Exit 0 when valid (warnings allowed unless --strict), 1 when invalid, 2 on usage errors.
    """
    loaded, issues = check_policy(
        files,
        directory=load_directory(directory) if directory else None,
        inventory=load_inventory(devices) if devices else None,
        now=parse_at(at),
    )
    failing = [
        i
        for i in issues
        if i.severity is Severity.ERROR or (strict and i.severity is Severity.WARNING)
    ]
    if as_json:
        write_json(
            {
                "valid": not failing,
                "policy_version": loaded.version if loaded else None,
                "issues": [i.as_json() for i in issues],
            }
        )
    else:
        for issue in issues:
            typer.echo(f"{issue.severity.value}: {issue.format()}")
        counts = {s: sum(1 for i in issues if i.severity is s) for s in Severity}
        summary = ", ".join(f"{n} {s.value}(s)" for s, n in counts.items() if n) or "no findings"
        if loaded is not None:
            err(
                f"policy {loaded.version}: {len(loaded.policy.rules)} rules, "
                f"{len(loaded.policy.exceptions)} exceptions in {len(loaded.files)} file(s): "
                f"{'invalid' if failing else 'valid'} ({summary})"
            )
        else:
            err(f"invalid ({summary})")
    raise typer.Exit(1 if failing else 0)


def schema() -> None:
    """Print the JSON Schema of the policy file (point your editor's YAML plugin at it)."""
    typer.echo(json.dumps(json_schema(), indent=2))


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
    app.command("schema")(schema)
