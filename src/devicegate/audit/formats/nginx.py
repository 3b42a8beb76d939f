"""nginx / Apache "combined" access logs.

    $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
        "$http_referer" "$http_user_agent" [more fields…]

The user is `$remote_user` (`-`: nobody authenticated; such lines are skipped, not bad).
nginx escapes `"`, `\\` and control bytes in quoted fields as `\\xHH`; Apache writes `\\"`
and `\\\\`: both are undone here so that identification sees the header the client sent.
An ActiveSync request (`/Microsoft-Server-ActiveSync?…`) is `email` and its query travels
on as the `activesync_query` signal; anything else is the `--resource` (default `web`).

The Python parser below is the reference; `nginx_fast.py` reads well-formed lines of big
files in DuckDB and hands every line it is not sure about to this parser.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from devicegate.audit.events import Event, LineError
from devicegate.audit.formats.base import (
    ACTIVESYNC_PATH,
    ParseContext,
    resource_for_path,
    user_or_none,
)

name = "nginx"
default_resource = "web"
#: its events carry device signals of their own (see `base.LogFormat`)
carries_device_data = True

_QUOTED = r'"((?:[^"\\]|\\.)*)"'
LINE = re.compile(
    r"^(?P<ip>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] "
    + _QUOTED.replace("(", "(?P<request>", 1)
    + r" (?P<status>\d{3}|-) (?P<bytes>\d+|-) "
    + _QUOTED.replace("(", "(?P<referer>", 1)
    + " "
    + _QUOTED.replace("(", "(?P<ua>", 1)
    + r"(?: .*)?$"
)
_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|.)")
_SIMPLE = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
TIME_FORMAT = "%d/%b/%Y:%H:%M:%S %z"


def unescape(text: str) -> str:
    """Undo nginx (`\\xHH`) and Apache (`\\"`, `\\\\`, `\\n`) escaping; bytes decode as UTF-8."""
    if "\\" not in text:
        return text
    out = bytearray()
    pos = 0
    for match in _ESCAPE.finditer(text):
        out += text[pos : match.start()].encode("utf-8", "surrogateescape")
        code = match.group(1)
        if code[0] == "x" and len(code) == 3:
            out.append(int(code[1:], 16))
        else:
            out += _SIMPLE.get(code, "\\" + code).encode("utf-8", "surrogateescape")
        pos = match.end()
    out += text[pos:].encode("utf-8", "surrogateescape")
    return out.decode("utf-8", "replace")


def parse_time(text: str) -> datetime:
    try:
        return datetime.strptime(text, TIME_FORMAT)
    except ValueError:
        raise LineError(f"bad time `{text[:40]}`") from None


def request_target(request: str) -> str:
    """The target of `GET /path?query HTTP/1.1` ('' when the request line is garbage)."""
    parts = request.split(" ")
    return parts[1] if len(parts) >= 2 else ""


def sniff(lines: Sequence[str]) -> bool:
    hits = sum(1 for line in lines if LINE.match(line.rstrip("\r\n")))
    return hits > 0 and hits >= len([x for x in lines if x.strip()]) / 2


def event_from(
    number: int, ip: str, user: str, at: datetime, request: str, ua: str, ctx: ParseContext
) -> Event:
    target = request_target(request)
    path, _, query = target.partition("?")
    resource = resource_for_path(path, ctx.resource, default_resource)
    activesync = query if path.lower().startswith(ACTIVESYNC_PATH) and query else None
    return Event(
        line=number,
        ts=at,
        user=user,
        resource=resource,
        client_ip=ip,
        user_agent=ua if ua not in ("", "-") else None,
        activesync_query=activesync,
    )


class Parser:
    def __init__(self, ctx: ParseContext) -> None:
        self.ctx = ctx
        self.skipped = 0

    def feed(self, line: str, number: int) -> Sequence[Event]:
        text = line.rstrip("\r\n")
        if not text.strip():
            return ()  # blank lines are nothing, not even skipped
        match = LINE.match(text)
        if match is None:
            raise LineError("not a combined log line")
        user = user_or_none(unescape(match["user"]))
        if user is None:
            self.skipped += 1
            return ()
        at = parse_time(match["time"])
        return (
            event_from(
                number,
                match["ip"],
                user,
                at,
                unescape(match["request"]),
                unescape(match["ua"]),
                self.ctx,
            ),
        )

    def finish(self) -> Sequence[Event]:
        return ()


def parser(ctx: ParseContext) -> Parser:
    return Parser(ctx)
