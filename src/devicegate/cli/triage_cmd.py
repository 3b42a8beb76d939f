"""`devicegate triage`: scan iPhone backups for signs of compromise.

Commands::

    devicegate triage scan BACKUP_DIR [--iocs FILE]... [--no-default-iocs]
        [--password-env VAR] [--device ID] [--store URL] [--quarantine] [--out DIR]
        [--shutdown-log FILE] [--include-message-text | --no-message-text] [--json]
    devicegate triage scan-many DIR [same options, no --device/--shutdown-log] [--jobs N]

Setting: DEVICEGATE_TRIAGE_MESSAGE_TEXT=1 makes --include-message-text a deployment's
default (0 or unset: off, the privacy default); either flag overrides it.

Exit codes (`scan`; `scan-many` exits with the worst of its backups, ranked compromised >
suspicious > error > inconclusive > clean):

    | code | meaning                                                                  |
    |------|--------------------------------------------------------------------------|
    | 0    | clean: every required artefact parsed, nothing found                     |
    | 1    | error: not a backup, wrong or missing password, corrupt Manifest.db,     |
    |      | unusable indicator file, store not writable                              |
    | 2    | usage error: bad option combination (e.g. --quarantine without --store)  |
    | 3    | inconclusive: a required artefact missing or unreadable, or the backup's |
    |      | manifest shows tampering; nothing found in what could be read            |
    | 4    | suspicious: heuristic, indicator domain visited or messaged, indicator   |
    |      | sender, Apple threat notification, shutdown.log anomaly                  |
    | 5    | compromised: exact Triangulation hit, or a process / profile / file      |
    |      | indicator in system data                                                 |

The password never comes from the command line: `--password-env VAR` names an environment
variable, otherwise an interactive terminal is prompted.

With `--quarantine` the verdict is stored before anything is printed or written, and a
reader that goes away (`| head -1`) only ends the output: the verdict is still stored and
the exit code still says it.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TextIO

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from devicegate.cli.common import console
from devicegate.defaults import TRIAGE_MESSAGE_TEXT as MESSAGE_TEXT_SETTING
from devicegate.errors import DevicegateError, UsageError

if TYPE_CHECKING:
    from devicegate.triage import many
    from devicegate.triage.backup import PasswordSource
    from devicegate.triage.indicators import IndicatorIndex
    from devicegate.triage.result import ScanReport


app = typer.Typer(
    help="Triage iPhone backups for compromise (Operation Triangulation, STIX indicators).",
    no_args_is_help=True,
    add_completion=False,
)

IocsOpt = Annotated[
    list[Path] | None,
    typer.Option("--iocs", help="STIX 2.1 indicator file, added to the bundled sets (repeat)."),
]
NoDefaultsOpt = Annotated[
    bool, typer.Option("--no-default-iocs", help="Do not load the bundled indicator sets.")
]
PasswordEnvOpt = Annotated[
    str | None,
    typer.Option("--password-env", help="Environment variable holding the backup password."),
]
StoreOpt = Annotated[str | None, typer.Option("--store", help="Store URL to record verdicts.")]
QuarantineOpt = Annotated[
    bool,
    typer.Option("--quarantine", help="Record the verdict in --store; compromised = cut off."),
]
OutOpt = Annotated[
    Path | None, typer.Option("--out", help="Write timeline.csv, alerts.json, report.json.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
TextOpt = Annotated[
    bool,
    typer.Option(
        "--include-message-text/--no-message-text",
        envvar=MESSAGE_TEXT_SETTING,
        help="Read SMS/iMessage text for links (off by default for privacy: links unchecked).",
    ),
]


class _Console(Console):
    """rich's console, except that a reader who leaves does not end the process.

    rich's default answer to a broken pipe is `SystemExit(1)`: exit code "error", and a
    verdict not yet stored lost. Here the console falls silent and the `BrokenPipeError`
    goes on to `_reader_may_leave`, which silences the stream for good.
    """

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


_err = _Console(stderr=True)


@contextmanager
def _reader_may_leave(stream: TextIO) -> Iterator[None]:
    """Write to a reader that may have gone (`| head -1`).

    A broken pipe points the stream at /dev/null for the rest of the run instead of ending
    it: what follows (storing a verdict, the exit code) must not depend on who reads.
    """
    try:
        yield
        stream.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def _say_error(exc: DevicegateError) -> None:
    with _reader_may_leave(sys.stderr):
        typer.echo(f"error: {exc.message}", err=True)
        if exc.hint:
            typer.echo(f"hint: {exc.hint}", err=True)


def _fail(exc: DevicegateError) -> NoReturn:
    _say_error(exc)
    raise typer.Exit(exc.exit_code)


def _prompt_source() -> PasswordSource:
    from devicegate.triage.errors import PasswordRequiredError

    def ask() -> str:
        if not sys.stdin.isatty():
            raise PasswordRequiredError(
                "the backup is encrypted and no password was given",
                hint="use --password-env VAR (the password is never a command-line argument)",
            )
        return getpass.getpass("backup password: ")

    return ask


def _check_store_flags(store: str | None, quarantine: bool) -> None:
    """`--quarantine` and `--store` go together: neither is silently ignored."""
    if quarantine and not store:
        raise UsageError("--quarantine needs --store URL", hint="e.g. --store sqlite:///gate.db")
    if store and not quarantine:
        raise UsageError(
            "--store is only used to record verdicts with --quarantine",
            hint="add --quarantine to record the verdict in the store",
        )


def _load(iocs: list[Path] | None, no_defaults: bool, quiet: bool) -> IndicatorIndex:
    from devicegate.triage.indicators import load_indicators

    index = load_indicators(iocs or [], defaults=not no_defaults)
    if quiet:
        return index
    with _reader_may_leave(sys.stderr):
        for info in index.sets:
            _err.print(
                f"indicators: {info.name} {info.count} loaded"
                + (f", {info.skipped} skipped" if info.skipped else "")
                + f" sha256 {info.sha256[:16]}…",
                highlight=False,
            )
    return index


def _print_human(report: ScanReport, out: Console) -> None:
    device = report.device
    out.print(f"[bold]{report.backup}[/bold]  verdict: [bold]{report.verdict.value}[/bold]")
    out.print(
        f"device: serial {device.serial or '?'}  udid {device.udid or '?'}  "
        f"iOS {device.ios_version or '?'}  encrypted {device.encrypted}  "
        f"Lockdown Mode {report.risk.lockdown_mode}",
        highlight=False,
    )
    for reason in report.reasons:
        out.print(f"  - {reason}", highlight=False)
    if report.detections:
        table = Table("level", "kind", "source", "value", "time")
        for d in report.detections:
            time = d.time.isoformat() if d.time else ""
            table.add_row(d.level.value, d.kind, d.source, d.value[:80], time)
        out.print(table)
    coverage = ", ".join(
        f"{a.name}={a.coverage.value}"
        + "".join(f" except {item.split(' (', 1)[0]}" for item in a.not_checked)
        for a in report.artefacts
    )
    out.print(f"coverage: {coverage}", highlight=False)


@app.command()
def scan(
    backup_dir: Annotated[Path, typer.Argument(help="Backup folder (holds Manifest.plist).")],
    iocs: IocsOpt = None,
    no_default_iocs: NoDefaultsOpt = False,
    password_env: PasswordEnvOpt = None,
    device: Annotated[
        str | None, typer.Option("--device", help="Inventory device_id to link the verdict to.")
    ] = None,
    store: StoreOpt = None,
    quarantine: QuarantineOpt = False,
    out: OutOpt = None,
    shutdown_log: Annotated[
        Path | None, typer.Option("--shutdown-log", help="sysdiagnose shutdown.log to check.")
    ] = None,
    include_message_text: TextOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Triage one backup and print its verdict, evidence and coverage."""
    from devicegate.triage.artefacts import Options
    from devicegate.triage.backup import environ_password
    from devicegate.triage.quarantine import record
    from devicegate.triage.report import EXIT_CODES, to_dict, write_outputs
    from devicegate.triage.scan import scan_backup

    try:
        _check_store_flags(store, quarantine)
        index = _load(iocs, no_default_iocs, quiet=False)
        password = environ_password(password_env) if password_env else _prompt_source()
        options = Options(include_message_text=include_message_text, shutdown_log=shutdown_log)
        report = scan_backup(backup_dir, index, password=password, options=options)
    except DevicegateError as exc:
        _fail(exc)
    # store first, print after: neither a reader that leaves nor an unwritable --out folder
    # may cost a verdict, and a store that cannot be written does not hide it either
    problems: list[DevicegateError] = []
    recorded: str | None = None
    if quarantine and store:
        try:
            recorded = record(report, store, device_ref=device)
        except DevicegateError as exc:
            problems.append(exc)
    if out is not None:
        try:
            write_outputs(report, out)
        except DevicegateError as exc:
            problems.append(exc)
    with _reader_may_leave(sys.stdout):
        if json_output:
            typer.echo(json.dumps(to_dict(report), indent=2, ensure_ascii=False))
        else:
            _print_human(report, console(_Console))
    if recorded is not None:
        with _reader_may_leave(sys.stderr):
            typer.echo(f"verdict recorded in the store for device {recorded}", err=True)
    for problem in problems:
        _say_error(problem)
    raise typer.Exit(problems[0].exit_code if problems else EXIT_CODES[report.verdict.value])


