"""Ingestion: one log file → grouped, typed Parquet; counts; bad lines.

Every format ends in the same *grouped* Parquet shape, which the engines read: one row per
distinct (user, resource, raw signals) of the file — `g` (its row number in the file),
`user`, `escaped`, `resource`, the `SIGNAL_COLUMNS`, `sig`, `n` (events), `ts` (the list
of event times) and `line` (their line numbers, aligned with `ts`; NULL when the reader
does not know them — the nginx fast path). The wide strings are stored once per group,
the events as a list of times: a re-audit reads compact typed columns only, never text.
`sig` is a 64-bit hash of the raw signal columns, computed by DuckDB for every format so
that equal signals meet across files.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from devicegate.audit.events import (
    SIGNAL_COLUMNS,
    BadLine,
    Event,
    LineError,
    clip_text,
    events_table,
)
from devicegate.audit.formats import FORMATS, nginx_fast
from devicegate.audit.formats.base import ParseContext
from devicegate.audit.formats.nginx_fast import parse_query, sql_literal
from devicegate.audit.pipeline import session
from devicegate.audit.sources import is_gzip, open_text

BAD_SAMPLE = 20
CHUNK = 200_000
SIG_EXPR = "hash(" + ", ".join(SIGNAL_COLUMNS) + ")"
#: Files at least this big go through the DuckDB fast path when their format has one.
FAST_MIN_BYTES = 1 << 20
#: Lines a part of a big combined log holds when the file as a whole was not vouched for:
#: the reference parser reads such a part in seconds (`ingest_nginx_parts`).
PART_LINES = 250_000

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

    def absorb(self, later: Ingested) -> None:
        """Add what ingesting a later part of the same file gave (its bad lines after ours)."""
        self.parquet += later.parquet
        self.events += later.events
        self.skipped += later.skipped
        self.bad += later.bad - len(later.bad_sample)
        for bad in later.bad_sample:
            self.add_bad(bad)


def _write_events(con: duckdb.DuckDBPyConnection, table: pa.Table, target: Path) -> None:
    """Parsed events → the grouped shape (times and line numbers listed in line order)."""
    con.register("batch_events", table)
    cols = ", ".join(SIGNAL_COLUMNS)
    con.execute(
        f"COPY (SELECT (row_number() OVER (ORDER BY min(line)) - 1)::INTEGER AS g, "
        f'"user", false AS escaped, resource, {cols}, {SIG_EXPR} AS sig, count(*) AS n, '
        "list(ts ORDER BY line, ts) AS ts, list(line ORDER BY line, ts) AS line "
        f'FROM batch_events GROUP BY "user", resource, {cols}) '
        f"TO {sql_literal(str(target))} (FORMAT parquet)"
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
    *,
    line_offset: int = 0,
) -> Ingested | None:
    """The DuckDB path for combined logs; None when a row it read cannot be vouched for
    (or DuckDB's reader gives up on the file): the caller re-reads it with the parser.
    `line_offset`: lines before this file's first in the log it was cut from (line numbers
    of bad lines and events are the log's)."""
    compression = "gzip" if is_gzip(path) else "none"
    try:
        raw = con.sql(parse_query(str(path), compression)).to_arrow_table()
    except (duckdb.InvalidInputException, duckdb.ConversionException):
        return None  # a time DuckDB cannot parse, or a bare CR inside a line (the reader stops)
    done = nginx_fast.finish(raw, ctx.resource or "web")
    if done is None:
        return None
    groups, skipped, shared = done
    con.register("fast_groups", groups)
    if shared:  # raw keys that read the same: one row per (user, resource, signals)
        cols = ", ".join(SIGNAL_COLUMNS)
        groups = con.sql(
            f'SELECT "user", escaped, resource, {cols}, sum(n)::BIGINT AS n, '
            f'flatten(list(ts)) AS ts FROM fast_groups GROUP BY "user", escaped, resource, {cols}'
        ).to_arrow_table()
        con.unregister("fast_groups")
        con.register("fast_groups", groups)
    # the hash in the same query as the rows it belongs to: with `preserve_insertion_order`
    # off, a separate projection may come back in another order
    columns = ", ".join(f'"{name}"' for name in groups.column_names if name not in ("n", "ts"))
    groups = con.sql(
        f"SELECT {columns}, {SIG_EXPR} AS sig, n, ts FROM fast_groups"
    ).to_arrow_table()
    con.unregister("fast_groups")
    groups = groups.append_column("line", pa.nulls(groups.num_rows, pa.list_(pa.int64())))
    groups = groups.add_column(0, "g", pa.array(range(groups.num_rows), pa.int32()))
    fast = target.with_suffix(".fast.parquet")
    pq.write_table(groups, fast, compression="none")  # times: snappy saves ~10%, costs 2x
    if progress is not None:
        progress(path.stat().st_size)
    result = Ingested(str(path), "nginx", [str(fast)])
    result.events, result.skipped = int(pc.sum(groups.column("n")).as_py() or 0), skipped
    rejected = con.execute(
        "SELECT line, first(csv_line ORDER BY column_idx) FROM nginx_rejects "
        "GROUP BY line ORDER BY line"
    ).fetchall()
    if rejected:
        lines = [(int(n) + line_offset, str(text or "").lstrip("\r\n")) for n, text in rejected]
        events = _run_parser(FORMATS["nginx"], ctx, lines, result, None)
        result.events += len(events)
        if events:
            _write_events(con, events_table(events), target)
            result.parquet.append(str(target))
    return result


def connect(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A connection for ingesting one file (one per file: DuckDB's rejects table of a
    connection collects the rejects of every file it read)."""
    con = session(duckdb.connect())
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def ingest_nginx_parts(
    path: Path,
    ctx: ParseContext,
    target: Path,
    progress: Progress | None = None,
    *,
    lines_per_part: int | None = None,
    threads: int | None = None,
) -> tuple[Ingested, int]:
    """A big combined log the fast path could not vouch for as a whole, in parts of
    `lines_per_part` lines: each part through the fast path, and only the parts it cannot
    vouch for through the reference parser. Returns the result and how many parts the
    reference parser read.

    Without parts, one odd line (a corrupt time, an Apache escape closing a field) would send
    a 10M-line file to the reference parser — minutes instead of seconds. The parts are cut
    from the lines exactly as the reference reads them (`open_text`: undecodable bytes
    replaced, `\r`, `\n` and `\r\n` all ending a line, endings kept), so a part holds the
    same lines with the same numbers, plus `line_offset`, as the whole file."""
    lines_per_part = lines_per_part or PART_LINES
    result = Ingested(str(path), "nginx", [])
    slow = 0
    with (
        tempfile.TemporaryDirectory(prefix=".parts-", dir=target.parent) as folder,
        open_text(path) as lines,
    ):
        offset = 0
        for index in itertools.count():
            part = Path(folder) / "part.log"
            count = size = 0
            with part.open("w", encoding="utf-8", newline="") as out:
                for text in itertools.islice(lines, lines_per_part):
                    out.write(text)
                    count += 1
                    size += len(text)
            if not count:
                break
            part_target = target.with_name(f"{target.stem}.part{index}.parquet")
            con = connect(threads)
            try:
                done = ingest_nginx_fast(con, part, ctx, part_target, line_offset=offset)
                if done is None:
                    slow += 1
                    with open_text(part) as again:
                        numbered = enumerate(again, start=offset + 1)
                        events = _run_parser(FORMATS["nginx"], ctx, numbered, result, None)
                    result.events += len(events)
                    if events:
                        _write_events(con, events_table(events), part_target)
                        result.parquet.append(str(part_target))
            finally:
                con.close()
            if done is not None:
                result.absorb(done)
            offset += count
            if progress is not None:
                progress(size)
    return result, slow


def ingest_file(
    path: Path,
    fmt: str,
    ctx: ParseContext,
    target: Path,
    progress: Progress | None = None,
    *,
    fast: bool = True,
    threads: int | None = None,
) -> Ingested:
    """Ingest one file into Parquet under `target` (a path without the `.parquet` suffix)."""
    parquet = target.with_suffix(".parquet")
    con = connect(threads)
    try:
        if not (fast and fmt == "nginx" and path.stat().st_size >= FAST_MIN_BYTES):
            return ingest_python(con, path, fmt, ctx, parquet, progress)
        done = ingest_nginx_fast(con, path, ctx, parquet, progress)
        if done is not None:
            return done
    finally:
        con.close()
    return ingest_nginx_parts(path, ctx, parquet, progress, threads=threads)[0]
