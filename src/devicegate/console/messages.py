"""Messages the templates translate from values (`_(action)`, `_(me.role)`, column names):
listed here so the catalog extraction (`babel.cfg`) finds them and the catalog test checks
that every one is translated."""

from __future__ import annotations


def _(message: str) -> str:
    return message


DYNAMIC = (
    _("viewer"),
    _("operator"),
    _("allow"),
    _("warn"),
    _("quarantine"),
    _("block"),
    _("user"),
    _("device"),
    _("resources"),
    _("last_seen"),
    _("rule"),
    _("effective"),
    _("exception"),
    _("release"),
    _("choose at least one device"),
    _("a release needs a reason (at most 2000 characters)"),
)
