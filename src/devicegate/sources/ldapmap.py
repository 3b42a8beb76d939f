"""How an LDAP entry becomes a user: login, e-mail, unit, disabled — per server flavour.

Defaults differ between Active Directory and other servers (OpenLDAP, FreeIPA, 389-DS); the
source YAML overrides any of them. The unit comes from an attribute (`devicegateUnit`) when
the entry has one, else from the entry's `ou=` components below `unit.ou_base`, root first
(`uid=a,ou=Budget,ou=Ministry of Finance,ou=gov,dc=gov,dc=example` with `ou_base:
dc=gov,dc=example` → `gov/Ministry of Finance/Budget`), rewritten by the longest prefix in
`unit.map` (`gov/Ministry of Finance: gov/minfin` → `gov/minfin/budget`). What remains is
lower-cased with spaces as `-`; a unit that is still not a unit path is reported.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import ldap.dn

from devicegate.directory.entries import UNIT_RE
from devicegate.sources.config import LdapSource
from devicegate.sources.state import UserEntry

#: userAccountControl flag ACCOUNTDISABLE (MS-ADTS 2.2.16)
UF_ACCOUNTDISABLE = 0x0002
#: LDAP_MATCHING_RULE_IN_CHAIN: AD's transitive membership matching rule
IN_CHAIN = "1.2.840.113556.1.4.1941"
#: supportedCapabilities value of an Active Directory (and Samba AD) server
AD_CAPABILITY = "1.2.840.113556.1.4.800"
#: longest login, e-mail or name kept (a hostile or broken entry cannot bloat the directory)
MAX_TEXT = 320


@dataclass(frozen=True, slots=True)
class Flavour:
    """Attribute names and filters for one kind of server, after the YAML's overrides."""

    server: str  # "ad" | "openldap"
    user_filter: str
    login: str
    email: str
    name: str
    key: str  # stable entry id: objectGUID | entryUUID
    group_filter: str
    member: tuple[str, ...]
    group_name: str
    delta: str  # uSNChanged | modifyTimestamp
    disabled: str | None
    disabled_values: frozenset[str] | None

    def user_attributes(self, unit_attribute: str | None) -> list[str]:
        names = [self.login, self.email, self.name, self.key, self.delta]
        if unit_attribute:
            names.append(unit_attribute)
        if self.disabled:
            names.append(self.disabled)
        return list(dict.fromkeys(names))

    def group_attributes(self, with_members: bool) -> list[str]:
        names = [self.group_name, self.delta, "memberOf"]
        if with_members:
            names.extend(self.member)
        return list(dict.fromkeys(names))


#: Each server kind's attribute names and filters, before the YAML's own choices.
DEFAULTS: dict[str, dict[str, str]] = {
    "ad": {
        "user_filter": "(&(objectCategory=person)(objectClass=user))",
        "login": "sAMAccountName",
        "name": "displayName",
        "key": "objectGUID",
        "group_filter": "(objectClass=group)",
        "member": "member",
        "delta": "uSNChanged",
        "disabled": "userAccountControl",
    },
    "openldap": {
        "user_filter": "(objectClass=inetOrgPerson)",
        "login": "uid",
        "name": "cn",
        "key": "entryUUID",
        "group_filter": "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))",
        "member": "member uniqueMember",
        "delta": "modifyTimestamp",
    },
}


def flavour(config: LdapSource, server: str) -> Flavour:
    """The attribute names for `server` ("ad" or "openldap") with the YAML's choices."""
    users, groups, disabled = config.users, config.groups, config.disabled
    default = DEFAULTS[server]
    return Flavour(
        server=server,
        user_filter=users.filter or default["user_filter"],
        login=users.login or default["login"],
        email=users.email or "mail",
        name=users.name or default["name"],
        key=default["key"],
        group_filter=groups.filter or default["group_filter"],
        member=(groups.member,) if groups.member else tuple(default["member"].split()),
        group_name=groups.name,
        delta=default["delta"],
        disabled=disabled.attribute or default.get("disabled"),
        disabled_values=_folded(disabled.values),
    )


def _folded(values: list[str] | None) -> frozenset[str] | None:
    return frozenset(v.casefold() for v in values) if values is not None else None


#: a DN without escapes, quotes or multi-valued RDNs: split on `,` and `=` directly
_PLAIN_DN = re.compile(r"[^\\\"+#;<>]*")


def _plain_rdns(dn: str) -> list[tuple[str, str]] | None:
    """`dn` as (attribute, value) pairs, or None when it needs the full parser."""
    if not _PLAIN_DN.fullmatch(dn):
        return None
    pairs = []
    for rdn in dn.split(","):
        attribute, equals, value = rdn.partition("=")
        if not equals or not attribute.strip():
            return None
        pairs.append((attribute.strip(), value.strip()))
    return pairs


def plain_dn(dn: str) -> bool:
    """Whether `dn` has no escapes, quotes or multi-valued RDNs (split on `,` and `=`)."""
    return _PLAIN_DN.fullmatch(dn) is not None


_DN_SPACES = re.compile(r"\s*([,=])\s*")


def _separator(match: re.Match[str]) -> str:
    return match.group(1)


def normalise_dn(dn: str) -> str:
    """A DN in the one form membership is compared in: RDNs re-serialised, case folded.
    A DN that does not parse is kept as its case-folded text (it can only match itself)."""
    if _PLAIN_DN.fullmatch(dn):
        if " ," in dn or ", " in dn or " =" in dn or "= " in dn:
            dn = _DN_SPACES.sub(_separator, dn)
        return dn.strip().casefold()
    try:
        return str(ldap.dn.dn2str(ldap.dn.str2dn(dn))).casefold()
    except ldap.DECODING_ERROR:
        return dn.strip().casefold()


