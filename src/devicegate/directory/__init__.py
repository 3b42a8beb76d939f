"""Users and the units they belong to, as the work services authenticate them.

A user is found by any of the names a service may present: the login (`user` column) or the
e-mail address. Units are paths (`gov/minfin/budget`). Units the directory uses that the
policy does not know are *reported* (`Directory.problems`), never silently ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from devicegate.directory.csvfile import read_csv_directory
from devicegate.directory.ldiffile import read_ldif_directory
from devicegate.errors import DirectoryError


@dataclass(frozen=True, slots=True)
class User:
    id: str
    unit: str
    groups: frozenset[str] = frozenset()
    email: str | None = None
    name: str | None = None

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
    """Immutable lookup of users by any alias (case-insensitive)."""

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
        self.problems: tuple[DirectoryProblem, ...] = tuple(problems)
        #: The line of the first user in each unit, so a unit problem points at a real row.
        self.unit_lines: dict[str, int] = dict(unit_lines or {})
        self._by_alias: dict[str, User] = {}
        for user in self.users:
            for alias in user.aliases():
                self._by_alias.setdefault(alias.lower(), user)

    def __len__(self) -> int:
        return len(self.users)

    def get(self, name: str) -> User | None:
        return self._by_alias.get(name.lower())

    def units(self) -> set[str]:
        return {user.unit for user in self.users}

    def aliases(self) -> Iterator[tuple[str, User]]:
        return iter(self._by_alias.items())

    def with_known_units(self, known: set[str]) -> Directory:
        """A copy that reports every user whose unit is not in `known` (which must include
        ancestors)."""
        problems = list(self.problems)
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
        return Directory(
            self.users, source=self.source, problems=problems, unit_lines=self.unit_lines
        )


EMPTY_DIRECTORY = Directory()


def load_directory(path: str | Path) -> Directory:
    """Read a directory from CSV (`user,unit[,groups,email,name]`) or LDIF (by extension)."""
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
