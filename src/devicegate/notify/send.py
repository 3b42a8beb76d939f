"""Deliver notices over SMTP, recording each outcome in the ledger before moving on.

`--smtp` URLs: `smtp://host[:port]` (plain, port 25), `smtp+starttls://host[:port]`
(STARTTLS, port 587) and `smtps://host[:port]` (TLS, port 465), each optionally with
`user:password@` for AUTH. One SMTP session carries the whole run; if it breaks, the rest
of the run reconnects once per message.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from devicegate.errors import UsageError
from devicegate.notify.ledger import FAILED, SENDING, SENT, Ledger
from devicegate.notify.plan import Notice

TIMEOUT = 30.0
DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    def connect(self) -> smtplib.SMTP:
        if self.scheme == "smtps":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=TIMEOUT, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=TIMEOUT)
            if self.scheme == "smtp+starttls":
                smtp.starttls(context=ssl.create_default_context())
        if self.username:
            smtp.login(self.username, self.password or "")
        return smtp


def parse_smtp_url(url: str) -> SmtpTarget:
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise UsageError(
            f"`{url}` is not an smtp url", hint="smtp://host:25, smtp+starttls://…, smtps://…"
        )
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise UsageError(f"`{url}` has an invalid port") from None
    return SmtpTarget(
        parts.scheme,
        parts.hostname,
        port,
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    notice: Notice
    status: str  # "sent" | "failed" | "already sent" | "uncertain"
    detail: str = ""


def deliver(
    notices: Iterable[Notice],
    target: SmtpTarget,
    ledger: Ledger,
    compose: Callable[[Notice], EmailMessage],
) -> list[Outcome]:
    """Send each notice for the devices not yet notified; a failure is recorded in the ledger
    (and retried by the next run), never raised.

    Every message is composed before anything is sent or recorded: a template that fails
    (`InputError` from `compose`) stops the run before the first message, and never leaves
    a notice marked `sending` that was not."""
    notices = list(notices)
    for notice in notices:
        compose(notice)
    outcomes: list[Outcome] = []
    smtp: smtplib.SMTP | None = None
    try:
        for notice in notices:
            rule = notice.ledger_rule  # an exception's end is recorded apart from the rule's start
            keys = [(notice.user.id, rule, d.device_id) for d in notice.devices]
            states = {key[2]: ledger.get(*key) for key in keys}
            pending = [d for d, e in states.items() if e is None or e.status == FAILED]
            unsure = [d for d, e in states.items() if e is not None and e.status == SENDING]
            if not pending:
                if unsure:
                    detail = "an earlier run died while sending it: check the mail log"
                    outcomes.append(Outcome(notice, "uncertain", detail))
                else:
                    outcomes.append(Outcome(notice, "already sent"))
                continue
            todo = notice.only(pending)
            message = compose(todo)
            for device_id in pending:
                ledger.mark(notice.user.id, rule, device_id, SENDING)
            try:
                if smtp is None:
                    smtp = target.connect()
                smtp.send_message(message)
            except (OSError, smtplib.SMTPException) as exc:
                error = f"{type(exc).__name__}: {exc}"[:500]
                for device_id in pending:
                    ledger.mark(notice.user.id, rule, device_id, FAILED, error)
                outcomes.append(Outcome(todo, "failed", error))
                _drop(smtp)
                smtp = None
                continue
            for device_id in pending:
                ledger.mark(notice.user.id, rule, device_id, SENT)
            outcomes.append(Outcome(todo, "sent"))
    finally:
        _drop(smtp)
    return outcomes


def _drop(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()
