"""The console in the reader's language: gettext catalogs read with Babel, dates and numbers
formatted for the locale.

Catalogs are the `.po` files under `locale/` (English is the source language; Russian is
shipped), read with Babel at start — no compiled `.mo` files to keep in step. The locale is
`--locale` when set, else the one the browser prefers (`Accept-Language`) among those
shipped, else English. The policy's own texts (rule messages, exception reasons) are never
translated: they are shown as the policy wrote them.
"""

from __future__ import annotations

import gettext
import io
from datetime import date, datetime, tzinfo
from functools import cache
from importlib.resources import files

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import Translations

LOCALES = ("en", "ru")
DEFAULT = "en"
DOMAIN = "console"


@cache
def translations(locale: str) -> gettext.NullTranslations:
    """The catalog of `locale` (English: the messages as written)."""
    path = files("devicegate.console").joinpath(f"locale/{locale}/LC_MESSAGES/{DOMAIN}.po")
    if locale == DEFAULT or not path.is_file():
        return gettext.NullTranslations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(fp=compiled, domain=DOMAIN)


def negotiate(accept_language: str | None, fixed: str | None = None) -> str:
    """The locale to show: `fixed` when given, else the best shipped match for the browser."""
    if fixed:
        return fixed if fixed in LOCALES else DEFAULT
    wanted: list[tuple[float, str]] = []
    for part in (accept_language or "")[:512].split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if tag:
            wanted.append((quality, tag.strip().replace("_", "-")))
    for _quality, tag in sorted(wanted, key=lambda w: -w[0]):
        try:
            language = Locale.parse(tag, sep="-").language
        except (ValueError, UnknownLocaleError):
            continue
        if language in LOCALES:
            return language
    return DEFAULT


class Formats:
    """Numbers and moments for one locale, moments in the policy's zone."""

    def __init__(self, locale: str, zone: tzinfo) -> None:
        self.locale = locale
        self.zone = zone

    def number(self, value: float | int | None) -> str:
        return "—" if value is None else format_decimal(value, locale=self.locale)

    def percent(self, value: float | None) -> str:
        if value is None:
            return "—"
        # the locale's own pattern (`#,##0 %` in Russian, `#,##0%` in English), one decimal
        pattern = Locale.parse(self.locale).percent_formats[None].pattern
        head, zero, tail = pattern.rpartition("0")
        return format_percent(value, format=f"{head}{zero}.0{tail}", locale=self.locale)

    def moment(self, value: datetime | None) -> str:
        """`2023-07-17 09:00:12` in the policy's zone: ISO digits read the same in every
        shipped locale, and a table of thousands of rows formats them fast."""
        if value is None:
            return "—"
        return value.astimezone(self.zone).strftime("%Y-%m-%d %H:%M:%S")

    def day(self, value: date | None) -> str:
        return "—" if value is None else format_date(value, "medium", locale=self.locale)


__all__ = ["LOCALES", "Formats", "negotiate", "translations"]
