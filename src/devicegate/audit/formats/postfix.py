"""Postfix logs: authenticated submissions (`sasl_username=`).

    Jul 17 09:00:01 mail postfix/submission/smtpd[123]: 4F3A1: client=host[192.0.2.7],
        sasl_method=PLAIN, sasl_username=alice@minfin.example

Each line with a `sasl_username` is one work access (`email`). SMTP carries no device
information at all, so these events are judged on an unidentified device — exactly what the
online Postfix adapter decides when it has no recent sighting of the user. Other lines
(queue manager, deliveries, disconnects) are skipped, not bad.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from devicegate.audit.events import Event
from devicegate.audit.formats.base import ParseContext, syslog_line

name = "postfix"
default_resource = "email"
#: SMTP carries no device data: its events take the device of an earlier sighting
#: (`audit.inference`), as `serve` decides a submission (`adapters.postfix.ADAPTER`)
carries_device_data = False

_SASL = re.compile(r"\bsasl_username=(?P<user>[^,\s]+)")
_CLIENT = re.compile(r"\bclient=[^\[\s]*\[(?P<ip>[^\]]+)\]")


def sniff(lines: Sequence[str]) -> bool:
    return any(" postfix/" in line or " postfix[" in line for line in lines)


class Parser:
    def __init__(self, ctx: ParseContext) -> None:
        self.ctx = ctx
        self.skipped = 0

    def feed(self, line: str, number: int) -> Sequence[Event]:
        split = syslog_line(line, self.ctx)
        if split is None:
            return ()  # blank lines are nothing, not even skipped
        at, rest = split
        found = _SASL.search(rest)
        if found is None:
            self.skipped += 1
            return ()
        client = _CLIENT.search(rest)
        return (
            Event(
                number,
                at,
                found["user"],
                self.ctx.resource or default_resource,
                client_ip=client["ip"] if client else None,
            ),
        )

    def finish(self) -> Sequence[Event]:
        return ()


def parser(ctx: ParseContext) -> Parser:
    return Parser(ctx)
