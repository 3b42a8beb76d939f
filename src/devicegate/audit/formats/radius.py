"""FreeRADIUS `detail` files: one record per request, attributes indented below a date.

    Mon Jul 17 09:00:01 2023
    <TAB>Packet-Type = Access-Request
    <TAB>User-Name = "alice@rostec.example"
    <TAB>Calling-Station-Id = "3c-22-fb-e4-dd-c1"
    <TAB>Timestamp = 1689573601
    <blank line>

A record is one work access (`--resource`, default `wifi`) when it is an `Access-Request`
or an accounting `Start`; interim updates and stops of the same session are skipped so a
session counts once. The time is `Timestamp` (epoch) when present, else the header read in
the policy's time zone. The device signal is `Calling-Station-Id`, the client's MAC.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

from devicegate.audit.events import Event, LineError
from devicegate.audit.formats.base import ParseContext

name = "radius"
default_resource = "wifi"
#: its events carry device signals of their own (see `base.LogFormat`)
carries_device_data = True

_HEADER = re.compile(r"^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}$")
_ATTR = re.compile(r"^\s+(?P<name>[A-Za-z0-9-]+(?::[A-Za-z0-9-]+)?) = (?P<value>.*)$")


def sniff(lines: Sequence[str]) -> bool:
    return any(_HEADER.match(line.rstrip("\r\n")) for line in lines[:5]) and any(
        "User-Name = " in line for line in lines
    )


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


class Parser:
    def __init__(self, ctx: ParseContext) -> None:
        self.ctx = ctx
        self.skipped = 0
        self.start: int | None = None
        self.header: datetime | None = None
        self.attrs: dict[str, str] = {}

    def _close(self) -> Sequence[Event]:
        if self.start is None:
            return ()
        start, attrs, header = self.start, self.attrs, self.header
        self.start, self.attrs, self.header = None, {}, None
        packet = attrs.get("Packet-Type", "")
        status = attrs.get("Acct-Status-Type", "")
        if (status and status != "Start") or packet not in (
            "",
            "Access-Request",
            "Accounting-Request",
        ):
            self.skipped += 1
            return ()
        user = attrs.get("User-Name")
        if not user:
            raise LineError("record without User-Name")
        at = header
        stamp = attrs.get("Timestamp")
        if stamp is not None and stamp.isdigit():
            try:  # `isdigit` admits "²"; a forged stamp can lie beyond year 9999
                at = datetime.fromtimestamp(int(stamp), UTC)
            except (ValueError, OverflowError, OSError):
                raise LineError(f"bad Timestamp `{stamp[:40]}`") from None
        assert at is not None
        return (
            Event(
                start,
                at,
                user,
                self.ctx.resource or default_resource,
                client_ip=attrs.get("Framed-IP-Address"),
                mac=attrs.get("Calling-Station-Id") or None,
            ),
        )

    def feed(self, line: str, number: int) -> Sequence[Event]:
        text = line.rstrip("\r\n")
        if not text.strip():
            return self._close()
        if _HEADER.match(text):
            done = self._close()
            try:
                self.header = datetime.strptime(text, "%a %b %d %H:%M:%S %Y").replace(
                    tzinfo=self.ctx.tz
                )
            except ValueError:
                raise LineError(f"bad record date `{text[:40]}`") from None
            self.start = number
            return done
        attr = _ATTR.match(text)
        if attr is None or self.start is None:
            raise LineError("neither a record date nor an indented attribute")
        self.attrs.setdefault(attr["name"], _unquote(attr["value"]))
        return ()

    def finish(self) -> Sequence[Event]:
        return self._close()


def parser(ctx: ParseContext) -> Parser:
    return Parser(ctx)
