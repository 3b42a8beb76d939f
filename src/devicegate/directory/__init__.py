"""Users and the units they belong to, as the work services authenticate them.

A user is found by any of the names a service may present: the login (`user` column) or the
e-mail address. Units are paths (`gov/minfin/budget`). Units the directory uses that the
policy does not know are *reported* (`Directory.problems`), never silently ignored.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from devicegate.directory.csvfile import read_csv_directory
from devicegate.directory.ldiffile import read_ldif_directory
from devicegate.directory.names import alias_candidates, normalise_name
from devicegate.errors import DirectoryError


@dataclass(frozen=True, slots=True)
class User:
    id: str
    unit: str
    groups: frozenset[str] = frozenset()
    email: str | None = None
    name: str | None = None
    #: the directory says the account is disabled (AD `userAccountControl` 0x0002, or the
    #: source's configured attribute): kept with its unit, so a ban still scopes it
    disabled: bool = False

    def aliases(self) -> Iterator[str]:
        yield self.id
        if self.email:
            yield self.email


@dataclass(frozen=True, slots=True)
class DirectoryProblem:
    """Something in a directory file that was skipped or that the policy does not know.
    `line` is 0 only for a directory built in memory (no file to point into)."""

    file: str
    line: int
    message: str
    hint: str | None = None

    def format(self) -> str:
        text = f"{self.file}:{self.line}: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


class Directory:
    """Immutable lookup of users by any alias (case-insensitive).

    An alias two users share (one's login is another's e-mail address, say) names neither:
    it is left out of the lookup and reported, never given to whichever came first."""

    def __init__(
        self,
        users: Iterable[User] = (),
        *,
        source: str = "",
        problems: Iterable[DirectoryProblem] = (),
        unit_lines: dict[str, int] | None = None,
    ) -> None:
        self.users: tuple[User, ...] = tuple(users)
        self.source = source
        #: The line of the first user in each unit, so a unit problem points at a real row.
        self.unit_lines: dict[str, int] = dict(unit_lines or {})
        by_alias: dict[str, User] = {}
        shared: set[str] = set()
        for user in self.users:
            for alias in user.aliases():  # a login equal to the e-mail address finds its user
                key = normalise_name(alias)
                if by_alias.setdefault(key, user) is not user:
                    shared.add(key)
        for alias in shared:
            del by_alias[alias]
        self._by_alias = by_alias
        self.shared_aliases: frozenset[str] = frozenset(shared)
        self._read_problems: tuple[DirectoryProblem, ...] = tuple(problems)

    @property
    def problems(self) -> tuple[DirectoryProblem, ...]:
        """What reading found, then every name several users share."""
        return self._read_problems + tuple(
            DirectoryProblem(
                self.source,
                0,
                f"name `{alias}` belongs to several users: it names none",
                "give each user a login and an e-mail address no other user has",
            )
            for alias in sorted(self.shared_aliases)
        )

    def __len__(self) -> int:
        return len(self.users)

    def get(self, name: str) -> User | None:
        """The user an alias names exactly (after `normalise_name`), if one does."""
        return self._by_alias.get(normalise_name(name))

    def resolve(self, name: str, domains: Mapping[str, str] | None = None) -> User | None:
        """The one user a presented name stands for (`directory.names`), None when it names
        no user or more than one."""
        candidates = alias_candidates(name, domains or {})
        if len(candidates) == 1:  # no domain form: the usual case, once per distinct name
            return self._by_alias.get(candidates[0])
        found: User | None = None
        for alias in candidates:
            user = self._by_alias.get(alias)
            if user is None:
                continue
            if found is not None and user is not found:
                return None
            found = user
        return found

    def units(self) -> set[str]:
        return {user.unit for user in self.users}

    def aliases(self) -> Iterator[tuple[str, User]]:
        return iter(self._by_alias.items())

    def with_known_units(self, known: set[str]) -> Directory:
        """A copy that reports every user whose unit is not in `known` (which must include
        ancestors)."""
        problems = list(self._read_problems)
        for unit in sorted(self.units() - known):
            count = sum(1 for user in self.users if user.unit == unit)
            problems.append(
                DirectoryProblem(
                    self.source,
                    self.unit_lines.get(unit, 0),
                    f"unit `{unit}` ({count} user{'s' if count != 1 else ''}) is not in the policy",
                    "add the unit to the policy's `units:`, or correct the users' unit",
                )
            )
        # the users and their aliases are the same: share the lookup (immutable) rather than
        # normalise every alias of every user again
        checked = copy.copy(self)
        checked._read_problems = tuple(problems)
        return checked


EMPTY_DIRECTORY = Directory()


def load_directory(path: str | Path) -> Directory:
    """Read the directory `--directory` names, by extension: CSV (`user,unit[,groups,email,
    name]`), LDIF (`.ldif`), or an LDAP source YAML (`.yaml`, read live from the server: see
    `devicegate.sources.load_live_directory`)."""
    from devicegate.sources import is_source_file

    if is_source_file(path):
        from devicegate.sources import load_live_directory

        return load_live_directory(path)
    path = Path(path)
    if not path.exists():
        raise DirectoryError(f"no such directory file `{path}`")
    if path.suffix.lower() in (".ldif", ".ldi"):
        rows, problems = read_ldif_directory(path)
    else:
        rows, problems = read_csv_directory(path)
    users = [
        User(id=r.user, unit=r.unit, groups=frozenset(r.groups), email=r.email, name=r.name)
        for r in rows
    ]
    unit_lines: dict[str, int] = {}
    for row in rows:
        unit_lines.setdefault(row.unit, row.line)
    return Directory(
        users,
        source=str(path),
        problems=[DirectoryProblem(str(path), p.line, p.message, p.hint) for p in problems],
        unit_lines=unit_lines,
    )


__all__ = ["EMPTY_DIRECTORY", "Directory", "DirectoryProblem", "User", "load_directory"]
