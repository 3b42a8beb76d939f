"""The row shape both directory readers produce, and the checks they share."""

from __future__ import annotations

import re
from dataclasses import dataclass

UNIT_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*(/[a-z0-9][a-z0-9_.-]*)*$")


@dataclass(frozen=True, slots=True)
class Row:
    user: str
    unit: str
    groups: tuple[str, ...] = ()
    email: str | None = None
    name: str | None = None


def normalise_unit(text: str) -> str:
    return text.strip().strip("/").lower()


def split_groups(text: str) -> tuple[str, ...]:
    return tuple(g.strip() for g in re.split(r"[;|]", text) if g.strip())
