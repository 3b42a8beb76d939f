"""Ingestion: one log file → typed Parquet (events with a signal key), counts, bad lines.

Every format ends in the same Parquet shape (`PARSED_COLUMNS`), which the engines read:
the heavy text work happens once per file, and a re-audit reads typed columns only.
`sig` is a 64-bit hash of the raw signal columns, computed by DuckDB for every format so
that equal signals meet across files; `ok` marks rows that are events (the nginx fast path
also stores the lines it handed to the reference parser, with `ok = false`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import duckdb
import pyarrow as pa

from devicegate.audit.events import (
    SIGNAL_COLUMNS,
    BadLine,
    Event,
    LineError,
    clip_text,
    events_table,
)
from devicegate.audit.formats import FORMATS
from devicegate.audit.formats.base import ParseContext
from devicegate.audit.formats.nginx_fast import parse_query, sql_literal
from devicegate.audit.sources import is_gzip, open_text

BAD_SAMPLE = 20
CHUNK = 200_000
SIG_EXPR = "hash(" + ", ".join(SIGNAL_COLUMNS) + ")"
#: Files at least this big go through the DuckDB fast path when their format has one.
FAST_MIN_BYTES = 1 << 20

Progress = Callable[[int], None]


@dataclass
class Ingested:
    """What ingesting one file produced (kept in the incremental state)."""

    file: str
    format: str
    parquet: list[str]
    events: int = 0
    skipped: int = 0
    bad: int = 0
    bad_sample: list[BadLine] = field(default_factory=list)

    def add_bad(self, bad: BadLine) -> None:
        self.bad += 1
        if len(self.bad_sample) < BAD_SAMPLE:
            self.bad_sample.append(bad)


def _write_events(con: duckdb.DuckDBPyConnection, table: pa.Table, target: Path) -> None:
    con.register("batch_events", table)
    cols = ", ".join(SIGNAL_COLUMNS)
    con.execute(
        f'COPY (SELECT line, ts, "user", resource, client_ip, {cols}, {SIG_EXPR} AS sig, '
        f"false AS escaped, true AS ok FROM batch_events) TO {sql_literal(str(target))} "
        "(FORMAT parquet)"
    )
    con.unregister("batch_events")


def _run_parser(
    module: ModuleType,
    ctx: ParseContext,
    lines: Iterable[tuple[int, str | None]],
    result: Ingested,
    progress: Progress | None,
) -> list[Event]:
    """Feed (number, text) pairs to the format's parser; collect events, count the rest."""
    parser = module.parser(ctx)
    events: list[Event] = []
    done = number = 0
    for number, text in lines:
        try:
            events.extend(parser.feed(text or "", number))
        except LineError as exc:
            result.add_bad(BadLine(ctx.file, number, str(exc), clip_text(text or "")))
        done += len(text or "") + 1
        if progress is not None and done >= 1 << 20:
            progress(done)
            done = 0
    try:
        events.extend(parser.finish())
    except LineError as exc:
        result.add_bad(BadLine(ctx.file, number, str(exc), ""))
    if progress is not None and done:
        progress(done)
    result.skipped += parser.skipped
    return events


def ingest_python(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    fmt: str,
    ctx: ParseContext,
    target: Path,
    progress: Progress | None = None,
) -> Ingested:
    """The reference path: every line through the format's Python parser."""
    result = Ingested(str(path), fmt, [str(target)])
    with open_text(path) as handle:
        events = _run_parser(FORMATS[fmt], ctx, enumerate(handle, start=1), result, progress)
    result.events = len(events)
    _write_events(con, events_table(events), target)
    return result


def ingest_nginx_fast(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    ctx: ParseContext,
    target: Path,
    progress: Progress | None = None,
) -> Ingested | None:
    """The DuckDB path for combined logs; None when a split row failed its checks."""
    compression = "gzip" if is_gzip(path) else "none"
    query = parse_query(str(path), compression, ctx.resource or "web")
    fast = target.with_suffix(".fast.parquet")
    con.execute(
        f"COPY (SELECT *, {SIG_EXPR} AS sig FROM ({query})) TO {sql_literal(str(fast))} "
        "(FORMAT parquet, ROW_GROUP_SIZE 500000)"
    )
    counted = con.execute(
        'SELECT count(*) FILTER (WHERE ok AND "user" IS NOT NULL), '
        'count(*) FILTER (WHERE ok AND "user" IS NULL), count(*) FILTER (WHERE NOT ok) '
        f"FROM read_parquet({sql_literal(str(fast))})"
    ).fetchone()
    assert counted is not None
    if counted[2]:
        fast.unlink()
        return None
    if progress is not None:
        progress(path.stat().st_size)
    result = Ingested(str(path), "nginx", [str(fast)])
    result.events, result.skipped = int(counted[0]), int(counted[1])
    rejected = con.execute(
        "SELECT line, first(csv_line ORDER BY column_idx) FROM nginx_rejects "
        "GROUP BY line ORDER BY line"
    ).fetchall()
    if rejected:
        lines = [(int(n), str(text or "").lstrip("\r\n")) for n, text in rejected]
        events = _run_parser(FORMATS["nginx"], ctx, lines, result, None)
        result.events += len(events)
        if events:
            _write_events(con, events_table(events), target)
            result.parquet.append(str(target))
    return result


def ingest_file(
    path: Path,
    fmt: str,
    ctx: ParseContext,
    target: Path,
    progress: Progress | None = None,
    *,
    fast: bool = True,
) -> Ingested:
    """Ingest one file into Parquet under `target` (a path without the `.parquet` suffix)."""
    con = duckdb.connect()
    try:
        con.execute("SET preserve_insertion_order = false")
        if fast and fmt == "nginx" and path.stat().st_size >= FAST_MIN_BYTES:
            done = ingest_nginx_fast(con, path, ctx, target.with_suffix(".parquet"), progress)
            if done is not None:
                return done
        return ingest_python(con, path, fmt, ctx, target.with_suffix(".parquet"), progress)
    finally:
        con.close()
