"""The notice itself: one plain, personal message per (user, rule, device)."""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from email.utils import formatdate
from zoneinfo import ZoneInfo

from devicegate.notify.plan import Notice


def message_id(notice: Notice, domain: str) -> str:
    """Stable per notice, so even a copy delivered twice is one message to the reader."""
    devices = ",".join(sorted(d.device_id for d in notice.devices))
    digest = hashlib.sha256(f"{notice.user.id}|{notice.rule}|{devices}".encode())
    return f"<notice.{digest.hexdigest()[:24]}@{domain}>"


def compose(notice: Notice, *, sender: str, timezone: ZoneInfo) -> EmailMessage:
    when = notice.effective_from.astimezone(timezone)
    day = f"{when:%A} {when.day} {when:%B %Y}"
    name = notice.user.name or notice.user.id
    services = sorted({r for d in notice.devices for r in d.resources})
    named = [d.label for d in notice.devices]
    device = named[0] if len(named) == 1 else "devices"
    lines = "".join(
        f"  - {d.label} (reference {d.device_id}, known from: {d.source}): "
        f"{', '.join(d.resources)}\n"
        for d in notice.devices
    )
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = notice.address
    msg["Subject"] = f"From {day}: your {device} can no longer be used for work"
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id(notice, sender.rpartition("@")[2] or "devicegate")
    msg["X-Devicegate-Rule"] = notice.rule
    msg.set_content(
        f"Dear {name},\n\n"
        f"from {day} ({when:%H:%M %Z}) these devices of yours will no longer reach the "
        f"work services named ({', '.join(services)}):\n{lines}\n"
        f"Why: {notice.description or notice.rule} (rule {notice.rule}).\n"
        f"{notice.message}\n\n"
        "What to do: move your work e-mail and accounts to an approved device before that "
        "date; your IT service desk will provide one if you need it.\n\n"
        "Personal use of your device is not affected: this applies only to work services.\n"
    )
    return msg
