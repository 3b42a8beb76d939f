"""The notice itself: one plain, personal message per (user, rule, device), from a template.

Templates are Jinja2 text files, one per kind of notice and locale:

    <dir>/<locale>/rule-starts.txt.j2      a rule is about to take force for the user's devices
    <dir>/<locale>/exception-ends.txt.j2   the user's exception from a rule is about to end

A deployment's directory (`notify --templates DIR`) is searched first, file by file, then the
templates shipped in `devicegate/notify/templates/` (English `en` and Russian `ru`). A
locale `ru_RU` uses `ru_RU/` if there is one, else `ru/`. A rendered template is the message:
a first line `Subject: …`, a blank line, then the body.

The context contract — what every template may use (strings are one line each, control
characters removed: device labels come from client-chosen signals):

    kind        "rule-starts" or "exception-ends"
    user        {id, name, email, unit}; `name` falls back to the id
    to          the address the notice goes to
    rule        {id, description, message}; `message` is the rule's refusal text, in the
                policy's language, which the shipped templates do not repeat
    starts      when these devices lose the services: the rule takes force for them (the
                rule's start, or the end of the user's exception; aware, policy zone)
    ends        for "exception-ends": the moment the exception stops lifting the rule (the
                same moment as `starts`); else none
    last_day    for "exception-ends": the last day the exception still applies (a date);
                else none
    exception   for "exception-ends": {until, last_day, reason, approver} as the policy
                states the exception; else none
    zone        the zone's abbreviation at `starts` (MSK)
    devices     [{device_id, label, source, adapter, resources}]: `source` is "inventory" or
                "seen", `adapter` the server that saw it (none for the inventory)
    device      the label of the only device, or none when there are several
    services    every work service named, sorted
    locale      the locale rendered (ru, en)

A notice is an "exception-ends" notice when the planner gave it an `exception` (`notify.plan`:
`Notice.exception`, with `until`, `last_day`, `reason`, `approver`; its `effective_from` is
then the moment the exception ends). Notices without one announce a rule's start.

Filters: `date` (Babel, the locale's "full" form, or a CLDR pattern: `date("d MMMM y")`),
`time` (`HH:mm`, or a pattern).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from email.message import EmailMessage
from email.utils import formatdate
from functools import cache, cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from devicegate.errors import InputError, UsageError
from devicegate.notify.plan import Notice

SHIPPED = Path(__file__).parent / "templates"
KINDS = ("rule-starts", "exception-ends")
DEFAULT_LOCALE = "en"
SUFFIX = ".txt.j2"
#: Longest value a context string may have: a subject stays a subject.
VALUE_MAX = 512


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    body: str


def message_id(notice: Notice, domain: str) -> str:
    """Stable per notice, so even a copy delivered twice is one message to the reader."""
    devices = ",".join(sorted(d.device_id for d in notice.devices))
    digest = hashlib.sha256(f"{notice.user.id}|{notice.ledger_rule}|{devices}".encode())
    return f"<notice.{digest.hexdigest()[:24]}@{domain}>"


def _line(value: object) -> str:
    """A context string: one line, no control characters, bounded."""
    text = " ".join(str(value).split())[:VALUE_MAX]
    return "".join(ch for ch in text if ch.isprintable())


def notice_context(notice: Notice, *, timezone: ZoneInfo, locale: str) -> dict[str, Any]:
    """The template context of a notice (the contract in this module's docstring)."""
    ending = notice.exception
    starts = notice.effective_from.astimezone(timezone)
    devices: list[dict[str, Any]] = []
    for d in notice.devices:
        seen = d.source != "inventory"
        devices.append(
            {
                "device_id": _line(d.device_id),
                "label": _line(d.label),
                "source": "seen" if seen else "inventory",
                "adapter": _line(d.source.removeprefix("seen on ")) if seen else None,
                "resources": [_line(r) for r in d.resources],
            }
        )
    services = sorted({_line(r) for d in notice.devices for r in d.resources})
    exception = None
    if ending is not None:
        exception = {
            "until": _line(ending.until),
            "last_day": ending.last_day,
            "reason": _line(ending.reason),
            "approver": _line(ending.approver or ""),
        }
    return {
        "kind": "exception-ends" if exception is not None else "rule-starts",
        "user": {
            "id": _line(notice.user.id),
            "name": _line(notice.user.name or notice.user.id),
            "email": _line(notice.user.email or ""),
            "unit": _line(notice.user.unit),
        },
        "to": _line(notice.address),
        "rule": {
            "id": _line(notice.rule),
            "description": _line(notice.description),
            "message": _line(notice.message),
        },
        "starts": starts,
        "ends": starts if exception is not None else None,
        "last_day": exception["last_day"] if exception is not None else None,
        "exception": exception,
        "zone": starts.tzname() or str(timezone),
        "devices": devices,
        "device": devices[0]["label"] if len(devices) == 1 else None,
        "services": services,
        "locale": locale,
    }


class Templates:
    """The notice templates of one locale: a deployment's directory first, then the shipped
    ones. Checked when made: a locale with no templates, or a template that does not
    compile, is an error before anything is sent."""

    def __init__(self, directory: Path | None = None, locale: str = DEFAULT_LOCALE) -> None:
        from babel import Locale, UnknownLocaleError

        if directory is not None and not directory.is_dir():
            raise UsageError(f"notice templates directory `{directory}` does not exist")
        try:
            parsed = Locale.parse(locale.strip().replace("-", "_"))
        except (UnknownLocaleError, ValueError, TypeError):
            raise UsageError(
                f"unknown locale `{locale}`", hint="a locale such as en, ru or ru_RU"
            ) from None
        self.locale = parsed
        self.directory = directory
        self.roots = [d for d in (directory, SHIPPED) if d is not None]
        names = list(dict.fromkeys([str(parsed), parsed.language]))
        self.folders = [n for n in names if any((root / n).is_dir() for root in self.roots)]
        if not self.folders:
            shipped = sorted(p.name for p in SHIPPED.iterdir() if p.is_dir())
            raise UsageError(
                f"no notice templates for locale `{locale}`",
                hint=f"shipped: {', '.join(shipped)}; or put {'/'.join([names[-1], KINDS[0]])}"
                f"{SUFFIX} in a directory given with --templates",
            )
        for kind in KINDS:
            self._template(kind)

    @cached_property
    def _env(self) -> Any:
        from jinja2 import FileSystemLoader, StrictUndefined
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(
            loader=FileSystemLoader([str(root) for root in self.roots]),
            undefined=StrictUndefined,
            autoescape=False,  # plain-text mail; every value is one clean line (`_line`)
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters["date"] = self._date
        env.filters["time"] = self._time
        return env

    def _date(self, value: date | datetime, pattern: str = "full") -> str:
        from babel.dates import format_date

        return str(format_date(value, pattern, locale=self.locale))

    def _time(self, value: datetime, pattern: str = "HH:mm") -> str:
        from babel.dates import format_time

        return str(format_time(value, pattern, tzinfo=value.tzinfo, locale=self.locale))

    def _template(self, kind: str) -> Any:
        from jinja2 import TemplateNotFound, TemplateSyntaxError

        names = [f"{folder}/{kind}{SUFFIX}" for folder in self.folders]
        try:
            return self._env.select_template(names)
        except TemplateNotFound:
            raise UsageError(
                f"no notice template `{names[-1]}` for locale `{self.locale}`",
                hint=f"add it to the --templates directory (see {SHIPPED / 'en'})",
            ) from None
        except TemplateSyntaxError as exc:
            raise InputError(
                f"notice template `{exc.filename or exc.name}`:{exc.lineno}: {exc.message}"
            ) from None

    def render(self, notice: Notice, timezone: ZoneInfo) -> Rendered:
        """The notice's subject and body. A template that fails (an unknown variable, a
        missing `Subject:` line) is an error naming the template, never a half message."""
        from jinja2 import TemplateError

        context = notice_context(notice, timezone=timezone, locale=str(self.locale))
        template = self._template(context["kind"])
        try:
            text = template.render(context)
        except TemplateError as exc:
            raise InputError(f"notice template `{template.filename}`: {exc}") from None
        head, blank, body = text.lstrip("\n").partition("\n\n")
        name, colon, subject = head.partition(":")
        if not blank or "\n" in head or name.strip().lower() != "subject" or not colon:
            raise InputError(
                f"notice template `{template.filename}` must begin with a `Subject: …` line "
                "and a blank line"
            )
        return Rendered(_line(subject), body.strip("\n") + "\n")


def compose(
    notice: Notice,
    *,
    sender: str,
    timezone: ZoneInfo,
    templates: Templates | None = None,
) -> EmailMessage:
    """The e-mail for a notice (the shipped English templates unless told otherwise)."""
    rendered = (templates or default_templates()).render(notice, timezone)
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = notice.address
    msg["Subject"] = rendered.subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id(notice, sender.rpartition("@")[2] or "devicegate")
    msg["X-Devicegate-Rule"] = notice.rule
    msg.set_content(rendered.body)
    return msg


@cache
def default_templates() -> Templates:
    """The shipped English templates (made once)."""
    return Templates()


__all__ = [
    "KINDS",
    "Rendered",
    "Templates",
    "compose",
    "default_templates",
    "notice_context",
]
