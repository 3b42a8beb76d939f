"""The DuckDB engine (default): grouped Parquet in, judged events and compliance tables out.

The steps are `pipeline`'s; this module runs its two passes over events in SQL: each
group's list of times is unnested, put in its policy segment (`segment_sql`, the same
breakpoints `snapshot.segment` bisects) and its day in the policy's zone, and counted —
or, for the violations, kept when the (group, segment) decided a violation.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pyarrow as pa

from devicegate.audit import pipeline
from devicegate.audit.formats.nginx_fast import sql_literal
from devicegate.audit.inference import Submissions
from devicegate.audit.results import AuditTables
from devicegate.policy import Snapshot


def connect(threads: int | None = None, memory_limit: str = "1GB") -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"SET threads = {int(threads or os.cpu_count() or 1)}")
    con.execute(f"SET memory_limit = {sql_literal(memory_limit)}")
    return pipeline.session(con)


class DuckDBPasses:
    """`pipeline.EventPasses` in DuckDB SQL on the pipeline's own connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def _events(self, parts: pipeline.Parts, breaks_us: list[int], only: str = "") -> str:
        """Every event as (part, g, t, seg[, line]); `only` restricts the groups read. The
        part numbers are in the query itself: `segment_days` runs on a cursor of its own,
        which sees none of the pipeline connection's registered tables."""
        seg = pipeline.segment_expr("t", breaks_us)
        lines = ", unnest(q.line) AS line" if only else ""
        numbered = ", ".join(f"({sql_literal(path)}, {i})" for i, path in enumerate(parts.paths))
        return (
            f"SELECT part, g, t, ({seg})::INTEGER AS seg{', line' if only else ''} FROM ("
            f"SELECT p.part, q.g, unnest(q.ts) AS t{lines} FROM read_parquet("
            f"{parts.sql_list()}, filename = true, union_by_name = true) q "
            f"JOIN (VALUES {numbered}) p(filename, part) USING (filename) {only})"
        )

    def segment_days(self, parts: pipeline.Parts, breaks_us: list[int], tz: str) -> pa.Table:
        """On a cursor of its own: the pipeline runs it in a thread beside other queries."""
        cursor = pipeline.session(self.con.cursor())
        try:
            return self._segment_days(cursor, parts, breaks_us, tz)
        finally:
            cursor.close()

    def _segment_days(
        self, con: duckdb.DuckDBPyConnection, parts: pipeline.Parts, breaks_us: list[int], tz: str
    ) -> pa.Table:
        span = pipeline.time_range(parts)
        day = pipeline.day_sql("t", tz, span)
        days = pipeline.break_days(breaks_us, tz, span)
        counted = "count(*) AS n, min(t) AS first_seen, max(t) AS last_seen"
        if days is None:  # a break inside a day: each event placed in its segment
            return con.sql(
                f"SELECT part, g, seg, {day} AS day, {counted} "
                f"FROM ({self._events(parts, breaks_us)}) GROUP BY ALL"
            ).to_arrow_table()
        # breaks at local midnights: count per day, then place the days (a third faster)
        seg = pipeline.segment_of_day("day", days)
        return con.sql(
            f"SELECT part, g, ({seg})::INTEGER AS seg, day, n, first_seen, last_seen FROM ("
            f"SELECT part, g, {day} AS day, {counted} FROM ({self._events(parts, [])}) "
            "GROUP BY ALL)"
        ).to_arrow_table()

    def violation_events(
        self, parts: pipeline.Parts, flagged: pa.Table, breaks_us: list[int]
    ) -> pa.Table:
        self.con.register("flagged_t", flagged)
        only = "SEMI JOIN flagged_t f ON f.part = p.part AND f.g = q.g"
        events = self._events(parts, breaks_us, only)
        found = self.con.sql(
            f"SELECT e.part, e.g, e.seg, e.t AS ts, e.line FROM ({events}) e "
            "SEMI JOIN flagged_t f ON f.part = e.part AND f.g = e.g AND f.seg = e.seg"
        ).to_arrow_table()
        self.con.unregister("flagged_t")
        return found


def run(
    snapshot: Snapshot,
    parquet: list[tuple[str, str]],
    out: Path | None,
    *,
    threads: int | None = None,
    submissions: Submissions | None = None,
) -> AuditTables:
    con = connect(threads)
    try:
        return pipeline.run(con, snapshot, parquet, out, DuckDBPasses(con), submissions)
    finally:
        con.close()
