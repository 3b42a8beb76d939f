"""`run_audit`: files → (incremental) ingestion → engine → summary and outputs."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from devicegate.audit import compliance
from devicegate.audit.events import BadLine
from devicegate.audit.formats import FORMATS
from devicegate.audit.formats.base import ParseContext
from devicegate.audit.ingest import BAD_SAMPLE, Ingested, ingest_file
from devicegate.audit.sources import detect_format, expand, fingerprint
from devicegate.audit.state import STATE_DIR, State
from devicegate.audit.tables import AuditTables
from devicegate.errors import UsageError
from devicegate.policy import Snapshot

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


@dataclass
class AuditResult:
    summary: dict[str, Any]
    tables: AuditTables
    ingested: list[Ingested]
    reused: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)


class Reporter:
    """Progress callbacks (the CLI draws rich bars; tests and `--quiet` pass nothing)."""

    def start(self, total_bytes: int, files: int) -> None: ...

    def file(self, path: Path, fmt: str) -> None: ...

    def advance(self, done: int) -> None: ...

    def phase(self, text: str) -> None: ...

    def stop(self) -> None: ...


def _check(options: AuditOptions, snapshot: Snapshot) -> None:
    if options.format != "auto" and options.format not in FORMATS:
        raise UsageError(
            f"unknown format `{options.format}`", hint="use auto, " + ", ".join(FORMATS)
        )
    if options.engine not in ENGINES:
        raise UsageError(f"unknown engine `{options.engine}`", hint="use duckdb or spark")
    if options.resource is not None and options.resource not in snapshot.resources:
        raise UsageError(
            f"unknown resource `{options.resource}`",
            hint="known: " + ", ".join(sorted(snapshot.resources)),
        )


def run_audit(
    snapshot: Snapshot, options: AuditOptions, reporter: Reporter | None = None
) -> AuditResult:
    """Audit `options.logs` under `snapshot`; write `options.out` when given."""
    _check(options, snapshot)
    report = reporter or Reporter()
    paths = expand(options.logs)
    if options.out is not None:  # never read our own outputs as logs
        out_dir = options.out.resolve()
        paths = [p for p in paths if out_dir not in p.resolve().parents]
    if not paths:
        raise UsageError("no log files given", hint="pass LOGFILE… or a directory")
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
        parquet = [(p, r.file) for r in results for p in r.parquet]
        tables = _engine(options, snapshot, parquet)
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
        done = ingest_file(path, fmt, ctx, state.target(), report.advance, fast=options.fast)
        state.record(str(path.resolve()), stamp, done)
        results.append(done)
    return results, reused


def _engine(
    options: AuditOptions, snapshot: Snapshot, parquet: list[tuple[str, str]]
) -> AuditTables:
    out = options.out
    if options.engine == "spark":
        from devicegate.audit import spark_engine

        return spark_engine.run(snapshot, parquet, out, master=options.master)
    from devicegate.audit import duckdb_engine

    return duckdb_engine.run(snapshot, parquet, out, threads=options.threads)
