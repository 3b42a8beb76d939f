"""The audit's report.html: one self-contained page people can read and forward.

No network and no script at all: the charts are SVG drawn here by `devicegate.charts`, the
renderer the console uses too (bars per unit against its deadline, the daily trend with
deadline markers, what the report-only rules would have done). Every table is plain HTML.
Each chart's box is marked `data-drawn="yes"`, which the headless-Chromium test checks.
"""

from __future__ import annotations

import html
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from devicegate.audit.compliance import still_to_replace, unit_deadlines
from devicegate.audit.results import AuditTables
from devicegate.charts import BarRow, hbars, lines
from devicegate.policy import Snapshot
from devicegate.report.assets import STYLE
from devicegate.report.devices import by_model, devices_of, with_times

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


SERIES = ("violations", "warned", "excepted")


def _charts(data: dict[str, Any]) -> dict[str, str]:
    """The report's three charts as SVG (`devicegate.charts`)."""
    units = hbars(
        [
            BarRow(
                str(u["unit"]),
                {k: int(u[k]) for k in SERIES},
                f"(from {u['deadline']})" if u["deadline"] else "",
            )
            for u in data["units"]
        ],
        SERIES,
        label="violations, warnings and exceptions per unit",
        empty="no events",
    )
    trend = lines(
        [r["day"] for r in data["trend"]],
        {k: [int(r[k]) for r in data["trend"]] for k in SERIES},
        label="daily violations, warnings and exceptions",
        marks=[(d, f"deadline {d}") for d in data["deadlines"]],
    )
    report_only = hbars(
        [BarRow(r["label"], {"report-only": int(r["events"])}) for r in data["report_only"]],
        ["report-only"],
        label="what the report-only rules would have done",
        left=330,
        empty="no report-only rule matched",
    )
    return {"units": units, "trend": trend, "report_only": report_only}


def _top_users(devices: pa.Table) -> list[dict[str, Any]]:
    """The `TOP` users by violations (vectorised: the table can be large)."""
    flagged = devices.filter(pc.greater(devices.column("violations"), 0))
    if flagged.num_rows == 0:
        return []
    grouped = flagged.group_by("user").aggregate(
        [("violations", "sum"), ("events", "sum"), ("unit", "min")]
    )
    grouped = grouped.rename_columns(
        [
            {"violations_sum": "violations", "events_sum": "events", "unit_min": "unit"}.get(n, n)
            for n in grouped.column_names
        ]
    )
    top: list[dict[str, Any]] = (
        grouped.sort_by([("violations", "descending"), ("user", "ascending")])
        .slice(0, TOP)
        .to_pylist()
    )
    return top


def compliant_share(events: int, violations: int) -> str:
    """The share of a unit's events that complied: everything but violations. A warning
    before the date is compliant — the device may still be used then."""
    return f"{100 * (1 - violations / events):.1f} %" if events else "—"


def _seen_as(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r | {"also_seen_as": "; ".join(dict.fromkeys(r["also_seen_as"])) or None} for r in rows]


def render_report(
    out: Path, snapshot: Snapshot, tables: AuditTables, summary: dict[str, Any]
) -> Path:
    """Write `out/report.html` and return its path."""
    data = _chart_data(snapshot, tables)
    devices = tables.devices
    found = devices_of(
        devices,
        {
            "pending": still_to_replace(tables, tables.totals.get("last_event")),
            "violating": pc.greater(devices.column("violations"), 0),
        },
    )
    pending = found["pending"]
    pending.sort(key=lambda d: (-d["violations"], d["unit"], d["user"], d["device"]))
    replace = _seen_as(with_times(pending[:LIST_LIMIT]))
    # the devices (not models) that drew a violation, most violations first
    violating = found["violating"]
    violating.sort(key=lambda d: (-d["violations"], d["user"], d["device"]))
    units_rows = [
        {**u, "compliant_share": compliant_share(u["events"], u["violations"])}
        for u in data["units"]
    ]
    charts = _charts(data)
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
<div id="chart-units" class="chart" data-drawn="yes">{charts["units"]}</div>
{
        _table(
            units_rows,
            ["unit", "deadline", "events", "violations", "warned", "excepted", "compliant_share"],
            "Units",
        )
    }</section>
<section><h2>Daily trend</h2>
<div id="chart-trend" class="chart" data-drawn="yes">{charts["trend"]}</div>
</section>
<section><h2>Top violating users</h2>
{_table(_top_users(devices), ["user", "unit", "violations", "events"], "Users")}</section>
<section><h2>Top violating devices</h2>
<p>One row per device: what several services saw of one phone at different precision is
counted once, under its most precise description.</p>
{
        _table(
            _seen_as(violating[:TOP]),
            ["user", "unit", "device", "device_id", "violations", "events", "also_seen_as"],
            "Devices",
        )
    }
</section>
<section><h2>Violations by device model</h2>
{_table(by_model(violating, TOP), ["model", "violations", "devices", "users"], "Models")}
</section>
<section><h2>Devices still to replace</h2>
<p>{len(pending)} device(s) drew a violation, a warning or needed an exception in the
last seven days of the data{_more(len(pending))}.</p>
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
                "also_seen_as",
            ],
            "Devices still to replace",
        )
    }</section>
<section><h2>What the report-only rules would have done</h2>
<div id="chart-report-only" class="chart" data-drawn="yes">{charts["report_only"]}</div>
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
        "style-src 'unsafe-inline'; img-src data:\">"
        f"<title>devicegate audit {_cell(summary['policy_version'])}</title>"
        f"<style>{STYLE}</style></head><body>{body}</body></html>"
    )
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
