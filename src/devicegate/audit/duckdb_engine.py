"""The DuckDB engine (default): typed Parquet in, judged events and compliance tables out.

Three passes over the ingested Parquet, each a single SQL statement:

1. distinct users and distinct raw signals → `judge` maps them (directory, identification);
2. distinct (class, resource, segment, signals) with the earliest time → `judge` decides;
3. every event joined to its decision (small dimension tables, integer keys) → the events
   table, violations, per-unit-per-day compliance, devices per user, report-only hits.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from devicegate.audit import judge
from devicegate.audit.events import SIGNAL_COLUMNS
from devicegate.audit.formats.nginx_fast import sql_literal
from devicegate.audit.tables import (
    DAILY_COLUMNS,
    DEVICE_COLUMNS,
    DEVICE_KEYS,
    REPORT_ONLY_COLUMNS,
    UNIT_COLUMNS,
    AuditTables,
    shape,
)
from devicegate.policy import Snapshot

FLAGGED = "(d.violation OR d.action = 'warn' OR d.excepted IS NOT NULL)"
VIOLATION_COLUMNS = (
    "j.ts, j.day, u.user, u.unit, d.resource, v.device, v.vendor, v.platform, v.model, "
    "v.device_id, d.action, d.rule, d.spoofing_suspected, s.file, j.line"
)


def connect(threads: int | None = None, memory_limit: str = "1GB") -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    con.execute(f"SET memory_limit = {sql_literal(memory_limit)}")
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET TimeZone = 'UTC'")
    return con


def run(
    snapshot: Snapshot,
    parquet: list[tuple[str, str]],
    out: Path | None,
    *,
    threads: int | None = None,
) -> AuditTables:
    con = connect(threads)
    try:
        return _run(con, snapshot, parquet, out)
    finally:
        con.close()


def _write_events(
    con: duckdb.DuckDBPyConnection,
    out: Path,
    users: pa.Table,
    decisions: pa.Table,
    devices: pa.Table,
) -> None:
    """The events fact table (integer keys) with its dimension tables, and the violations
    denormalised (they are few and people read them as they are)."""
    con.execute(
        "COPY (SELECT j.ts, j.day, j.uid, j.did, j.sid, j.fid, j.line FROM judged j) "
        f"TO {sql_literal(str(out / 'events.parquet'))} (FORMAT parquet)"
    )
    for name, table in (
        ("users", users.select(["uid", "user", "unit", "cls"])),
        ("decisions", decisions),
        ("signals", devices),
    ):
        pq.write_table(table, out / f"{name}.parquet")
    con.execute(f"COPY sources_t TO {sql_literal(str(out / 'files.parquet'))} (FORMAT parquet)")
    con.execute(
        f"COPY (SELECT {VIOLATION_COLUMNS} FROM judged j JOIN users_t u USING (uid) "
        "JOIN decisions_t d USING (did) JOIN devices_t v ON v.sid = j.sid "
        "JOIN sources_t s ON s.fid = j.fid WHERE d.violation ORDER BY j.ts, u.user, j.line) "
        f"TO {sql_literal(str(out / 'violations.parquet'))} (FORMAT parquet)"
    )
    con.execute(
        f"COPY (SELECT * FROM read_parquet({sql_literal(str(out / 'violations.parquet'))})) "
        f"TO {sql_literal(str(out / 'violations.csv'))} (FORMAT csv, HEADER)"
    )


def _run(
    con: duckdb.DuckDBPyConnection,
    snapshot: Snapshot,
    parquet: list[tuple[str, str]],
    out: Path | None,
) -> AuditTables:
    """`parquet` pairs each ingested Parquet file with the log file it came from."""
    tz = snapshot.timezone.key
    files = "[" + ", ".join(sql_literal(p) for p, _ in parquet) + "]"
    sources = sorted({source for _, source in parquet})
    con.register(
        "files_t",
        pa.table(
            {
                "filename": [p for p, _ in parquet],
                "fid": [sources.index(source) for _, source in parquet],
            }
        ),
    )
    con.register("sources_t", pa.table({"fid": range(len(sources)), "file": sources}))
    con.execute(
        'CREATE TEMP VIEW ev AS SELECT f.fid, p.line, p.ts, p."user", p.resource, p.sig, '
        f"p.escaped FROM read_parquet({files}, union_by_name = true, filename = true) p "
        'JOIN files_t f USING (filename) WHERE p.ok AND p."user" IS NOT NULL'
    )
    users = judge.users_table(
        snapshot, con.execute('SELECT DISTINCT "user", escaped FROM ev').fetchall()
    )
    cols = ", ".join(f"any_value({c})" for c in SIGNAL_COLUMNS)
    smap = judge.signal_map(
        snapshot,
        con.execute(
            f"SELECT sig, escaped, {cols} FROM read_parquet({files}, union_by_name = true) "
            "WHERE ok GROUP BY sig, escaped"
        ).fetchall(),
    )
    con.register("users_t", users)
    con.register("sigkeys", smap.keys)
    con.register("devices_t", smap.devices)
    seg = judge.segment_sql("e.ts", judge.segment_breaks_us(snapshot))
    base = 'FROM ev e JOIN users_t u ON e."user" = u.raw AND e.escaped = u.escaped'
    plans = judge.plan_table(
        snapshot,
        con.execute(
            f"SELECT u.cls, e.resource, ({seg})::INTEGER AS seg, min(e.ts) {base} GROUP BY ALL"
        ).fetchall(),
    )
    con.register("plans_t", plans)
    con.execute(
        "CREATE TEMP TABLE keyed AS WITH s AS (SELECT e.fid, e.line, e.ts, u.uid, u.cls, "
        f"e.resource, e.sig, e.escaped, ({seg})::INTEGER AS seg {base}) "
        "SELECT s.fid, s.line, s.ts, s.uid, s.cls, s.resource, k.sid, p.pid FROM s "
        "JOIN sigkeys k ON s.sig = k.sig AND s.escaped = k.escaped "
        "JOIN plans_t p ON p.cls = s.cls AND p.resource = s.resource AND p.seg = s.seg"
    )
    combos = con.execute(
        "SELECT pid, resource, sid, arg_min(cls, ts), min(ts) FROM keyed "
        "GROUP BY pid, resource, sid "
        "ORDER BY ALL"
    ).fetchall()
    decisions = judge.decide_combos(snapshot, combos, judge.representatives(snapshot, users), smap)
    con.register("decisions_t", decisions)
    con.execute(
        "CREATE TEMP TABLE judged AS SELECT k.fid, k.line, k.ts, "
        f"CAST(timezone({sql_literal(tz)}, k.ts) AS DATE) AS day, k.uid, k.sid, d.did "
        "FROM keyed k JOIN decisions_t d USING (pid, resource, sid)"
    )
    con.execute("DROP TABLE keyed")
    if out is not None:
        _write_events(con, out, users, decisions, smap.devices)
    # one pass over the events; every table below reads this much smaller aggregate
    con.execute(
        "CREATE TEMP TABLE agg AS SELECT uid, sid, did, day, count(*) AS n, "
        "min(ts) AS first_seen, max(ts) AS last_seen FROM judged GROUP BY ALL"
    )
    con.execute("DROP TABLE judged")
    joined = "FROM agg a JOIN users_t u USING (uid) JOIN decisions_t d USING (did)"
    # per user and day first: distinct users then become plain counts
    con.execute(
        "CREATE TEMP TABLE per_day AS SELECT a.uid, u.unit, a.day, sum(a.n) AS events, "
        "coalesce(sum(a.n) FILTER (WHERE d.violation), 0) AS violations, "
        "coalesce(sum(a.n) FILTER (WHERE d.excepted IS NOT NULL), 0) AS excepted, "
        "coalesce(sum(a.n) FILTER (WHERE d.action = 'warn'), 0) AS warned, "
        "coalesce(sum(a.n) FILTER (WHERE d.report_only IS NOT NULL), 0) AS report_only_hits, "
        "min(a.first_seen) AS first_seen, max(a.last_seen) AS last_seen "
        f"{joined} GROUP BY a.uid, u.unit, a.day"
    )
    sums = (
        "sum(events) AS events, sum(violations) AS violations, sum(excepted) AS excepted, "
        "sum(warned) AS warned, sum(report_only_hits) AS report_only_hits"
    )
    daily = con.sql(
        f"SELECT unit, day, {sums}, count(*) AS users, "
        "count(*) FILTER (WHERE violations > 0) AS users_violating FROM per_day GROUP BY ALL"
    ).to_arrow_table()
    per_user = (
        f"SELECT uid, unit, {sums}, min(first_seen) AS first_seen, max(last_seen) AS last_seen "
        "FROM per_day GROUP BY uid, unit"
    )
    units = con.sql(
        f"SELECT unit, {sums}, count(*) AS users, "
        f"count(*) FILTER (WHERE violations > 0) AS users_violating FROM ({per_user}) "
        "GROUP BY ALL"
    ).to_arrow_table()
    devices = con.sql(
        "SELECT u.user, u.unit, v.device, v.vendor, v.platform, v.model, "
        "max(v.os_version) AS os_version, v.device_id, sum(a.n) AS events, "
        "coalesce(sum(a.n) FILTER (WHERE d.violation), 0) AS violations, "
        "coalesce(sum(a.n) FILTER (WHERE d.action = 'warn'), 0) AS warned, "
        "coalesce(sum(a.n) FILTER (WHERE d.excepted IS NOT NULL), 0) AS excepted, "
        "min(a.first_seen) AS first_seen, max(a.last_seen) AS last_seen, "
        f"max(a.last_seen) FILTER (WHERE {FLAGGED}) AS last_flagged "
        f"{joined} JOIN devices_t v ON v.sid = a.sid GROUP BY ALL"
    ).to_arrow_table()
    report_only = con.sql(
        "SELECT split_part(ro, '=', 1) AS rule, split_part(ro, '=', 2) AS action, unit, "
        "sum(n) AS events, count(DISTINCT uid) AS users FROM ("
        "SELECT unnest(string_split(d.report_only, ',')) AS ro, u.unit, a.uid, a.n "
        f"{joined} WHERE d.report_only IS NOT NULL) GROUP BY ALL"
    ).to_arrow_table()
    total = con.execute(
        f"SELECT {sums}, count(*) AS users, count(*) FILTER (WHERE violations > 0), "
        f"min(first_seen), max(last_seen) FROM ({per_user})"
    ).fetchone()
    assert total is not None
    names = (
        "events",
        "violations",
        "excepted",
        "warned",
        "report_only_hits",
        "users",
        "users_violating",
        "first_event",
        "last_event",
    )
    totals = {
        k: (0 if v is None and k not in ("first_event", "last_event") else v)
        for k, v in zip(names, total, strict=True)
    }
    return AuditTables(
        daily=shape(daily, DAILY_COLUMNS, ("unit", "day")),
        devices=shape(devices, DEVICE_COLUMNS, DEVICE_KEYS),
        units=shape(units, UNIT_COLUMNS, ("unit",)),
        report_only=shape(report_only, REPORT_ONLY_COLUMNS, ("rule", "action", "unit")),
        totals=totals,
    )
