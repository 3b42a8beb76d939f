"""How a name a service presents becomes one directory user — or none.

Services authenticate the same person under several forms: `i.petrov`,
`i.petrov@minpromtorg.example`, `MINPROMTORG\\i.petrov`, `i.petrov@minpromtorg` (a UPN suffix
without a top-level domain), with different case, a stray space or a trailing dot. A ban
scoped by unit is only as good as this mapping: a form the directory does not recognise is an
*unknown user*, which a policy with `unknown_user: allow` lets through.

The rules, in order:

1. normalise: Unicode NFC, surrounding white space and dots removed, case folded;
2. `DOMAIN\\login` and `login@DOMAIN` (DOMAIN in the policy's `login_domains`) become the
   alias that map names for that domain (`{login}@minfin.example`); a `DOMAIN\\login` whose
   domain is not in the map names nobody. The domain is never stripped to guess: `MINFIN\\
   i.petrov` and `MINPROMTORG\\i.petrov` are different people;
3. the result, and the normalised name itself, are looked up among the directory's aliases
   (login and e-mail address); a name that reaches no user, or more than one, is unknown.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

#: what a `login_domains` template must contain exactly once
LOGIN_FIELD = "{login}"


def normalise_name(name: str) -> str:
    """The comparable form of a presented user name (rule 1). ASCII, nearly every name, is
    its own NFC form and case-folds as it lowers: the directory normalises every alias of
    every user when it loads."""
    if name.isascii():
        return name.strip().strip(".").strip().lower()
    text = unicodedata.normalize("NFC", name).strip().strip(".").strip()
    return text.casefold()


def alias_candidates(name: str, domains: Mapping[str, str]) -> tuple[str, ...]:
    """The aliases a presented name may stand for (rules 1–2), most specific first.

    `domains` maps a case-folded domain (NetBIOS name or UPN suffix) to its template."""
    text = normalise_name(name)
    if not text:
        return ()
    domain, backslash, login = text.partition("\\")
    if backslash:
        template = domains.get(domain.strip())
        login = login.strip()
        if template is None or not login or "\\" in login:
            return ()
        return (template.replace(LOGIN_FIELD, login).casefold(),)
    if domains:
        login, at, domain = text.rpartition("@")
        template = domains.get(domain) if at and login else None
        if template is not None:
            return (template.replace(LOGIN_FIELD, login).casefold(), text)
    return (text,)
