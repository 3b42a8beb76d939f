"""`devicegate audit`: judge past logs under a policy, as of each event's own time."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Annotated

import typer

from devicegate.audit.progress import Reporter
from devicegate.cli.common import (
    DevicesOpt,
    DirectoryOpt,
    JsonOpt,
    PolicyOpt,
    err,
    load_snapshot,
    write_json,
)
from devicegate.defaults import POSTFIX_MATCH, POSTFIX_WINDOW


class RichReporter(Reporter):
    """Rich progress bars on stderr: bytes ingested, then the judging phases."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.task: object = None
        self.started = False

    def start(self, total_bytes: int, files: int) -> None:
        self.progress.start()
        self.started = True
        self.task = self.progress.add_task(f"ingesting {files} new file(s)", total=total_bytes)

    def file(self, path: Path, fmt: str) -> None:
        self.progress.update(self.task, description=f"ingesting {path.name} ({fmt})")  # type: ignore[arg-type]

    def advance(self, done: int) -> None:
        self.progress.advance(self.task, done)  # type: ignore[arg-type]

    def phase(self, text: str) -> None:
        self.progress.update(self.task, description=text)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self.started:
            self.progress.stop()
            self.started = False


def audit(
    logs: Annotated[list[Path], typer.Argument(help="Log files or directories (gzip is fine).")],
    policy: PolicyOpt,
    directory: DirectoryOpt = None,
    devices: DevicesOpt = None,
    resource: Annotated[
        str | None, typer.Option("--resource", "-r", help="What the logs stand for (web, vpn, …).")
    ] = None,
    fmt: Annotated[
        str,
        typer.Option("--format", help="auto|nginx|w3c|dovecot|postfix|radius|decisions"),
    ] = "auto",
    engine: Annotated[str, typer.Option("--engine", help="duckdb (default) or spark.")] = "duckdb",
    master: Annotated[
        str | None, typer.Option("--master", help="Spark master URL (default local[*]).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Directory for Parquet, CSV, report.html.")
    ] = None,
    year: Annotated[
        int | None, typer.Option("--year", help="Year of BSD syslog stamps (default: file mtime).")
    ] = None,
    postfix_window: Annotated[
        str,
        typer.Option(
            "--postfix-window",
            help="How old a device sighting a Postfix submission may be decided from "
            "(as `serve --postfix-window`).",
        ),
    ] = POSTFIX_WINDOW,
    postfix_match: Annotated[
        str,
        typer.Option(
            "--postfix-match",
            help="Which sightings in the window decide a Postfix submission: `any` (the most "
            "severe over every identified device) or `newest` (as `serve --postfix-match`).",
        ),
    ] = POSTFIX_MATCH,
    as_json: JsonOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress, no chatter.")] = False,
) -> None:
    """Judge past logs: violations, exceptions and per-unit compliance over time."""
    from devicegate.audit.run import AuditOptions, input_digest, reuse_previous, run_audit
    from devicegate.errors import UsageError
    from devicegate.policy.schema import parse_duration

    try:
        window = parse_duration(postfix_window)
    except ValueError as exc:
        raise UsageError(f"--postfix-window: {exc}") from None
    options = AuditOptions(
        logs=logs,
        out=out,
        format=fmt,
        resource=resource,
        engine=engine,
        master=master,
        year=year,
        smtp_window=window,
        smtp_match=postfix_match,
    )
    from devicegate.sources import is_source_file

    # a source YAML says where the users or devices live, not what they are: its bytes cannot
    # tell whether the directory changed, so a run on one never reuses the last one's results
    live = any(p is not None and is_source_file(p) for p in (directory, devices))
    if out is not None and policy and not live:  # unchanged inputs: the last run's results
        try:
            options.inputs = input_digest([*policy, directory, devices])
        except OSError:
            options.inputs = None  # loading the snapshot below says what is wrong
    result = reuse_previous(options)
    if result is None:
        snapshot = load_snapshot(policy, directory, devices, quiet=quiet)
        # the snapshot (a user object per directory row) lives as long as the command: out
        # of the cyclic GC's sight, the collections the judging triggers skip it
        gc.freeze()
        result = run_audit(snapshot, options, None if quiet else RichReporter())
    elif not quiet:
        err(
            f"policy {result.summary['policy_version']}: policy, directory, inventory and logs "
            f"unchanged since the last audit in {out}: its results are reused"
        )
    data = result.summary
    if as_json:
        write_json(data)
        return
    if not quiet:
        reused = len(result.reused)
        err(
            f"read {len(result.ingested)} file(s)"
            + (f" ({reused} already ingested, reused)" if reused else "")
        )
    typer.echo(
        f"{data['events']} events, {data['violations']} violations, {data['excepted']} excepted, "
        f"{data['report_only_hits']} report-only hits, {data['bad_lines']} bad lines "
        f"({data['first_event']} … {data['last_event']}; policy {data['policy_version']})"
    )
    for unit, row in sorted(data["by_unit"].items()):
        typer.echo(
            f"  {unit:<32} {row['events']:>9} events {row['violations']:>8} violations "
            f"{row['users_violating']:>5} users violating"
            + (f"  (deadline {row['deadline']})" if row["deadline"] else "")
        )
    for bad in data["bad_line_sample"][:5]:
        typer.echo(f"  bad line {bad['file']}:{bad['line']}: {bad['reason']}")
    if out is not None and not quiet:
        err(f"wrote {out}/report.html, Parquet and CSV tables")


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)
