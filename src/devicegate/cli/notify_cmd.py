"""`devicegate notify`: send the notices that are due, once each, and say what happened."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from devicegate.cli.common import (
    STORE_DEFAULT,
    AtOpt,
    DevicesOpt,
    DirectoryOpt,
    JsonOpt,
    PolicyOpt,
    StoreOpt,
    err,
    load_snapshot,
    parse_at,
    write_json,
)
from devicegate.errors import UsageError

if TYPE_CHECKING:
    from email.message import EmailMessage

    from devicegate.notify.plan import Notice


def notify(
    policy: PolicyOpt,
    directory: DirectoryOpt = None,
    devices: DevicesOpt = None,
    smtp: Annotated[
        str | None,
        typer.Option("--smtp", help="smtp://host:port, smtp+starttls://…, smtps://user:pw@…"),
    ] = None,
    sender: Annotated[
        str, typer.Option("--from", help="Sender address of the notices.")
    ] = "it-security@devicegate.invalid",
    store: StoreOpt = STORE_DEFAULT,
    at: AtOpt = None,
    seen_days: Annotated[
        int, typer.Option("--seen-days", help="Count devices sighted in the last N days.")
    ] = 30,
    templates: Annotated[
        Path | None,
        typer.Option(
            "--templates",
            envvar="DEVICEGATE_TEMPLATES",
            help="Directory of notice templates (LOCALE/KIND.txt.j2) used before the shipped "
            "ones (else $DEVICEGATE_TEMPLATES).",
        ),
    ] = None,
    locale: Annotated[
        str,
        typer.Option(
            "--locale",
            envvar="DEVICEGATE_LOCALE",
            help="Language of the notices: en, ru, … (else $DEVICEGATE_LOCALE).",
        ),
    ] = "en",
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print each notice due in full; send and record nothing."),
    ] = False,
    limit: Annotated[
        int, typer.Option("--limit", help="Notices printed by --dry-run (0: all).")
    ] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Tell each user whose device a rule will ban, once they enter its notice period."""
    from devicegate.notify import Ledger, compose, deliver, due_notices, parse_smtp_url
    from devicegate.notify.message import Templates
    from devicegate.notify.plan import inventory_devices, seen_devices
    from devicegate.store import open_store

    if directory is None:
        raise UsageError("notify needs --directory to know who the users are and their address")
    if smtp is None and not dry_run:
        raise UsageError("no --smtp given", hint="pass --smtp smtp://host:25 or use --dry-run")
    target = parse_smtp_url(smtp) if smtp else None
    texts = Templates(templates, locale)
    snapshot = load_snapshot(policy, directory, devices, quiet=as_json)
    moment = parse_at(at, snapshot.timezone)
    opened = open_store(store, create=False)
    found = inventory_devices(snapshot)
    found += seen_devices(opened, snapshot, since=moment - timedelta(days=seen_days))
    notices = due_notices(snapshot, moment, found)
    if not as_json:
        err(f"{len(notices)} notices due at {moment.isoformat()} ({len(found)} devices checked)")

    def make(notice: Notice) -> EmailMessage:
        return compose(notice, sender=sender, timezone=snapshot.timezone, templates=texts)

    if dry_run or target is None:
        if as_json:  # every notice due, with its message
            write_json([_due_json(n, make(n)) for n in notices])
            return
        shown = notices[:limit] if limit else notices
        messages = [make(n) for n in shown]  # all first: a template error prints nothing
        for number, (notice, message) in enumerate(zip(shown, messages, strict=True), start=1):
            why = "exception ends" if notice.exception is not None else "rule"
            typer.echo(f"--- due {number}/{len(notices)}: {notice.address}, {why} {notice.rule}")
            for header in ("From", "To", "Subject"):
                typer.echo(f"{header}: {message[header]}")
            typer.echo("")
            typer.echo(message.get_content().rstrip("\n"))
            typer.echo("")
        if limit and len(notices) > limit:
            typer.echo(f"… and {len(notices) - limit} more (--limit 0 or --json for all)")
        return
    ledger = Ledger(opened)
    outcomes = deliver(notices, target, ledger, make)
    if as_json:
        write_json(
            [
                {
                    "user": o.notice.user.id,
                    "to": o.notice.address,
                    "rule": o.notice.rule,
                    "device_ids": [d.device_id for d in o.notice.devices],
                    "status": o.status,
                    "detail": o.detail,
                }
                for o in outcomes
            ]
        )
    else:
        for o in outcomes:
            detail = f"  ({o.detail})" if o.detail else ""
            typer.echo(
                f"{o.status:<12} {o.notice.address:<36} {o.notice.rule:<22} "
                f"{_devices(o.notice)}{detail}"
            )
    counts = {s: sum(o.status == s for o in outcomes) for s in ("sent", "already sent")}
    failed = [o for o in outcomes if o.status in ("failed", "uncertain")]
    err(
        f"notices: {counts['sent']} sent, {counts['already sent']} already sent, "
        f"{len(failed)} not delivered" + (" (failed ones are retried next run)" if failed else "")
    )
    if failed:
        raise typer.Exit(1)


def _due_json(notice: Notice, message: EmailMessage) -> dict[str, object]:
    return {
        "user": notice.user.id,
        "to": notice.address,
        "rule": notice.rule,
        "devices": [
            {
                "device_id": d.device_id,
                "device": d.label,
                "source": d.source,
                "resources": list(d.resources),
            }
            for d in notice.devices
        ],
        "from": notice.effective_from.isoformat(),
        "status": "due",
        "subject": message["Subject"],
        "body": message.get_content(),
    }


def _devices(notice: Notice) -> str:
    return ", ".join(f"{d.label} ({d.device_id})" for d in notice.devices)


def register(app: typer.Typer) -> None:
    app.command("notify")(notify)
