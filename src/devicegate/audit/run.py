"""`run_audit`: files → (incremental) ingestion → engine → summary and outputs."""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from devicegate.audit import compliance
from devicegate.audit.events import BadLine
from devicegate.audit.formats import FORMATS
from devicegate.audit.formats.base import ParseContext
from devicegate.audit.inference import Submissions
from devicegate.audit.ingest import BAD_SAMPLE, Ingested, ingest_file
from devicegate.audit.manifest import STATE_DIR, RunRecord, State
from devicegate.audit.progress import Reporter
from devicegate.audit.results import AuditTables
from devicegate.audit.sources import detect_format, expand, fingerprint
from devicegate.defaults import POSTFIX_MATCH, POSTFIX_MATCHES, POSTFIX_WINDOW
from devicegate.errors import UsageError
from devicegate.policy import Snapshot
from devicegate.policy.schema import parse_duration

ENGINES = ("duckdb", "spark")


@dataclass
class AuditOptions:
    logs: list[Path]
    out: Path | None = None
    format: str = "auto"
    resource: str | None = None
    engine: str = "duckdb"
    year: int | None = None  # for BSD syslog stamps; default: the file's modification year
    master: str | None = None  # Spark master URL
    threads: int | None = None
    fast: bool = True  # the nginx DuckDB fast path
    #: `input_digest` of the policy, directory and inventory files the snapshot was loaded
    #: from, when the caller knows them (the CLI): lets `reuse_previous` skip loading.
    inputs: str | None = None
    #: how old a device sighting a Postfix submission may take its signals from, and which
    #: sightings in that window count (`any` or `newest`), as `serve` (inference.py)
    smtp_window: timedelta = field(default_factory=lambda: parse_duration(POSTFIX_WINDOW))
    smtp_match: str = POSTFIX_MATCH


@dataclass
class AuditResult:
    summary: dict[str, Any]
    tables: AuditTables
    ingested: list[Ingested]
    reused: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)


def _check(options: AuditOptions, snapshot: Snapshot) -> None:
    if options.format != "auto" and options.format not in FORMATS:
        raise UsageError(
            f"unknown format `{options.format}`", hint="use auto, " + ", ".join(FORMATS)
        )
    if options.engine not in ENGINES:
        raise UsageError(f"unknown engine `{options.engine}`", hint="use duckdb or spark")
    if options.smtp_match not in POSTFIX_MATCHES:
        raise UsageError(
            f"unknown --postfix-match `{options.smtp_match}`",
            hint="use " + " or ".join(POSTFIX_MATCHES),
        )
    if options.smtp_window <= timedelta(0):
        raise UsageError("--postfix-window must be longer than zero")
    if options.resource is not None and options.resource not in snapshot.resources:
        raise UsageError(
            f"unknown resource `{options.resource}`",
            hint="known: " + ", ".join(sorted(snapshot.resources)),
        )


def input_digest(files: Iterable[Path | None]) -> str:
    """A hash of the bytes of the given files (None: absent), in order."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(b"-" if path is None else hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def snapshot_digest(snapshot: Snapshot) -> str:
    """The compiled policy's version with the directory and inventory it was compiled with."""
    digest = hashlib.sha256(f"{snapshot.version}|{snapshot.inventory.version}".encode())
    for user in snapshot.directory.users:
        row = (user.id, user.unit, sorted(user.groups), user.email, user.name)
        digest.update(json.dumps(row).encode())
    return digest.hexdigest()


def _log_paths(options: AuditOptions) -> list[Path]:
    paths = expand(options.logs)
    if options.out is not None:  # never read our own outputs as logs
        out_dir = options.out.resolve()
        paths = [p for p in paths if out_dir not in p.resolve().parents]
    if not paths:
        raise UsageError("no log files given", hint="pass LOGFILE… or a directory")
    return paths


