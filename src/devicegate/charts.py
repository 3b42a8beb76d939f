"""SVG charts drawn on the server: the audit report and the console share these.

A chart is a string of SVG markup — no script, no network, no charting framework — so a
page shows it with JavaScript off and under a Content-Security-Policy without inline
script. Every text that came from data (unit names, rule ids, labels) is XML-escaped here;
callers hand over plain text. Each chart carries `role="img"` and a `<title>` so a screen
reader announces what it shows; colours come from one palette with enough contrast against
white for text and marks.

    hbars(rows, series)        stacked horizontal bars, one row per label (units, rules)
    lines(days, series, marks) a daily trend with dashed markers (deadlines)
    timeline(items, ...)       each rule's notice, start and end on a calendar, today marked
    spark(values)              a small per-day trend beside a table row
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from xml.sax.saxutils import escape

#: colour per series name; darker than Material's defaults so labels in them read (WCAG AA)
COLORS: dict[str, str] = {
    "violations": "#b71c1c",
    "blocked": "#b71c1c",
    "block": "#b71c1c",
    "warned": "#8a5a00",
    "warn": "#8a5a00",
    "excepted": "#6a1b9a",
    "quarantine": "#4a148c",
    "allow": "#1b5e20",
    "events": "#455a64",
    "seen": "#b71c1c",
    "report-only": "#283593",
}
DEFAULT_COLOR = "#37474f"
INK = "#1d2433"


def _a(value: object) -> str:
    """An attribute value, quoted and escaped."""
    return '"' + escape(str(value), {'"': "&quot;"}) + '"'


def _svg(width: int, height: int, label: str, body: Sequence[str], css: str = "") -> str:
    cls = f" class={_a(css)}" if css else ""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label={_a(label)}{cls}>'
        f"<title>{escape(label)}</title>" + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "start", css: str = "") -> str:
    cls = f" class={_a(css)}" if css else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{INK}" '
        f'font-size="11" font-family="system-ui,sans-serif"{cls}>{escape(text)}</text>'
    )


def _color(name: str) -> str:
    return COLORS.get(name, DEFAULT_COLOR)


def _legend(names: Sequence[str], x: float, y: float, labels: Mapping[str, str]) -> list[str]:
    out = []
    for i, name in enumerate(names):
        left = x + i * 130
        out.append(
            f'<rect x="{left:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{_color(name)}"/>'
        )
        out.append(_text(left + 14, y, labels.get(name, name)))
    return out


@dataclass(frozen=True, slots=True)
class BarRow:
    """One row of `hbars`: its label and a value per series."""

    label: str
    values: Mapping[str, int]
    note: str = ""  # shown after the label, e.g. "(from 2023-07-17)"


def hbars(
    rows: Sequence[BarRow],
    series: Sequence[str],
    *,
    label: str,
    labels: Mapping[str, str] | None = None,
    width: int = 1000,
    left: int = 300,
    empty: str = "nothing to show",
) -> str:
    """Stacked horizontal bars, one row per `rows`, scaled to the largest total; the first
    series' value is printed after each bar."""
    labels = labels or {}
    row_h = 22
    height = max(1, len(rows)) * row_h + (40 if len(series) > 1 else 16)
    body: list[str] = []
    if not rows:
        body.append(_text(10, 16, empty))
        return _svg(width, height, label, body)
    most = max(1, *(sum(r.values.get(s, 0) for s in series) for r in rows))
    room = width - left - 80
    for i, row in enumerate(rows):
        y = 6 + i * row_h
        x = float(left)
        name = f"{row.label} {row.note}".strip()
        body.append(_text(left - 8, y + 12, name, "end"))
        for s in series:
            value = row.values.get(s, 0)
            w = room * value / most
            if w > 0:
                body.append(
                    f'<rect class="bar" x="{x:.1f}" y="{y}" width="{w:.1f}" '
                    f'height="{row_h - 6}" fill="{_color(s)}"><title>'
                    f"{escape(f'{row.label}: {value} {labels.get(s, s)}')}</title></rect>"
                )
                x += w
        body.append(_text(x + 6, y + 12, str(row.values.get(series[0], 0))))
    if len(series) > 1:
        body += _legend(series, left, height - 8, labels)
    return _svg(width, height, label, body)


