"""The row shape both directory readers produce, and the checks they share."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

UNIT_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*(/[a-z0-9][a-z0-9_.-]*)*$")


class Row(NamedTuple):
    """A user as a reader found it. A named tuple, not a frozen dataclass: a directory is
    read a row per user, and a tuple is built in about half the time."""

    user: str
    unit: str
    groups: tuple[str, ...] = ()
    email: str | None = None
    name: str | None = None
    line: int = 0  # where the user is in the file: problems found later point there


@dataclass(frozen=True, slots=True)
class Problem:
    """A row a reader skipped: where, what, and what to do about it."""

    line: int
    message: str
    hint: str


#: Hints for the problems both readers report.
INVALID_UNIT_HINT = "a unit is a lower-case path such as `gov/minfin/budget`"
DUPLICATE_USER_HINT = "keep one row per user; the first is used"


def normalise_unit(text: str) -> str:
    return text.strip().strip("/").lower()


def split_groups(text: str) -> tuple[str, ...]:
    if not text:  # most rows of a big directory list no groups
        return ()
    return tuple(g.strip() for g in re.split(r"[;|]", text) if g.strip())