def _segment(text: str) -> str:
    return "-".join(text.strip().casefold().split())


class UnitMapper:
    """`unit.ou_base` parsed and `unit.map` folded once per pass, not once per entry."""

    def __init__(self, base: str, mapping: Mapping[str, str]) -> None:
        self.base = [
            [(a.casefold(), v.casefold()) for a, v, _ in rdn] for rdn in ldap.dn.str2dn(base)
        ]
        self.prefixes = {
            "/".join(p.strip().casefold() for p in key.strip("/").split("/")): value
            for key, value in mapping.items()
        }
        self._by_parent: dict[str, str | None] = {}

    def ou_path(self, dn: str) -> list[str] | None:
        """The `ou=` values between the entry and the base, root first; None when `dn` does
        not parse or is not below the base."""
        pairs = _plain_rdns(dn)
        if pairs is not None:
            rdns = [[(a, v, 0)] for a, v in pairs]
        else:
            try:
                rdns = ldap.dn.str2dn(dn)
            except ldap.DECODING_ERROR:
                return None
        depth = len(self.base)
        if len(rdns) <= depth:
            return None
        tail = rdns[len(rdns) - depth :]
        if [[(a.casefold(), v.casefold()) for a, v, _ in rdn] for rdn in tail] != self.base:
            return None
        between = rdns[1 : len(rdns) - depth]
        return [v for rdn in reversed(between) for a, v, _ in rdn if a.casefold() == "ou"]

    def unit(self, dn: str) -> str | None:
        """The unit an entry's `ou=` path stands for (see the module docstring). Entries in
        one container share it: computed once per parent DN."""
        head, comma, parent = dn.partition(",")
        if comma and "\\" not in head and "+" not in head:
            if parent in self._by_parent:
                return self._by_parent[parent]
            unit = self._unit(dn)
            self._by_parent[parent] = unit
            return unit
        return self._unit(dn)

    def _unit(self, dn: str) -> str | None:
        path = self.ou_path(dn)
        if not path:
            return None
        folded = [p.strip().casefold() for p in path]
        for cut in range(len(folded), 0, -1):
            target = self.prefixes.get("/".join(folded[:cut]))
            if target is not None:
                rest = [_segment(p) for p in path[cut:]]
                unit = "/".join([target.strip("/").casefold(), *rest])
                break
        else:
            unit = "/".join(_segment(p) for p in path)
        return unit if UNIT_RE.match(unit) else None


def fold(entry: Mapping[str, list[bytes]]) -> dict[str, list[bytes]]:
    """The entry with case-folded attribute names (LDAP names are case-insensitive and
    python-ldap returns them as the server spelt them)."""
    return {key.casefold(): values for key, values in entry.items()}


def first_text(entry: Mapping[str, list[bytes]], name: str) -> str | None:
    """The first value of attribute `name` as text; `entry` has folded names (`fold`)."""
    values = entry.get(name.casefold())
    if not values:
        return None
    try:
        text = values[0].decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    return text[:MAX_TEXT] or None


def entry_key(entry: Mapping[str, list[bytes]], dn: str, attribute: str) -> str:
    """The entry's stable id: AD's binary `objectGUID` as a UUID, `entryUUID` as text, else
    the normalised DN (then a move reads as a removal and an addition). `entry` is folded."""
    values = entry.get(attribute.casefold())
    if values:
        raw = values[0]
        if attribute == "objectGUID" and len(raw) == 16:
            return str(uuid.UUID(bytes_le=raw))
        try:
            return raw.decode("ascii").strip().lower()
        except UnicodeDecodeError:
            return raw.hex()
    return "dn:" + normalise_dn(dn)


def is_disabled(entry: Mapping[str, list[bytes]], rule: Flavour) -> bool:
    """AD: `userAccountControl` has ACCOUNTDISABLE; elsewhere the configured attribute is
    present (with one of the configured values, when some are given)."""
    if rule.disabled is None:
        return False
    text = first_text(entry, rule.disabled)
    if text is None:
        return False
    if rule.disabled.casefold() == "useraccountcontrol" and rule.disabled_values is None:
        try:
            return bool(int(text) & UF_ACCOUNTDISABLE)
        except ValueError:
            return False
    if rule.disabled_values is None:
        return True
    return text.casefold() in rule.disabled_values


def map_user(
    dn: str,
    entry: Mapping[str, list[bytes]],
    config: LdapSource,
    rule: Flavour,
    units: UnitMapper | None,
) -> UserEntry:
    """One person entry (its names folded, `fold`) → `UserEntry`. An entry without a login
    keeps an empty one: it is reported when the directory is built, never dropped."""
    login = first_text(entry, rule.login) or ""
    unit: str | None = None
    if config.unit.attribute:
        text = first_text(entry, config.unit.attribute)
        if text:
            candidate = text.strip().strip("/").casefold()
            unit = candidate if UNIT_RE.match(candidate) else None
    if unit is None and units is not None:
        unit = units.unit(dn)
    return UserEntry(
        key=entry_key(entry, dn, rule.key),
        dn=dn,
        login=login,
        unit=unit,
        email=first_text(entry, rule.email),
        name=first_text(entry, rule.name),
        disabled=is_disabled(entry, rule),
    )


__all__ = [
    "AD_CAPABILITY",
    "IN_CHAIN",
    "UF_ACCOUNTDISABLE",
    "Flavour",
    "UnitMapper",
    "entry_key",
    "first_text",
    "flavour",
    "fold",
    "is_disabled",
    "map_user",
    "normalise_dn",
    "plain_dn",
]
