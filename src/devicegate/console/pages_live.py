"""The live page: decisions as `serve` logs them, filtered, streamed by server-sent events.

The page itself lists the newest matching decisions (readable without JavaScript; reload
for more). With JavaScript, htmx's SSE extension opens `/live/stream`, which polls the store
for decisions after the last one shown every `live_poll` seconds (by primary key, at most
`raw.LIVE_BATCH` a round) and sends each as a table row. *Pause* is the same page without
the stream; *resume* brings it back from the newest decision.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from devicegate.console import raw
from devicegate.console.i18n import Formats
from devicegate.console.units import under, unit_index
from devicegate.console.web import environment, int_param, locale_of, render, runtime, who

FIELD_MAX = 320
#: rows sent a polling round at most (`live_poll`: 0.5 s by default, so 40 a second)
SHOWN_PER_ROUND = 20
#: a stream ends after this long (the browser's EventSource reconnects by itself)
STREAM_SECONDS = 600.0


def filters_of(request: Request) -> dict[str, str]:
    """The filters in the query: known names only, bounded, printable."""
    out = {}
    for name in (*raw.FILTERS, "unit"):
        value = request.query_params.get(name, "").strip()
        if value and len(value) <= FIELD_MAX and value.isprintable():
            out[name] = value
    return out


def users_of_unit(request: Request, unit: str | None) -> list[str] | None:
    if not unit:
        return None
    snapshot = runtime(request).snapshot
    return [u.id for u in snapshot.directory.users if under(u.unit, unit)]


def live(request: Request) -> Response:
    me = who(request)
    rt = runtime(request)
    filters = filters_of(request)
    users = users_of_unit(request, filters.get("unit"))
    rows, newest = raw.live_recent(rt.store, filters, users)
    paused = request.query_params.get("paused") == "1"
    context = {
        "rows": rows,
        "newest": newest,
        "filters": filters,
        "paused": paused,
        "units": sorted(unit_index(rt.snapshot).every),
        "resources": sorted(rt.snapshot.resources),
        "rules": [r.id for r in rt.snapshot.rules],
        "query": {k: v for k, v in filters.items()},
    }
    return render(request, "live.html", context, me=me)


def _event(html: str, name: str = "decision") -> bytes:
    lines = "".join(f"data: {line}\n" for line in html.splitlines() or [""])
    return f"event: {name}\n{lines}\n".encode()


async def stream(request: Request) -> Response:
    who(request)
    rt = runtime(request)
    filters = filters_of(request)
    users = users_of_unit(request, filters.get("unit"))
    after = int_param(request, "after", 0, 10**18)
    locale = locale_of(request)
    template = environment(locale).get_template("_decision_row.html")
    skipped = environment(locale).get_template("_skipped_row.html")
    fmt = Formats(locale, rt.snapshot.timezone)

    async def events() -> AsyncIterator[bytes]:
        last = after if after is not None else await run_in_threadpool(raw.newest_id, rt.store)
        loop = asyncio.get_running_loop()
        ends = loop.time() + STREAM_SECONDS
        yield b": connected\n\n"
        while loop.time() < ends:
            if await request.is_disconnected():
                return
            try:
                rows, last = await run_in_threadpool(raw.live_after, rt.store, last, filters, users)
            except Exception:  # the store is away: say nothing, try again next round
                rows = []
            # a person reads a few rows a second: under heavy traffic only the newest are sent,
            # with how many were passed over (the stream must never cost `serve` its speed)
            if len(rows) > SHOWN_PER_ROUND:
                yield _event(skipped.render(n=len(rows) - SHOWN_PER_ROUND), "skipped")
                rows = rows[-SHOWN_PER_ROUND:]
            for row in rows:
                yield _event(template.render(d=row, fmt=fmt))
            await asyncio.sleep(rt.config.live_poll)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def query_string(values: Mapping[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(values)


__all__ = ["live", "stream"]
