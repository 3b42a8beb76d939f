"""What a log format module provides: a sniffer and a stateful line parser.

A format reads one file line by line (`feed`), returning the events a line completes —
usually one, none for lines that are not work accesses (counted as `skipped`; blank
lines are not even that), several
when a multi-line record ends. A line it cannot read raises `LineError`; the ingester turns
that into a counted, sampled `BadLine` and carries on: one broken line never stops a run.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from devicegate.audit.events import Event, LineError

ACTIVESYNC_PATH = "/microsoft-server-activesync"
_MAIL_PATHS = (ACTIVESYNC_PATH, "/owa", "/ews", "/mapi", "/rpc", "/autodiscover", "/oab")


@dataclass(frozen=True, slots=True)
class ParseContext:
    """What a parser needs beyond the line: the file's meaning and clock conventions.

    `resource` is the `--resource` the user gave (None: the format's default); `tz` reads
    timestamps that carry no zone (BSD syslog, FreeRADIUS detail headers); `year` completes
    BSD syslog stamps, which carry none.
    """

    file: str
    resource: str | None
    tz: ZoneInfo
    year: int


class LineParser(Protocol):
    skipped: int

    def feed(self, line: str, number: int) -> Sequence[Event]: ...

    def finish(self) -> Sequence[Event]: ...


class LogFormat(Protocol):
    """A log format module. `carries_device_data` is False for a log whose events have no
    device signals of their own (Postfix: SMTP): they are given the device of the user's
    earlier sightings before they are judged."""

    name: str
    default_resource: str
    carries_device_data: bool

    def sniff(self, lines: Sequence[str]) -> bool: ...

    def parser(self, ctx: ParseContext) -> LineParser: ...


def resource_for_path(path: str, given: str | None, default: str) -> str:
    """ActiveSync (and the other Exchange mail endpoints) are `email` whatever the log is."""
    lowered = path.lower()
    if lowered.startswith(_MAIL_PATHS):
        return "email"
    return given or default


def user_or_none(text: str) -> str | None:
    """The authenticated user as logged; `-` and empty mean nobody authenticated.

    The name is kept as the service presented it: a `DOMAIN\\login` (IIS, Exchange) is
    resolved to its directory user later, once per distinct name, as `devicegate serve`
    resolves it (`policy.bulk.user`) — the domain is never stripped to guess the login.
    """
    text = text.strip()
    if text in ("", "-"):
        return None
    return text


_SYSLOG_BSD = re.compile(
    r"^(?P<mon>[A-Z][a-z]{2}) {1,2}(?P<day>\d{1,2}) (?P<time>\d\d:\d\d:\d\d)(?:\.\d+)? "
    r"(?P<host>\S+) "
    r"(?P<rest>.*)$"
)
_SYSLOG_ISO = re.compile(
    r"^(?P<stamp>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?) "
    r"(?P<host>\S+) (?P<rest>.*)$"
)
MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


def syslog_line(line: str, ctx: ParseContext) -> tuple[datetime, str] | None:
    """The preamble of the syslog formats (Dovecot, Postfix): (time, message after the host)
    of `line`; None for a blank line (nothing, not even skipped); `LineError` when the line
    is not syslog."""
    text = line.rstrip("\r\n")
    if not text.strip():
        return None
    split = split_syslog(text, ctx)
    if split is None:
        raise LineError("not a syslog line")
    return split


def split_syslog(line: str, ctx: ParseContext) -> tuple[datetime, str] | None:
    """(time, message after the host) of a BSD (`Jul 17 09:00:01 host …`) or RFC 3339
    (`2023-07-17T09:00:01+03:00 host …`) syslog line; None when it is neither."""
    match = _SYSLOG_ISO.match(line)
    if match is not None:
        stamp = match["stamp"].replace("Z", "+00:00")
        try:
            at = datetime.fromisoformat(stamp)
        except ValueError:
            return None
        if at.tzinfo is None:
            at = at.replace(tzinfo=ctx.tz)
        return at, match["rest"]
    match = _SYSLOG_BSD.match(line)
    if match is None:
        return None
    try:
        hour, minute, second = (int(x) for x in match["time"].split(":"))
        at = datetime(
            ctx.year, MONTHS[match["mon"]], int(match["day"]), hour, minute, second, tzinfo=ctx.tz
        )
    except (KeyError, ValueError):
        return None
    return at, match["rest"]