@app.command("scan-many")
def scan_many_command(
    folder: Annotated[Path, typer.Argument(help="Folder whose subfolders are backups.")],
    iocs: IocsOpt = None,
    no_default_iocs: NoDefaultsOpt = False,
    password_env: PasswordEnvOpt = None,
    store: StoreOpt = None,
    quarantine: QuarantineOpt = False,
    out: OutOpt = None,
    include_message_text: TextOpt = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=0, help="Workers (0 = CPUs).")] = 0,
    json_output: JsonOpt = False,
) -> None:
    """Triage every backup under FOLDER in parallel; print a summary table."""
    from devicegate.triage import many
    from devicegate.triage.artefacts import Options

    try:
        _check_store_flags(store, quarantine)
        paths = many.discover(folder)
        if not paths:
            raise UsageError(f"no backup (a folder with Manifest.db) under `{folder}`")
        index = _load(iocs, no_default_iocs, quiet=False)
        password = _fleet_password(password_env, paths)
    except DevicegateError as exc:
        _fail(exc)
    options = Options(include_message_text=include_message_text)
    outcomes: list[many.Outcome] = []
    columns = (TextColumn("triage"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=_err, transient=True) as progress:
        task = progress.add_task("triage", total=len(paths))
        for outcome in many.scan_many(
            paths, index, password=password, options=options, jobs=jobs or None
        ):
            outcomes.append(_after_scan(outcome, out, store if quarantine else None))
            progress.advance(task)
    outcomes.sort(key=lambda o: str(o.path))
    with _reader_may_leave(sys.stdout):
        _print_fleet(outcomes, json_output)
    raise typer.Exit(many.fleet_exit_code(outcomes))


def _fleet_password(password_env: str | None, paths: list[Path]) -> str | None:
    from devicegate.triage import many
    from devicegate.triage.backup import environ_password

    if password_env:
        return environ_password(password_env)()
    if many.any_encrypted(paths) and sys.stdin.isatty():
        return getpass.getpass("password for the encrypted backups: ")
    return None


def _after_scan(outcome: many.Outcome, out: Path | None, store: str | None) -> many.Outcome:
    """Record the verdict, then write outputs; a failure here turns the row into an error."""
    from devicegate.triage import many
    from devicegate.triage.quarantine import record
    from devicegate.triage.report import write_outputs

    if outcome.report is None:
        return outcome
    try:
        if store is not None:
            record(outcome.report, store)
        if out is not None:
            write_outputs(outcome.report, out / outcome.path.name)
    except DevicegateError as exc:
        return many.Outcome(outcome.path, None, exc.one_line())
    return outcome


def _print_fleet(outcomes: list[many.Outcome], json_output: bool) -> None:
    from devicegate.triage import many
    from devicegate.triage.report import to_dict

    if json_output:
        rows = [
            to_dict(o.report)
            if o.report
            else {"backup": str(o.path), "verdict": None, "error": o.error, "exit_code": 1}
            for o in outcomes
        ]
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    table = Table("backup", "verdict", "serial", "iOS", "findings", "not parsed")
    for o in outcomes:
        if o.report is None:
            table.add_row(o.path.name, "error", "", "", o.error or "", "")
            continue
        gaps = [a.name for a in o.report.artefacts if a.coverage.value != "parsed"]
        table.add_row(
            o.path.name,
            o.report.verdict.value,
            o.report.device.serial or "?",
            o.report.device.ios_version or "?",
            str(len(o.report.detections)),
            ", ".join(gaps),
        )
    console(_Console).print(table)
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    typer.echo(", ".join(f"{counts[k]} {k}" for k in many.FLEET_ORDER[::-1] if k in counts))
    unchecked: dict[str, int] = {}
    for o in outcomes:
        for item in {i for a in (o.report.artefacts if o.report else ()) for i in a.not_checked}:
            unchecked[item] = unchecked.get(item, 0) + 1
    for item, count in unchecked.items():
        typer.echo(f"not checked in {count} backup(s): {item}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="triage", help="Triage iPhone backups for compromise.")
