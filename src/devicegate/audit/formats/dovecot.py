"""Dovecot logs (syslog or Dovecot's own log file) with the IMAP ID logged.

With `imap_id_log = *` Dovecot logs the client's ID list as `ID sent: name=iPhone Mail,
os=iOS, os-version=16.6 (20G75)`: after login from the `imap(user)` process, or before
login from `imap-login`, where only the `session=<…>` ties it to the following
`Login: user=<…>` line. Each successful login is one work access (`email`); its IMAP ID —
from an earlier `imap-login` line or a later `imap(user)` line of the same session (a login
waits for it up to `MAX_PENDING` sessions, then goes without) — is the device signal,
rebuilt as the RFC 2971 list `("name" "iPhone Mail" "os" "iOS")` the
online path receives. Other Dovecot lines are skipped (counted), never bad.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from devicegate.audit.events import Event, LineError
from devicegate.audit.formats.base import ParseContext, syslog_line

name = "dovecot"
default_resource = "email"
#: its events carry device signals of their own (see `base.LogFormat`)
carries_device_data = True

_PROC = re.compile(r"^dovecot(?:\[\d+\])?: (?P<body>.*)$")
_LOGIN = re.compile(r"^(?:imap|pop3|submission|managesieve)-login: Login: (?P<attrs>.*)$")
_ID = re.compile(
    r"^(?:imap\((?P<user>[^)]*)\)(?:<\d+>)?(?:<(?P<session>[^>]*)>)?|imap-login): "
    r"ID sent: (?P<id>.*?)(?:: (?P<attrs>user=<.*))?$"
)
_ATTR = re.compile(r"(\w+)=<([^>]*)>|(\w+)=([^,\s]*)")
_PAIR_SPLIT = re.compile(r", (?=[A-Za-z0-9_.-]+=)")
MAX_PENDING = 100_000


def sniff(lines: Sequence[str]) -> bool:
    return any(" dovecot" in line and ("-login:" in line or "imap(" in line) for line in lines)


def _attrs(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for match in _ATTR.finditer(text):
        if match.group(1):
            out.setdefault(match.group(1), match.group(2))
        elif match.group(3):
            out.setdefault(match.group(3), match.group(4))
    return out


def imap_id_list(logged: str) -> str:
    """Dovecot's `name=iPhone Mail, os=iOS` back into the RFC 2971 list a client sends."""

    def quote(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    pairs = []
    for part in _PAIR_SPLIT.split(logged.strip()):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise LineError(f"imap id part `{part[:40]}` is not name=value")
        pairs.append(f"{quote(key.strip())} {quote(value)}")
    return "(" + " ".join(pairs) + ")"


class Parser:
    def __init__(self, ctx: ParseContext) -> None:
        self.ctx = ctx
        self.skipped = 0
        self.pending_id: dict[str, str] = {}  # session → ID list seen before login
        self.pending_login: dict[str, Event] = {}  # session → login still awaiting its ID

    def feed(self, line: str, number: int) -> Sequence[Event]:
        split = syslog_line(line, self.ctx)
        if split is None:
            return ()  # blank lines are nothing, not even skipped
        at, rest = split
        proc = _PROC.match(rest)
        if proc is None:
            self.skipped += 1
            return ()
        body = proc["body"]
        login = _LOGIN.match(body)
        if login is not None:
            attrs = _attrs(login["attrs"])
            user: str | None = attrs.get("user")
            if not user:
                raise LineError("login line without user=<…>")
            session: str | None = attrs.get("session", "")
            imap_id = self.pending_id.pop(session, None) if session else None
            event = self._access(number, at, user, attrs, imap_id)
            if imap_id is not None or not session:
                return (event,)
            self.pending_login[session] = event
            if len(self.pending_login) > MAX_PENDING:
                oldest = next(iter(self.pending_login))
                return (self.pending_login.pop(oldest),)
            return ()
        found = _ID.match(body)
        if found is not None:
            listed = imap_id_list(found["id"])
            attrs = _attrs(found["attrs"] or "")
            session = found["session"] or attrs.get("session")
            user = found["user"] or attrs.get("user")
            waiting = self.pending_login.pop(session, None) if session else None
            if waiting is not None:
                return (replace(waiting, imap_id=listed),)
            if user:
                # the ID of a session whose login this log does not show: an access of its own
                return (self._access(number, at, user, attrs, listed),)
            if session:
                if len(self.pending_id) >= MAX_PENDING:
                    self.pending_id.clear()
                self.pending_id[session] = listed
            self.skipped += 1
            return ()
        self.skipped += 1
        return ()

    def _access(
        self, number: int, at: datetime, user: str, attrs: dict[str, str], imap_id: str | None
    ) -> Event:
        """The e-mail access a login line, or an ID line naming its user, stands for."""
        return Event(
            number,
            at,
            user,
            self.ctx.resource or default_resource,
            client_ip=attrs.get("rip"),
            imap_id=imap_id,
        )

    def finish(self) -> Sequence[Event]:
        waiting = list(self.pending_login.values())
        self.pending_login.clear()
        return waiting


def parser(ctx: ParseContext) -> Parser:
    return Parser(ctx)
