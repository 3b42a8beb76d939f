"""Reading a directory from LDAP: a full pass, or a delta since a watermark.

**Full pass**: every user entry under `users.base` matching the filter, then every group under
`groups.base`; nested groups resolved by AD's LDAP_MATCHING_RULE_IN_CHAIN (one paged search
per group for its members at any depth) or, elsewhere, by walking the groups' `member` values
client-side with cycle detection. A full pass is exact: users deleted, moved out of the base
or out of the filter are gone from its result.

**Delta**: only entries changed since the watermark — users *and groups*, because adding a
user to a group changes the group's entry, not the user's. On AD the watermark is the
server's `highestCommittedUSN` read *before* the pass (`uSNChanged` is a per-server counter:
nothing committed later can carry a lower one). Elsewhere it is `modifyTimestamp`, taken as
the newest timestamp read but no later than the start of the pass minus `delta_overlap`, so
a change made while the pass ran, or under a skewed clock, is read again rather than missed.
A delta cannot see deletions (a deleted entry matches no filter): the hourly full pass does.
With the in-chain rule a changed group is re-resolved together with every group above it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import ldap.dn
import ldap.filter

from devicegate.errors import SourceConfigError, SourceError
from devicegate.sources.config import LdapSource
from devicegate.sources.ldapconn import Connection, Entry
from devicegate.sources.ldapmap import (
    IN_CHAIN,
    Flavour,
    UnitMapper,
    entry_key,
    first_text,
    flavour,
    fold,
    map_user,
    normalise_dn,
)
from devicegate.sources.state import DirectoryState, GroupEntry, GroupMode, UserEntry

_STAMP = "%Y%m%d%H%M%SZ"


@dataclass(frozen=True, slots=True)
class LdapPass:
    """What one pass produced: the state, the watermark for the next delta, whether the
    pass changed anything, and how many entries it read (users, groups)."""

    state: DirectoryState
    watermark: str | None
    changed: bool
    read_users: int
    read_groups: int


def _stamp_key(text: str) -> str | None:
    """`20240102030405Z` or AD's `20240102030405.0Z` → the comparable 14-digit form."""
    digits = text[:14]
    return digits if len(digits) == 14 and digits.isdigit() else None


class _Newest:
    """The newest modifyTimestamp a pass read (14 digits; "" when none was)."""

    def __init__(self) -> None:
        self.value = ""

    def see(self, stamp: str | None) -> None:
        key = _stamp_key(stamp) if stamp else None
        if key is not None and key > self.value:
            self.value = key


