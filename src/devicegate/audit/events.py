"""The one shape every log format is parsed into, and the bad-line record.

A parsed log line becomes an `Event`: when, who (as the service authenticated them), which
work resource, and the raw device signals the service logged. Formats only *extract*; they
never identify a device nor judge it — that happens once per distinct signal in `judge`.
An event's signals are kept raw so that the audit identifies exactly what the online path
would have been given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

#: Signal columns an event may carry (a subset of `model.Signals`; `client_ip` is kept
#: apart because identification does not use it and it would defeat distinct-signal reuse).
SIGNAL_COLUMNS = (
    "user_agent",
    "activesync_query",
    "activesync_device_id",
    "activesync_device_type",
    "imap_id",
    "mac",
)

#: Arrow schema of parsed events before ingestion adds the signal key.
EVENT_SCHEMA = pa.schema(
    [
        ("line", pa.int64()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("user", pa.string()),
        ("resource", pa.string()),
        ("client_ip", pa.string()),
        *[(name, pa.string()) for name in SIGNAL_COLUMNS],
    ]
)


@dataclass(frozen=True, slots=True)
class Event:
    """One work access found in a log."""

    line: int
    ts: datetime
    user: str
    resource: str
    client_ip: str | None = None
    user_agent: str | None = None
    activesync_query: str | None = None
    activesync_device_id: str | None = None
    activesync_device_type: str | None = None
    imap_id: str | None = None
    mac: str | None = None


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that could not be parsed: counted, and sampled with its place and reason."""

    file: str
    line: int
    reason: str
    text: str

    def format(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class LineError(ValueError):
    """Raised by a format's line parser for a line it cannot read (becomes a `BadLine`)."""


def events_table(events: list[Event]) -> pa.Table:
    """Column-wise Arrow table of `events` (cheap: one pass, one list per column)."""
    columns: dict[str, list[object]] = {name: [] for name in EVENT_SCHEMA.names}
    for event in events:
        for name in EVENT_SCHEMA.names:
            columns[name].append(getattr(event, name))
    return pa.table(columns, schema=EVENT_SCHEMA)


def clip_text(text: str, limit: int = 300) -> str:
    """A bad line as it may be shown in a report: cut short, control characters escaped."""
    text = text.rstrip("\r\n")
    if len(text) > limit:
        text = text[:limit] + "…"
    return text.encode("unicode_escape", "backslashreplace").decode("ascii", "replace")
