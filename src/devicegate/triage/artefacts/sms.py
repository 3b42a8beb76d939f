"""sms.db: SMS/iMessage metadata against e-mail, domain and file-name indicators.

Tables: `handle(ROWID, id, service)`, `message(ROWID, handle_id, date, service, account,
is_from_me, text)`, `attachment(ROWID, transfer_name, filename)`. Metadata only by
default: the sender handle (Triangulation's attacker iCloud addresses sent the exploit by
iMessage), the account, attachment names. Message text is read only when the operator opts
in (`include_message_text`), and then only to extract link hosts; without it the findings
say that links were not checked — domain indicators, the usual vector of the Pegasus and
Predator sets, cannot match here then.

A handle that matches an indicator, or a link to an indicator domain, is `suspicious`:
it shows an attempt, not that it succeeded. A message from Apple's threat-notification
sender is `suspicious` too: Apple itself believes the device was targeted.
"""

from __future__ import annotations

import re

from devicegate.triage.artefacts.base import (
    MESSAGE_TEXT_SETTING,
    Artefact,
    Context,
    Findings,
    locate,
    open_sqlite,
)
from devicegate.triage.artefacts.safari import host_of
from devicegate.triage.dbfile import columns, query
from devicegate.triage.result import Detection, TimelineEvent, Verdict
from devicegate.triage.timeconv import from_cocoa

NAME = "sms"
LOCATIONS = (("HomeDomain", "Library/SMS/sms.db"),)

#: Sender of Apple's threat notifications (Apple support article 102174).
APPLE_THREAT_SENDERS = frozenset({"threat-notifications@apple.com"})
_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)


def _address(value: object) -> str | None:
    """`e:someone@example.org` / `mailto:` / bare → the address, lower case."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    for prefix in ("e:", "mailto:", "E:"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    return text.lower()


def run(ctx: Context) -> Findings:
    entry = locate(ctx.backup, LOCATIONS)
    found = Findings()
    with open_sqlite(ctx.backup, entry, "sms.db", found) as db:
        message_cols = columns(db, "message")
        wanted = ["message.date", "message.service", "handle.id"]
        wanted.append("message.account" if "account" in message_cols else "NULL")
        wanted.append("message.text" if ctx.options.include_message_text else "NULL")
        rows = query(
            db,
            f"SELECT {', '.join(wanted)} FROM message "
            "LEFT JOIN handle ON handle.ROWID = message.handle_id",
            "sms.db",
        )
        attachments: list[tuple[object, ...]] = []
        if {"transfer_name", "filename"} <= columns(db, "attachment"):
            attachments = query(
                db, "SELECT transfer_name, filename, created_date FROM attachment", "sms.db"
            )
    found.note = f"{len(rows)} messages, {len(attachments)} attachments"
    if not ctx.options.include_message_text and rows:
        found.not_checked.append(
            "links in SMS/iMessage text (message text is off, the privacy default: "
            f"--include-message-text or {MESSAGE_TEXT_SETTING}=1 reads it, for links only)"
        )
    reported: set[tuple[str, str]] = set()

    def report(
        kind: str, value: str, when: object, indicator_set: str | None = None, detail: str = ""
    ) -> None:
        if (kind, value) not in reported:
            reported.add((kind, value))
            found.detections.append(
                Detection(
                    kind, NAME, value, Verdict.SUSPICIOUS, from_cocoa(when), indicator_set, detail
                )
            )

    for date, service, handle, account, text in rows:
        when = from_cocoa(date)
        sender = _address(handle)
        if when is not None and sender:
            label = f"{service}:{sender}" if isinstance(service, str) else sender
            found.timeline.append(TimelineEvent(when, NAME, "message", label))
        for address in (sender, _address(account)):
            if not address:
                continue
            if address in APPLE_THREAT_SENDERS:
                report("threat-notification", address, date)
            hit = ctx.indicators.exact("email", address)
            if hit is not None:
                report(
                    "email-indicator",
                    address,
                    date,
                    indicator_set=hit.set_name,
                    detail="message handle or account",
                )
        if isinstance(text, str):
            for url in _URL.findall(text):
                hit = ctx.indicators.domain(host_of(url))
                if hit is not None:
                    report(
                        "domain-indicator",
                        url[:500],
                        date,
                        indicator_set=hit.set_name,
                        detail="link in message text",
                    )
    for transfer_name, filename, created in attachments:
        # the name it was sent under, else its stored path: one finding per attachment
        for name in (transfer_name, filename):
            if not isinstance(name, str):
                continue
            hit = ctx.indicators.exact("file-name", name.rsplit("/", 1)[-1])
            if hit is not None:
                report(
                    "file-indicator",
                    name[:500],
                    created,
                    indicator_set=hit.set_name,
                    detail="message attachment name",
                )
                break
    return found


ARTEFACT = Artefact(NAME, "SMS/iMessage metadata", run)
