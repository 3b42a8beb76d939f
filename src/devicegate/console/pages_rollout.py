"""The overview (every rule's rollout per unit, tiles, the servers) and the unit page (who
in a subtree still uses a banned device, sortable, as CSV)."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

from starlette.requests import Request
from starlette.responses import Response

from devicegate.charts import Span, spark, timeline
from devicegate.console import rolled
from devicegate.console.units import under, unit_index
from devicegate.console.web import NotFound, int_param, render, runtime, who
from devicegate.store.heartbeats import STALE_AFTER, heartbeats
from devicegate.store.rollups import position

SOON_DAYS = 7
MAX_DAYS = 90


def days_param(request: Request, default: int) -> int:
    """`?days=N`, bounded 1…MAX_DAYS; anything else is the default."""
    days = int_param(request, "days", 1, MAX_DAYS)
    return default if days is None else days


def today_of(request: Request) -> date:
    rt = runtime(request)
    return rt.now().astimezone(rt.snapshot.timezone).date()


def overview(request: Request) -> Response:
    me = who(request)
    rt = runtime(request)
    snapshot, store = rt.snapshot, rt.store
    today = today_of(request)
    days = days_param(request, rt.config.window_days)
    first, last = rolled.window(today, days)
    rules = rolled.progress(store, snapshot, today, days)
    trends = {
        (p.rule.id, row.unit): spark(row.trend, label=f"{p.rule.id} {row.unit}")
        for p in rules
        for row in p.units
    }
    zone = snapshot.timezone
    spans = [
        Span(
            r.id,
            datetime.fromtimestamp(r.notice_start, zone).date()
            if r.notice_start < r.start
            else None,
            r.start_at.astimezone(zone).date(),
            r.until_at.astimezone(zone).date() if r.until_at else None,
            "report-only" if r.report_only else r.effect.value,
        )
        for r in snapshot.rules
    ]
    waves = timeline(spans, today=today, label="waves: each rule's notice, start and end")
    now = rt.now()
    ending = [
        e
        for e in snapshot.exceptions
        if e.active(now.timestamp()) and e.end - now.timestamp() <= SOON_DAYS * 86400
    ]
    restricted = rt.store.list_devices(only_restricted=True)
    beats = heartbeats(store)
    context = {
        "rules": rules,
        "trends": trends,
        "waves": waves,
        "days": days,
        "first": first,
        "last": last,
        "today_counts": rolled.decisions_on(store, today),
        "report_only": rolled.report_only_hits(store, first, last),
        "held": sum(1 for d in restricted if d.held),
        "compromised": sum(1 for d in restricted if d.verdict == "compromised"),
        "ending": ending,
        "beats": [(b, b.stale(now, STALE_AFTER)) for b in beats],
        "position": position(store),
    }
    return render(request, "overview.html", context, me=me)


def unit(request: Request) -> Response:
    me = who(request)
    rt = runtime(request)
    name = request.path_params["unit"].strip("/")
    index = unit_index(rt.snapshot)
    if name not in index.every:
        raise NotFound("no unit `%(name)s`", name=name)
    today = today_of(request)
    days = days_param(request, rt.config.window_days)
    sort = request.query_params.get("sort", "user")
    if sort not in rolled.COLUMNS:
        sort = "user"
    descending = request.query_params.get("dir") == "desc"
    rows = rolled.sort_rows(
        rolled.still_using(rt.store, rt.snapshot, name, today, days, rt.now()), sort, descending
    )
    if request.query_params.get("format") == "csv":
        return _csv(request, rows, name)
    children = sorted(
        u
        for u in index.every
        if u != name and under(u, name) and u.count("/") == name.count("/") + 1
    )
    context = {
        "unit": name,
        "rows": rows,
        "sort": sort,
        "descending": descending,
        "days": days,
        "children": children,
        "parents": ["/".join(name.split("/")[: i + 1]) for i in range(name.count("/"))],
        "columns": rolled.COLUMNS,
    }
    return render(request, "unit.html", context, me=me)


def _csv(request: Request, rows: list[rolled.StillUsing], name: str) -> Response:
    """The unit page's table as CSV: the same rows, columns and cell texts."""
    from devicegate.console.i18n import Formats
    from devicegate.console.web import locale_of

    fmt = Formats(locale_of(request), runtime(request).snapshot.timezone)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(rolled.COLUMNS)
    for row in rows:
        writer.writerow([_cell(v) for v in row.cells(fmt)])
    filename = name.replace("/", "_") or "units"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
    )


def _cell(value: str) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (user names are chosen by
    whoever the directory lists, signals by clients)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


__all__ = ["overview", "unit"]
