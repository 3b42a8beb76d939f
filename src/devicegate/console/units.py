"""Units as the console shows them: the policy's declared units (`units:`), each user counted
under the deepest declared unit that holds their directory unit (or that unit itself when
the policy declares none above it). Computed once per snapshot."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from devicegate.policy import Snapshot


def under(unit: str, scope: str) -> bool:
    """Whether `unit` is `scope` or inside it."""
    return unit == scope or unit.startswith(scope + "/")


@dataclass(frozen=True)
class UnitIndex:
    declared: tuple[str, ...]
    every: frozenset[str]  # every unit a page may name: declared, the directory's, ancestors
    #: (rule index, display unit) → users in the rule's scope
    in_scope: dict[tuple[int, str], int]

    def shown(self, unit: str) -> str:
        """The declared unit a directory unit is counted under."""
        best = ""
        for declared in self.declared:
            if under(unit, declared) and len(declared) > len(best):
                best = declared
        return best or unit


@lru_cache(maxsize=4)
def unit_index(snapshot: Snapshot) -> UnitIndex:
    declared = tuple(sorted(snapshot.loaded.policy.units))
    every: set[str] = set()
    for unit in (*declared, *snapshot.directory.units()):
        parts = unit.split("/")
        every.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    index = UnitIndex(declared, frozenset(every), {})
    shown: dict[str, str] = {}
    counts: Counter[tuple[int, str]] = Counter()
    for user in snapshot.directory.users:
        cls = snapshot.class_by_user.get(user.id)
        if cls is None:
            continue
        unit = shown.get(user.unit) or shown.setdefault(user.unit, index.shown(user.unit))
        for rule_index, _depth in snapshot.classes[cls].rules:
            counts[(rule_index, unit)] += 1
    index.in_scope.update(counts)
    return index


__all__ = ["UnitIndex", "under", "unit_index"]
