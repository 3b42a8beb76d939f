"""The audit's report.html: one self-contained page people can read and forward.

No network at all: the data is embedded as JSON and a small inline script draws the charts
as SVG (bars per unit against its deadline, the daily trend with deadline markers, what the
report-only rules would have done). Every table is plain HTML, so the page still says
everything with scripts off. Each chart marks itself `data-drawn="yes"` once drawn, which
is what the headless-Chromium test checks.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from devicegate.audit.compliance import still_to_replace, unit_deadlines
from devicegate.audit.tables import AuditTables
from devicegate.policy import Snapshot
from devicegate.report.assets import CHART_JS, STYLE

TOP = 15
LIST_LIMIT = 300


def _more(count: int) -> str:
    if count <= LIST_LIMIT:
        return ""
    return f"; the {LIST_LIMIT} with most violations are listed, all are in devices_per_user.csv"


def _cell(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return html.escape(str(value))


def _table(rows: list[dict[str, Any]], columns: list[str], caption: str) -> str:
    if not rows:
        return f"<p class='empty'>{html.escape(caption)}: none.</p>"
    head = "".join(f"<th>{html.escape(c.replace('_', ' '))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(row.get(c))}</td>" for c in columns) + "</tr>" for row in rows
    )
    return (
        f"<table><caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _chart_data(snapshot: Snapshot, tables: AuditTables) -> dict[str, Any]:
    units = tables.units.to_pylist()
    deadlines = unit_deadlines(snapshot, [str(u["unit"]) for u in units])
    trend: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in tables.daily.to_pylist():
        day = row["day"].isoformat()
        for key in ("events", "violations", "warned", "excepted"):
            trend[day][key] += int(row[key])
    report_only: dict[str, int] = defaultdict(int)
    for row in tables.report_only.to_pylist():
        report_only[f"{row['rule']} would {row['action']}"] += int(row["events"])
    return {
        "units": [
            {
                "unit": u["unit"],
                "events": u["events"],
                "violations": u["violations"],
                "warned": u["warned"],
                "excepted": u["excepted"],
                "deadline": deadlines[str(u["unit"])],
            }
            for u in units
        ],
        "trend": [{"day": day, **values} for day, values in sorted(trend.items())],
        "deadlines": sorted({d for d in deadlines.values() if d}),
        "report_only": [{"label": k, "events": v} for k, v in sorted(report_only.items())],
    }


def _top(devices: pa.Table, key: str) -> list[dict[str, Any]]:
    """The `TOP` users or devices by violations (vectorised: the table can be large)."""
    flagged = devices.filter(pc.greater(devices.column("violations"), 0))
    if flagged.num_rows == 0:
        return []
    grouped = flagged.group_by(key).aggregate(
        [("violations", "sum"), ("events", "sum"), ("user", "count_distinct"), ("unit", "min")]
    )
    grouped = grouped.rename_columns(
        [
            {
                "violations_sum": "violations",
                "events_sum": "events",
                "user_count_distinct": "users",
                "unit_min": "unit",
            }.get(n, n)
            for n in grouped.column_names
        ]
    )
    top: list[dict[str, Any]] = (
        grouped.sort_by([("violations", "descending"), (key, "ascending")])
        .slice(0, TOP)
        .to_pylist()
    )
    return top


def render_report(
    out: Path, snapshot: Snapshot, tables: AuditTables, summary: dict[str, Any]
) -> Path:
    """Write `out/report.html` and return its path."""
    data = _chart_data(snapshot, tables)
    devices = tables.devices
    pending = still_to_replace(tables, tables.totals.get("last_event"))
    replace = (
        pending.sort_by(
            [("violations", "descending"), ("unit", "ascending"), ("user", "ascending")]
        )
        .slice(0, LIST_LIMIT)
        .to_pylist()
    )
    units_rows = [
        {
            **u,
            "compliant_share": f"{100 * (1 - (u['violations'] + u['warned']) / u['events']):.1f} %"
            if u["events"]
            else "—",
        }
        for u in data["units"]
    ]
    payload = json.dumps(data, default=str).replace("</", "<\\/")
    cards = "".join(
        f"<div class='card'><b>{_cell(summary[k])}</b><span>{k.replace('_', ' ')}</span></div>"
        for k in ("events", "violations", "excepted", "warned", "report_only_hits", "bad_lines")
    )
    bad = summary.get("bad_line_sample", [])
    body = f"""
<header><h1>Device policy compliance audit</h1>
<p>Policy <code>{_cell(summary["policy_version"])}</code> · events from
{_cell(summary["first_event"])} to {_cell(summary["last_event"])} · engine
{_cell(summary["engine"])}. Every event was judged by the policy as it stood at the event's
own time (waves, notice periods, exceptions' expiry).</p></header>
<section class="cards">{cards}</section>
<section><h2>Per-unit compliance against each unit's deadline</h2>
<div id="chart-units" class="chart" role="img"
 aria-label="violations, warnings and exceptions per unit"></div>
{
        _table(
            units_rows,
            ["unit", "deadline", "events", "violations", "warned", "excepted", "compliant_share"],
            "Units",
        )
    }</section>
<section><h2>Daily trend</h2>
<div id="chart-trend" class="chart" role="img" aria-label="daily violations and warnings"></div>
</section>
<section><h2>Top violating users</h2>
{_table(_top(devices, "user"), ["user", "unit", "violations", "events"], "Users")}</section>
<section><h2>Top violating devices</h2>
{_table(_top(devices, "device"), ["device", "violations", "events", "users"], "Devices")}
</section>
<section><h2>Devices still to replace</h2>
<p>{pending.num_rows} device(s) drew a violation, a warning or needed an exception in the
last seven days of the data{_more(pending.num_rows)}.</p>
{
        _table(
            replace,
            [
                "user",
                "unit",
                "device",
                "device_id",
                "violations",
                "warned",
                "excepted",
                "last_flagged",
            ],
            "Devices still to replace",
        )
    }</section>
<section><h2>What the report-only rules would have done</h2>
<div id="chart-report-only" class="chart" role="img" aria-label="report-only hits"></div>
{
        _table(
            tables.report_only.to_pylist(),
            ["rule", "action", "unit", "events", "users"],
            "Report-only hits",
        )
    }</section>
<section><h2>Lines that could not be read</h2>
<p>{_cell(summary["bad_lines"])} bad line(s); the first ones:</p>
{_table(bad, ["file", "line", "reason", "text"], "Bad lines")}</section>
"""
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
        f"<title>devicegate audit {_cell(summary['policy_version'])}</title>"
        f"<style>{STYLE}</style></head><body>{body}"
        f"<script type='application/json' id='audit-data'>{payload}</script>"
        f"<script>{CHART_JS}</script></body></html>"
    )
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
