"""IIS W3C extended logs, as Exchange's front end writes them.

The columns are declared by `#Fields:` directives, which may change in the middle of a file
(IIS writes a new header block when the logging configuration changes) — each line is read
with the fields declared last. Values are space-separated, `-` is empty, and spaces inside a
value (the User-Agent) are written as `+`. Times are UTC (`date` + `time`).

Exchange ActiveSync requests carry `DeviceId` and `DeviceType` in `cs-uri-query`
(`Cmd=Sync&User=…&DeviceId=…&DeviceType=iPhone`, or the base64 form): the query travels on
as the `activesync_query` signal and the request is `email`. OWA, EWS and MAPI are `email`
too; other paths are the `--resource` (default `web`). `cs-username` may be `DOMAIN\\login`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from devicegate.audit.events import Event, LineError
from devicegate.audit.formats.base import (
    ACTIVESYNC_PATH,
    ParseContext,
    resource_for_path,
    user_or_none,
)

name = "w3c"
default_resource = "web"
#: its events carry device signals of their own (see `base.LogFormat`)
carries_device_data = True


def sniff(lines: Sequence[str]) -> bool:
    return any(line.startswith(("#Fields:", "#Software: Microsoft")) for line in lines)


def _value(raw: str) -> str | None:
    return None if raw in ("-", "") else raw


class Parser:
    def __init__(self, ctx: ParseContext) -> None:
        self.ctx = ctx
        self.skipped = 0
        self.fields: dict[str, int] | None = None
        self.width = 0  # values a data line has: fields named, repeats included

    def feed(self, line: str, number: int) -> Sequence[Event]:
        text = line.rstrip("\r\n")
        if not text.strip():
            return ()  # blank lines are nothing, not even skipped
        if text.startswith("#"):
            if text.startswith("#Fields:"):
                names = text[len("#Fields:") :].split()
                if not names:
                    raise LineError("empty #Fields directive")
                # a name given twice keeps its first place (IIS never repeats one; a log
                # that does must not make a line's values misread or unreadable)
                self.fields = {}
                for i, field in enumerate(names):
                    self.fields.setdefault(field.lower(), i)
                self.width = len(names)
            self.skipped += 1
            return ()
        if self.fields is None:
            raise LineError("data line before any #Fields directive")
        values = text.split(" ")
        if len(values) != self.width:
            raise LineError(f"{len(values)} values for {self.width} #Fields")
        fields = self.fields

        def get(field: str) -> str | None:
            index = fields.get(field)
            return None if index is None else _value(values[index])

        user = user_or_none(get("cs-username") or "")
        if user is None:
            self.skipped += 1
            return ()
        date, time = get("date"), get("time")
        if date is None or time is None:
            raise LineError("no date or time field")
        try:
            at = datetime.fromisoformat(f"{date}T{time}").replace(tzinfo=UTC)
        except ValueError:
            raise LineError(f"bad date/time `{date} {time}`") from None
        path = get("cs-uri-stem") or ""
        query = get("cs-uri-query")
        agent = get("cs(user-agent)")
        return (
            Event(
                line=number,
                ts=at,
                user=user,
                resource=resource_for_path(path, self.ctx.resource, default_resource),
                client_ip=get("c-ip"),
                user_agent=agent.replace("+", " ") if agent else None,
                activesync_query=query
                if query and path.lower().startswith(ACTIVESYNC_PATH)
                else None,
            ),
        )

    def finish(self) -> Sequence[Event]:
        return ()


def parser(ctx: ParseContext) -> Parser:
    return Parser(ctx)