def _run_key(options: AuditOptions, paths: list[Path], inputs: str) -> str:
    """What a run's results depend on besides the code: logs, options, policy inputs."""
    logs = [
        [
            str(p.resolve()),
            fingerprint(p),
            detect_format(p) if options.format == "auto" else options.format,
        ]
        for p in paths
    ]
    settings = [
        options.resource,
        options.engine,
        options.year,
        options.fast,
        options.format,
        options.smtp_window.total_seconds(),
        options.smtp_match,
        _code_version(),
    ]
    text = json.dumps([logs, settings, inputs], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


#: Sub-packages no audit imports or reads: triage (its indicator sets are 2 MB of the
#: package) and the console (templates, htmx). Hashing them would only slow every run.
_NOT_AUDIT_CODE = frozenset({"console", "triage"})


@functools.cache
def _code_version() -> str:
    """What the judging code is: devicegate's version, a hash of its installed files (an
    editable install changes without a new version; the bundled OUI data is among them)
    but those of `_NOT_AUDIT_CODE`, and the versions of the libraries that parse and
    identify. Results computed by other code are not reused."""
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256()
    for name in ("devicegate", "duckdb", "pyarrow", "ua-parser", "ua-parser-rs", "netaddr"):
        try:
            digest.update(f"{name}={version(name)};".encode())
        except PackageNotFoundError:
            digest.update(f"{name}=-;".encode())
    digest.update(files_digest(Path(__file__).resolve().parent.parent).encode())
    return digest.hexdigest()


def files_digest(package: Path) -> str:
    """A hash of the names and bytes of the files under `package` that an audit may run or
    read: every file but compiled ones and those under `_NOT_AUDIT_CODE`."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        relative = path.relative_to(package)
        if relative.parts[0] in _NOT_AUDIT_CODE or path.suffix in (".pyc", ".pyo"):
            continue
        if path.is_file():
            digest.update(str(relative).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def reuse_previous(options: AuditOptions) -> AuditResult | None:
    """The last run's result when nothing it depends on changed (`options.inputs` must be
    the `input_digest` of the policy, directory and inventory files); else None."""
    if options.out is None or options.inputs is None:
        return None
    paths = _log_paths(options)
    record = RunRecord(options.out / STATE_DIR)
    data = record.load(_run_key(options, paths, options.inputs), "inputs")
    return None if data is None else _reused(options.out, data)


def _reused(out: Path, data: dict[str, Any]) -> AuditResult:
    """A stored run as an `AuditResult`: summary and tables read back, nothing rewritten."""
    summary: dict[str, Any] = data["summary"]
    for entry in summary.get("files", []):
        entry["reused"] = True
    totals = dict(data["totals"])
    for key in ("first_event", "last_event"):
        if totals.get(key) is not None:
            totals[key] = datetime.fromisoformat(totals[key])
    tables = AuditTables(
        daily=pq.read_table(out / "compliance_daily.parquet"),
        devices=pq.read_table(out / "devices_per_user.parquet"),
        units=pq.read_table(out / "units.parquet"),
        report_only=pq.read_table(out / "report_only.parquet"),
        totals=totals,
    )
    ingested = [
        Ingested(
            str(entry["file"]),
            str(entry["format"]),
            [],
            int(entry["events"]),
            int(entry["skipped_lines"]),
            int(entry["bad_lines"]),
        )
        for entry in summary.get("files", [])
    ]
    return AuditResult(summary, tables, ingested, [i.file for i in ingested], [])


def run_audit(
    snapshot: Snapshot, options: AuditOptions, reporter: Reporter | None = None
) -> AuditResult:
    """Audit `options.logs` under `snapshot`; write `options.out` when given.

    With `--out`, a run whose logs, options and policy inputs equal the last run's returns
    that run's results without recomputing or rewriting anything (`state.RunRecord`)."""
    _check(options, snapshot)
    report = reporter or Reporter()
    paths = _log_paths(options)
    keys: dict[str, str] = {}
    if options.out is not None:
        keys["snapshot"] = _run_key(options, paths, snapshot_digest(snapshot))
        if options.inputs is not None:
            keys["inputs"] = _run_key(options, paths, options.inputs)
        record = RunRecord(options.out / STATE_DIR)
        data = record.load(keys["snapshot"], "snapshot")
        if data is not None:
            return _reused(options.out, data)
        record.forget()
    scratch = None
    if options.out is None:
        scratch = Path(tempfile.mkdtemp(prefix="devicegate-audit-"))
        root = scratch
    else:
        options.out.mkdir(parents=True, exist_ok=True)
        root = options.out / STATE_DIR
    try:
        state = State(root)
        results, reused = _ingest(snapshot, options, paths, state, report)
        state.save()
        report.phase("judging")
        tables = _engine(options, snapshot, results, root / "inferred")
        bad_sample: list[BadLine] = [b for r in results for b in r.bad_sample][:BAD_SAMPLE]
        data = compliance.summary(
            snapshot,
            tables,
            bad_lines=sum(r.bad for r in results),
            bad_sample=bad_sample,
            skipped=sum(r.skipped for r in results),
            files=[
                {
                    "file": r.file,
                    "format": r.format,
                    "events": r.events,
                    "bad_lines": r.bad,
                    "skipped_lines": r.skipped,
                    "reused": r.file in reused,
                }
                for r in results
            ],
            engine=options.engine,
        )
        written: list[Path] = []
        if options.out is not None:
            report.phase("writing")
            written = compliance.write_outputs(options.out, tables, data)
            from devicegate.report import render_report

            written.append(render_report(options.out, snapshot, tables, data))
            RunRecord(root).save(keys, data, tables.totals)
        return AuditResult(data, tables, results, reused, written)
    finally:
        report.stop()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _ingest(
    snapshot: Snapshot,
    options: AuditOptions,
    paths: list[Path],
    state: State,
    report: Reporter,
) -> tuple[list[Ingested], list[str]]:
    plan: list[tuple[Path, str, dict[str, Any], Ingested | None]] = []
    for path in paths:
        fmt = detect_format(path) if options.format == "auto" else options.format
        stamp = {
            **fingerprint(path),
            "format": fmt,
            "resource": options.resource,
            "tz": snapshot.timezone.key,
            "year": options.year,
            "fast": options.fast,
        }
        key = str(path.resolve())
        plan.append((path, fmt, stamp, state.lookup(key, stamp)))
    todo = [(p, f, s) for p, f, s, found in plan if found is None]
    report.start(sum(int(s["size"]) for _, _, s in todo), len(todo))
    results: list[Ingested] = []
    reused: list[str] = []
    for path, fmt, stamp, found in plan:
        if found is not None:
            results.append(found)
            reused.append(found.file)
            continue
        report.file(path, fmt)
        year = options.year or datetime.fromtimestamp(path.stat().st_mtime).year
        ctx = ParseContext(str(path), options.resource, snapshot.timezone, year)
        done = ingest_file(
            path,
            fmt,
            ctx,
            state.target(),
            report.advance,
            fast=options.fast,
            threads=options.threads,
        )
        state.record(str(path.resolve()), stamp, done)
        results.append(done)
    return results, reused


def _engine(
    options: AuditOptions, snapshot: Snapshot, results: list[Ingested], workdir: Path
) -> AuditTables:
    """Run the engine over the ingested parts: those of logs that carry device data as
    they are, the others (Postfix) as submissions that take their device from them."""
    parquet = [(p, r.file) for r in results if _carries(r.format) for p in r.parquet]
    submissions = Submissions(
        [(p, r.file) for r in results if not _carries(r.format) for p in r.parquet],
        options.smtp_window,
        options.smtp_match,
        workdir,
    )
    out = options.out
    if options.engine == "spark":
        from devicegate.audit import spark_engine

        return spark_engine.run(
            snapshot, parquet, out, master=options.master, submissions=submissions
        )
    from devicegate.audit import duckdb_engine

    return duckdb_engine.run(
        snapshot, parquet, out, threads=options.threads, submissions=submissions
    )


def _carries(format_name: str) -> bool:
    """Whether events of this format carry device signals of their own (`LogFormat`)."""
    return bool(FORMATS[format_name].carries_device_data)