def lines(
    days: Sequence[str],
    series: Mapping[str, Sequence[int]],
    *,
    label: str,
    marks: Sequence[tuple[str, str]] = (),
    labels: Mapping[str, str] | None = None,
    width: int = 1000,
    height: int = 260,
    empty: str = "no events",
) -> str:
    """A line per series over `days` (ISO dates, ascending); `marks` are (day, text) drawn
    as dashed verticals at the first day on or after it (deadlines)."""
    labels = labels or {}
    left, bottom, top = 50, 30, 10
    body: list[str] = []
    if not days:
        body.append(_text(left, 40, empty))
        return _svg(width, height, label, body)
    most = max(1, *(max(values, default=0) for values in series.values()))
    step = (width - left - 10) / max(1, len(days) - 1)

    def x_of(i: int) -> float:
        return left + i * step

    def y_of(v: float) -> float:
        return top + (height - top - bottom) * (1 - v / most)

    body.append(
        f'<line x1="{left}" y1="{y_of(0):.1f}" x2="{width - 10}" y2="{y_of(0):.1f}" stroke="#667"/>'
    )
    body.append(_text(left - 6, y_of(most) + 4, str(most), "end"))
    body.append(_text(left - 6, y_of(0) + 4, "0", "end"))
    for day, text in marks:
        index = next((i for i, d in enumerate(days) if d >= day), None)
        if index is None:
            continue
        body.append(
            f'<line class="deadline" x1="{x_of(index):.1f}" y1="{top}" x2="{x_of(index):.1f}" '
            f'y2="{y_of(0):.1f}" stroke="{INK}" stroke-dasharray="4 3"/>'
        )
        body.append(_text(x_of(index) + 4, top + 10, text))
    for name, values in series.items():
        points = " ".join(f"{x_of(i):.1f},{y_of(v):.1f}" for i, v in enumerate(values))
        body.append(
            f'<polyline class="series" points="{points}" fill="none" '
            f'stroke="{_color(name)}" stroke-width="2"/>'
        )
    every = max(1, -(-len(days) // 10))
    for i, day in enumerate(days):
        if i % every == 0:
            body.append(_text(x_of(i), height - bottom + 16, day[5:], "middle"))
    body += _legend(list(series), left + 10, height - 2, labels)
    return _svg(width, height, label, body)


@dataclass(frozen=True, slots=True)
class Span:
    """One row of `timeline`: a notice period from `notice` to `start`, then in force until
    `end` (None: open-ended)."""

    label: str
    notice: date | None
    start: date
    end: date | None
    kind: str = "block"  # the colour: the rule's effect, or "report-only"


def timeline(
    spans: Sequence[Span],
    *,
    today: date,
    label: str,
    first: date | None = None,
    last: date | None = None,
    width: int = 1000,
    left: int = 220,
    today_text: str = "today",
) -> str:
    """Each span on one calendar: the notice period hatched light, the time in force solid,
    an open end running to the right edge; a vertical line marks `today`."""
    row_h = 24
    top = 20
    height = max(1, len(spans)) * row_h + top + 22
    dates = [d for s in spans for d in (s.notice, s.start, s.end) if d] + [today]
    lo = first or min(dates)
    hi = last or max(dates)
    lo = min(lo, today)
    hi = max(hi, today)
    days = max(1, (hi - lo).days + 7)
    room = width - left - 20

    def x_of(d: date) -> float:
        return left + room * (d - lo).days / days

    body: list[str] = []
    for i, span in enumerate(spans):
        y = top + i * row_h
        body.append(_text(left - 8, y + 12, span.label, "end"))
        color = _color(span.kind)
        if span.notice is not None and span.notice < span.start:
            body.append(
                f'<rect class="notice" x="{x_of(span.notice):.1f}" y="{y}" '
                f'width="{x_of(span.start) - x_of(span.notice):.1f}" height="{row_h - 8}" '
                f'fill="{color}" fill-opacity="0.25"><title>'
                f"{escape(f'{span.label}: notice from {span.notice}')}</title></rect>"
            )
        end = x_of(span.end) if span.end is not None else left + room
        until = f" until {span.end}" if span.end else ""
        body.append(
            f'<rect class="active" x="{x_of(span.start):.1f}" y="{y}" '
            f'width="{max(1.0, end - x_of(span.start)):.1f}" height="{row_h - 8}" '
            f'fill="{color}"><title>{escape(f"{span.label}: from {span.start}{until}")}'
            "</title></rect>"
        )
    tx = x_of(today)
    body.append(
        f'<line class="today" x1="{tx:.1f}" y1="{top - 4}" x2="{tx:.1f}" y2="{height - 18}" '
        f'stroke="{INK}" stroke-width="2"/>'
    )
    anchor = "start" if tx < left + room / 2 else "end"
    body.append(_text(tx + (4 if anchor == "start" else -4), 12, f"{today_text} {today}", anchor))
    body.append(_text(left, height - 4, lo.isoformat()))
    body.append(_text(left + room, height - 4, (lo + timedelta(days=days)).isoformat(), "end"))
    return _svg(width, height, label, body)


def spark(values: Sequence[int], *, label: str, width: int = 120, height: int = 24) -> str:
    """A small trend line (one point a day), for a table cell."""
    if not values:
        return _svg(width, height, label, [])
    most = max(1, *values)
    step = (width - 4) / max(1, len(values) - 1)
    points = " ".join(
        f"{2 + i * step:.1f},{height - 2 - (height - 4) * v / most:.1f}"
        for i, v in enumerate(values)
    )
    return _svg(
        width,
        height,
        label,
        [f'<polyline points="{points}" fill="none" stroke="{_color("seen")}" stroke-width="1.5"/>'],
        css="spark",
    )


__all__ = ["COLORS", "BarRow", "Span", "hbars", "lines", "spark", "timeline"]
