"""From the engine's tables to what people read: the JSON summary and the `--out` files."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from devicegate.audit.events import BadLine
from devicegate.audit.results import AuditTables
from devicegate.model import Action
from devicegate.policy import Snapshot

STILL_TO_REPLACE_DAYS = 7


def unit_deadlines(snapshot: Snapshot, units: list[str]) -> dict[str, str | None]:
    """Each unit's deadline: the earliest start of an enforced device-conditioned `block`
    rule whose unit scope covers it, unless a deeper enforced `allow` rule carves the unit
    out (the iOS lab). Group- and user-scoped rules name no unit deadline."""
    out: dict[str, str | None] = {}
    for unit in units:
        starts = []
        for rule in snapshot.rules:
            if rule.report_only or rule.effect is not Action.BLOCK:
                continue
            if rule.when is None and rule.only is None:
                continue
            depth = _depth(unit, rule.units, rule.exclude_units)
            if depth is None:
                continue
            lifted = any(
                (_depth(unit, other.units, other.exclude_units) or -1) > depth
                for other in snapshot.rules
                if other.effect is Action.ALLOW and not other.report_only
            )
            if not lifted:
                starts.append(rule.start_at)
        out[unit] = min(starts).date().isoformat() if starts else None
    return out


def _depth(unit: str, scopes: tuple[str, ...], excluded: tuple[str, ...]) -> int | None:
    """How deep a unit scope covers `unit` (None: not covered) — for deadlines only."""
    if any(unit == s or unit.startswith(s + "/") for s in excluded):
        return None
    depths = [s.count("/") + 1 for s in scopes if unit == s or unit.startswith(s + "/")]
    return max(depths) if depths else None


def _iso(value: object) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


def summary(
    snapshot: Snapshot,
    tables: AuditTables,
    *,
    bad_lines: int,
    bad_sample: list[BadLine],
    skipped: int,
    files: list[dict[str, Any]],
    engine: str,
) -> dict[str, Any]:
    """The `--json` summary: the contract's keys first (docs/audit.md), then the context a
    reader needs."""
    totals = tables.totals
    units = tables.units.to_pylist()
    deadlines = unit_deadlines(snapshot, [str(row["unit"]) for row in units])
    by_unit = {
        str(row["unit"]): {
            "events": row["events"],
            "violations": row["violations"],
            "users_violating": row["users_violating"],
            "excepted": row["excepted"],
            "warned": row["warned"],
            "deadline": deadlines[str(row["unit"])],
        }
        for row in units
    }
    return {
        "events": int(totals["events"] or 0),  # type: ignore[call-overload]
        "bad_lines": bad_lines,
        "violations": int(totals["violations"] or 0),  # type: ignore[call-overload]
        "excepted": int(totals["excepted"] or 0),  # type: ignore[call-overload]
        "report_only_hits": int(totals["report_only_hits"] or 0),  # type: ignore[call-overload]
        "by_unit": by_unit,
        "first_event": _iso(totals["first_event"]),
        "last_event": _iso(totals["last_event"]),
        "policy_version": snapshot.version,
        "warned": int(totals["warned"] or 0),  # type: ignore[call-overload]
        "skipped_lines": skipped,
        "bad_line_sample": [
            {"file": b.file, "line": b.line, "reason": b.reason, "text": b.text} for b in bad_sample
        ],
        "engine": engine,
        "files": files,
    }


def still_to_replace(tables: AuditTables, last_event: object) -> pa.ChunkedArray:
    """Which rows of the devices table were flagged (violation, warning or exception) in the
    last `STILL_TO_REPLACE_DAYS` days of the data: a boolean per row."""
    import pyarrow.compute as pc

    devices = tables.devices
    if not isinstance(last_event, datetime) or devices.num_rows == 0:
        return pa.chunked_array([pa.array([False] * devices.num_rows, pa.bool_())])
    from datetime import timedelta

    cutoff = pa.scalar(
        last_event - timedelta(days=STILL_TO_REPLACE_DAYS),
        devices.schema.field("last_flagged").type,
    )
    return pc.fill_null(pc.greater_equal(devices.column("last_flagged"), cutoff), False)


def write_csv(table: pa.Table, path: Path) -> None:
    """`table` as CSV with a header, in its row order, written the way the engine writes
    violations.csv (DuckDB's writer: ten times Arrow's on devices_per_user's 80k rows)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET preserve_insertion_order = true")
        con.register("table_t", table)
        target = "'" + str(path).replace("'", "''") + "'"
        con.execute(f"COPY table_t TO {target} (FORMAT csv, HEADER)")
    finally:
        con.close()


def write_outputs(out: Path, tables: AuditTables, summary_data: dict[str, Any]) -> list[Path]:
    """Parquet tables and CSV exports of the small tables, plus summary.json."""
    written = []
    for name, table in (
        ("compliance_daily", tables.daily),
        ("devices_per_user", tables.devices),
        ("units", tables.units),
        ("report_only", tables.report_only),
    ):
        pq.write_table(table, out / f"{name}.parquet")
        write_csv(table, out / f"{name}.csv")
        written += [out / f"{name}.parquet", out / f"{name}.csv"]
    violations = out / "violations.csv"
    if not violations.exists():  # the engine writes it beside violations.parquet when it can
        write_csv(pq.read_table(out / "violations.parquet"), violations)
    written.append(violations)
    (out / "summary.json").write_text(
        json.dumps(summary_data, indent=2, ensure_ascii=False, default=str) + "\n",
        encoding="utf-8",
    )
    written.append(out / "summary.json")
    return written


def read_events(out: Path) -> pa.Table:
    """The events of an audit's `--out`, one row each, with their dimensions joined back.

    `events.parquet/` is a dataset of the ingested parts (`part-N.parquet`: one row per
    group of equal (user, resource, signals) of a log file, with the list of its event
    times and line numbers); `groups` gives each (part, group) its user, signals and file
    keys; `segments` the decision of each group in each policy segment (`breaks` says where
    segments start); `users`, `decisions`, `signals` and `files` what the keys stand for.
    Works for either engine.
    """
    import duckdb

    from devicegate.audit.judge import segment_sql

    def src(name: str) -> str:
        return "read_parquet('" + str(out / f"{name}.parquet").replace("'", "''") + "')"

    breaks = pq.read_table(out / "breaks.parquet").to_pylist()
    tz = str(breaks[0]["tz"]).replace("'", "''")
    seg = segment_sql("ts", [int(b["start_us"]) for b in breaks if b["start_us"] is not None])
    dataset = str(out / "events.parquet" / "part-*.parquet").replace("'", "''")
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.sql(
            f"SELECT e.ts, CAST(timezone('{tz}', e.ts) AS DATE) AS day, u.user, u.unit, "
            "d.resource, k.sid, s.device, s.vendor, s.platform, s.model, d.action, d.rule, "
            "d.violation, d.excepted, d.report_only, d.spoofing_suspected, f.file, e.line FROM "
            f"(SELECT *, ({seg})::INTEGER AS seg FROM (SELECT "
            "CAST(regexp_extract(filename, 'part-(\\d+)\\.parquet$', 1) AS INTEGER) AS part, g, "
            f"unnest(ts) AS ts, unnest(line) AS line FROM read_parquet('{dataset}', "
            "filename = true, union_by_name = true))) e "
            f"JOIN {src('groups')} k USING (part, g) "
            f"JOIN {src('segments')} x USING (part, g, seg) "
            f"JOIN {src('users')} u ON u.uid = k.uid JOIN {src('decisions')} d ON d.did = x.did "
            f"JOIN {src('signals')} s ON s.sid = k.sid JOIN {src('files')} f ON f.fid = k.fid"
        ).to_arrow_table()
    finally:
        con.close()