class LdapReader:
    """Reads one LDAP source. Stateless between calls: the state travels in and out."""

    def __init__(self, config: LdapSource) -> None:
        self.config = config
        try:
            self.units = (
                UnitMapper(config.unit.ou_base, config.unit.map) if config.unit.ou_base else None
            )
        except ldap.DECODING_ERROR:
            raise SourceConfigError(f"unit.ou_base `{config.unit.ou_base}` is not a DN") from None

    def connect(self) -> Connection:
        password = self.config.password.read() if self.config.password is not None else None
        return Connection(self.config, password)

    def _server(self, conn: Connection, is_ad: bool) -> str:
        if self.config.server != "auto":
            return self.config.server
        return "ad" if is_ad else "openldap"

    def _mode(self, server: str) -> GroupMode:
        nested = self.config.groups.nested
        if nested == "auto":
            return "in_chain" if server == "ad" else "walk"
        return nested

    # ---- passes -----------------------------------------------------------------------------

    def full(self) -> LdapPass:
        """Read every user and group (see the module docstring)."""
        with self.connect() as conn:
            dse = conn.root_dse()
            server = self._server(conn, dse.is_ad)
            rule = flavour(self.config, server)
            state = DirectoryState(mode=self._mode(server), server=server)
            started = time.time()
            newest = _Newest()
            users = self._users(conn, rule, None, newest)
            for entry in users:
                state.users[entry.key] = entry
            groups = self._groups(conn, rule, state.mode, None, newest)
            for group in groups:
                state.groups[group.key] = group
            if state.mode == "in_chain":
                self._in_chain(conn, rule, state, list(state.groups))
            watermark = self._watermark(rule, dse.highest_usn, newest, started)
        return LdapPass(state, watermark, True, len(users), len(groups))

    def delta(self, previous: DirectoryState, watermark: str) -> LdapPass:
        """Apply the entries changed since `watermark` to a copy of `previous`."""
        with self.connect() as conn:
            dse = conn.root_dse()
            server = self._server(conn, dse.is_ad)
            if server != previous.server or self._mode(server) != previous.mode:
                raise SourceError(
                    f"`{self.config.url}` now reads as {server}: a full pass is needed"
                )
            rule = flavour(self.config, server)
            started = time.time()
            newest = _Newest()
            users = self._users(conn, rule, watermark, newest)
            groups = self._groups(conn, rule, previous.mode, watermark, newest)
            next_mark = self._watermark(rule, dse.highest_usn, newest, started, watermark)
            fresh_groups = [
                g
                for g in groups
                if (kept := previous.groups.get(g.key)) is None
                or (kept.name, kept.parents) != (g.name, g.parents)
                or (previous.mode == "walk" and kept.members != g.members)
                or previous.mode == "in_chain"
            ]
            fresh_users = [u for u in users if previous.users.get(u.key) != u]
            if not fresh_users and not fresh_groups:
                # only entries the overlap re-read, unchanged: nothing to rebuild
                return LdapPass(previous, next_mark, False, len(users), len(groups))
            state = previous.copy()
            for entry in users:
                state.users[entry.key] = entry
            for group in groups:
                if state.mode == "in_chain":
                    kept = state.groups.get(group.key)
                    group = group._replace(members=kept.members if kept else ())
                state.groups[group.key] = group
            if state.mode == "in_chain" and groups:
                self._in_chain(conn, rule, state, _with_ancestors(state, [g.key for g in groups]))
        return LdapPass(state, next_mark, True, len(users), len(groups))

    # ---- searches ---------------------------------------------------------------------------

    def _since(self, rule: Flavour, base_filter: str, watermark: str | None) -> str:
        if watermark is None:
            return base_filter
        bound = str(int(watermark) + 1) if rule.delta == "uSNChanged" else watermark
        return f"(&{base_filter}({rule.delta}>={ldap.filter.escape_filter_chars(bound)}))"

    def _users(
        self, conn: Connection, rule: Flavour, watermark: str | None, newest: _Newest
    ) -> list[UserEntry]:
        config = self.config
        attributes = rule.user_attributes(config.unit.attribute)
        found = []
        for dn, entry in conn.paged(
            config.users.base,
            config.users.scope,
            self._since(rule, rule.user_filter, watermark),
            attributes,
        ):
            entry = fold(entry)
            found.append(map_user(dn, entry, config, rule, self.units))
            newest.see(first_text(entry, rule.delta))
        return found

    def _groups(
        self,
        conn: Connection,
        rule: Flavour,
        mode: GroupMode,
        watermark: str | None,
        newest: _Newest,
    ) -> list[GroupEntry]:
        if mode == "none":
            return []
        base = self.config.groups.base or self.config.users.base
        found: list[GroupEntry] = []
        for dn, entry in conn.paged(
            base,
            "sub",
            self._since(rule, rule.group_filter, watermark),
            rule.group_attributes(with_members=mode == "walk"),
        ):
            entry = fold(entry)
            name = first_text(entry, rule.group_name) or _rdn_value(dn)
            members: tuple[str, ...] = ()
            if mode == "walk":
                members = tuple(normalise_dn(m) for m in _texts(entry, rule.member))
            parents = tuple(normalise_dn(m) for m in _texts(entry, ("memberOf",)))
            found.append(GroupEntry(normalise_dn(dn), dn, name, members, parents))
            newest.see(first_text(entry, rule.delta))
        return found

    def _in_chain(
        self, conn: Connection, rule: Flavour, state: DirectoryState, keys: Iterable[str]
    ) -> None:
        """Members at any depth of each group in `keys`, by AD's in-chain matching rule."""
        config = self.config
        for key in keys:
            group = state.groups.get(key)
            if group is None:
                continue
            chain = f"(memberOf:{IN_CHAIN}:={ldap.filter.escape_filter_chars(group.dn)})"
            members = [
                entry_key(fold(entry), dn, rule.key)
                for dn, entry in conn.paged(
                    config.users.base, config.users.scope, f"(&{rule.user_filter}{chain})",
                    [rule.key],
                )
            ]  # fmt: skip
            state.groups[key] = group._replace(members=tuple(sorted(members)))

    def _watermark(
        self,
        rule: Flavour,
        highest_usn: int | None,
        newest: _Newest,
        started: float,
        previous: str | None = None,
    ) -> str | None:
        if rule.delta == "uSNChanged":
            if highest_usn is not None:
                return str(highest_usn)
            return previous
        ceiling = datetime.fromtimestamp(
            started - self.config.delta_overlap.total_seconds(), UTC
        ).strftime(_STAMP)[:14]
        after = ""
        if newest.value:
            # strictly after the newest change read; the ceiling re-reads recent seconds
            newest_read = datetime.strptime(newest.value, "%Y%m%d%H%M%S")
            after = (newest_read + timedelta(seconds=1)).strftime("%Y%m%d%H%M%S")
        best = max(after, (previous or "")[:14])
        return min(best, ceiling) + "Z" if best else None


def _texts(entry: Entry, names: Iterable[str]) -> list[str]:
    """Every value of the attributes `names` as text; `entry` has folded names."""
    out: list[str] = []
    for name in names:
        for raw in entry.get(name.casefold(), ()):
            try:
                out.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                continue
    return out


def _rdn_value(dn: str) -> str:
    try:
        return str(ldap.dn.str2dn(dn)[0][0][1])
    except (ldap.DECODING_ERROR, IndexError):
        return dn


def _with_ancestors(state: DirectoryState, keys: list[str]) -> list[str]:
    """`keys` and every group above them (through the groups' `memberOf`), each once."""
    out: list[str] = []
    seen: set[str] = set()
    todo = list(keys)
    while todo:
        key = todo.pop()
        if key in seen:
            continue
        seen.add(key)
        out.append(key)
        group = state.groups.get(key)
        if group is not None:
            todo.extend(group.parents)
    return out


__all__ = ["LdapPass", "LdapReader"]
