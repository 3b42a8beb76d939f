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
    # error pages (console.web.problem translates them)
    _("the store cannot be read right now; the page will work again when it returns"),
    _("sign in through the configured proxy"),
    _("not found"),
    _("this needs the operator role"),
    _("the form's CSRF token is missing or wrong; reload the page"),
    _("this account has no console role"),
    _("the sign-in could not be completed"),
    _("OIDC sign-in is not configured"),
    _("this address may not sign people in"),
    _("the proxy named no user"),
    _("`%(user)s` has no console role"),
    _("no user `%(name)s`"),
    _("no device `%(name)s`"),
    _("no unit `%(name)s`"),
)
