"""SMTP submissions in the audit get the device the online path would have used.

SMTP carries no device data. Online, `devicegate serve` decides a submission from the user's
newest device sighting on any adapter within `--postfix-window` (docs/mail.md). The audit
does the same with the logs it is given: every Postfix event takes the signals of the same
user's newest event *with* device signals (an IMAP ID, a User-Agent, ActiveSync ids, a MAC)
at or before it, from any other log of the run, if that event is within the window — an
as-of join (DuckDB `ASOF JOIN`). Without one the event stays without signals and each rule's
`on_unidentified` answers, as online.

The Postfix parts are rewritten into derived grouped Parquet (same shape as `ingest`
writes: one row per distinct user, resource and signals, with the times and line numbers);
the other parts are used as they are. The derived files depend on the other logs, so they
are rebuilt on every run and never kept in the incremental state.

A sighting whose logged values carry escapes (`escaped`, see `formats/nginx_fast.py`) is
not used: its values are unescaped only later, per distinct value, together with the user's
name, which for the submission comes from Postfix.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb

from devicegate.audit.events import SIGNAL_COLUMNS
from devicegate.audit.formats import FORMATS
from devicegate.audit.formats.nginx_fast import sql_literal
from devicegate.audit.ingest import SIG_EXPR, Ingested

DEFAULT_WINDOW = timedelta(days=7)


def _carries(format_name: str) -> bool:
    """Whether events of this format carry device signals of their own."""
    return bool(FORMATS[format_name].carries_device_data)


def _paths(paths: list[str]) -> str:
    return "[" + ", ".join(sql_literal(p) for p in paths) + "]"


def judged_parts(
    results: list[Ingested], window: timedelta, workdir: Path
) -> list[tuple[str, str]]:
    """(Parquet path, log file) of every part to judge, Postfix parts with inferred signals."""
    plain = [(p, r.file) for r in results if _carries(r.format) for p in r.parquet]
    inferring = [(p, r.file) for r in results if not _carries(r.format) for p in r.parquet]
    if not inferring:
        return plain
    workdir.mkdir(parents=True, exist_ok=True)
    for old in workdir.glob("smtp-*.parquet"):
        old.unlink()
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        derived = [
            (
                str(
                    _infer(con, path, [p for p, _ in plain], window, workdir / f"smtp-{i}.parquet")
                ),
                f,
            )
            for i, (path, f) in enumerate(inferring)
        ]
    finally:
        con.close()
    return plain + derived


def _infer(
    con: duckdb.DuckDBPyConnection, part: str, others: list[str], window: timedelta, target: Path
) -> Path:
    cols = ", ".join(SIGNAL_COLUMNS)
    any_signal = " OR ".join(f"{c} IS NOT NULL" for c in SIGNAL_COLUMNS)
    window_us = int(window.total_seconds() * 1_000_000)
    within = f"s.seen IS NOT NULL AND epoch_us(e.ts) - epoch_us(s.seen) <= {window_us}"
    picked = ", ".join(f"CASE WHEN {within} THEN s.{c} END AS {c}" for c in SIGNAL_COLUMNS)
    sightings = "SELECT NULL::VARCHAR AS lu, NULL::TIMESTAMPTZ AS seen, " + ", ".join(
        f"NULL::VARCHAR AS {c}" for c in SIGNAL_COLUMNS
    )
    if others:
        sightings = (
            f'SELECT lower("user") AS lu, unnest(ts) AS seen, {cols} '
            f"FROM read_parquet({_paths(others)}, union_by_name = true) "
            f'WHERE "user" IS NOT NULL AND NOT escaped AND ({any_signal}) '
            'AND lower("user") IN '
            f'(SELECT DISTINCT lower("user") FROM read_parquet({_paths([part])}))'
        )
    con.execute(
        f"""
        COPY (
            WITH e AS (
                SELECT "user", escaped, resource, lower("user") AS lu,
                       unnest(ts) AS ts, unnest(line) AS line
                FROM read_parquet({_paths([part])})
            ), s AS ({sightings}),
            j AS (
                SELECT e."user", e.escaped, e.resource, e.ts, e.line, {picked}
                FROM e ASOF LEFT JOIN s ON e.lu = s.lu AND e.ts >= s.seen
            )
            SELECT (row_number() OVER (ORDER BY min(line)) - 1)::INTEGER AS g,
                "user", escaped, resource, {cols}, {SIG_EXPR} AS sig, count(*) AS n,
                list(ts ORDER BY line, ts) AS ts, list(line ORDER BY line, ts) AS line
            FROM j GROUP BY "user", escaped, resource, {cols}
        ) TO {sql_literal(str(target))} (FORMAT parquet)
        """
    )
    return target
