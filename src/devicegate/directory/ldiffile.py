"""LDIF directories (an export of Active Directory / OpenLDAP), read with python-ldap's `ldif`
module (the same maintained project that reads LDAP sources).

A user is an entry with `objectClass` person/inetOrgPerson/user. Its id is `uid`, else
`sAMAccountName`, else `mail`. Its unit is the explicit `devicegateUnit` attribute when
present, else the entry's `ou=` components read from the root down
(`uid=a,ou=budget,ou=minfin,ou=gov,dc=example,dc=org` → `gov/minfin/budget`). Groups are the
`cn` of each `memberOf` DN. URL-valued attributes (`attr:< file://…`) are never followed
(the parser is given no URL schemes to process).
"""

from __future__ import annotations

import binascii
import io
from pathlib import Path

import ldif

from devicegate.directory.entries import (
    DUPLICATE_USER_HINT,
    INVALID_UNIT_HINT,
    UNIT_RE,
    Problem,
    Row,
    normalise_unit,
)
from devicegate.errors import DirectoryError

PERSON_CLASSES = {"person", "inetorgperson", "user", "organizationalperson", "posixaccount"}


def _rdn_values(dn: str, attribute: str) -> list[str]:
    values = []
    for part in dn.split(","):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == attribute:
            values.append(value.strip())
    return values


class _Collect(ldif.LDIFParser):  # type: ignore[misc]
    """Entries in file order, values decoded (a value that is not UTF-8 stays bytes and
    counts as absent); an attribute given by URL has no value at all."""

    def __init__(self, text: str) -> None:
        super().__init__(io.StringIO(text), process_url_schemes=None)
        self.entries: list[tuple[str, dict[str, list[object]]]] = []

    def handle(self, dn: str, entry: dict[str, list[bytes | None]]) -> None:
        decoded: dict[str, list[object]] = {}
        for name, values in entry.items():
            out: list[object] = []
            for value in values:
                if value is None:
                    continue
                try:
                    out.append(value.decode("utf-8"))
                except UnicodeDecodeError:
                    out.append(value)
            decoded[name] = out
        self.entries.append((dn, decoded))


def _first(entry: dict[str, list[object]], *names: str) -> str | None:
    lowered = {k.lower(): v for k, v in entry.items()}
    for name in names:
        values = lowered.get(name.lower())
        if values and isinstance(values[0], str) and values[0].strip():
            return values[0].strip()
    return None


def _entry_starts(data: bytes) -> list[int]:
    """The line of every `dn:` that starts an entry, in file order (the parser's own line
    counter stands past the entry's end, at the next one)."""
    return [
        number
        for number, text in enumerate(data.splitlines(), start=1)
        if text[:3].lower() == b"dn:"
    ]


def read_ldif_directory(path: Path) -> tuple[list[Row], list[Problem]]:
    rows: list[Row] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DirectoryError(f"cannot read directory `{path}`: {exc.strerror}") from None
    starts = iter(_entry_starts(data))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise DirectoryError(f"{path}: not UTF-8 text") from None
    parser = _Collect(text)
    try:
        parser.parse()
    except (ValueError, binascii.Error, UnicodeError, IndexError, EOFError) as exc:
        raise DirectoryError(f"{path}:{parser.line_counter}: malformed LDIF: {exc}") from None
    try:
        for dn, entry in parser.entries:
            line = next(starts, parser.line_counter)
            classes = {
                str(c).lower() for c in entry.get("objectClass", entry.get("objectclass", []))
            }
            if not classes & PERSON_CLASSES:
                continue
            user = _first(entry, "uid", "sAMAccountName", "mail")
            if not user:
                problems.append(
                    Problem(
                        line,
                        f"entry `{dn}` has no uid, sAMAccountName or mail",
                        "give the person entry a uid, sAMAccountName or mail attribute",
                    )
                )
                continue
            unit_text = _first(entry, "devicegateUnit")
            if unit_text is None:
                unit_text = "/".join(reversed(_rdn_values(dn, "ou")))
            unit = normalise_unit(unit_text)
            if not UNIT_RE.match(unit):
                problems.append(
                    Problem(
                        line,
                        f"user `{user}`: no usable unit in `{dn}`",
                        f"set `devicegateUnit` or place the entry under `ou=` entries; "
                        f"{INVALID_UNIT_HINT}",
                    )
                )
                continue
            if user.lower() in seen:
                problems.append(
                    Problem(
                        line,
                        f"user `{user}` already listed on line {seen[user.lower()]}",
                        DUPLICATE_USER_HINT,
                    )
                )
                continue
            seen[user.lower()] = line
            groups: list[str] = []
            for member_of in entry.get("memberOf", entry.get("memberof", [])):
                groups.extend(_rdn_values(str(member_of), "cn")[:1])
            rows.append(
                Row(
                    user=user,
                    unit=unit,
                    groups=tuple(groups),
                    email=_first(entry, "mail"),
                    name=_first(entry, "cn", "displayName"),
                    line=line,
                )
            )
    except (ValueError, UnicodeError, IndexError) as exc:
        raise DirectoryError(f"{path}:{parser.line_counter}: malformed LDIF: {exc}") from None
    return rows, problems
