"""What a sync would change, and whether the guard lets it through.

The guard refuses an answer that is empty, or that would remove more than the allowed share
(`--max-removal`, default 10 %) of the users or devices now served. A pass that failed part-way
never gets here: it raised, and a partial answer is never compared, let alone accepted. The
first version of a source has nothing to compare with; it is accepted when it is not empty.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from devicegate.directory import User
from devicegate.inventory import InventoryDevice
from devicegate.sources.state import Rows


@dataclass(frozen=True, slots=True)
class Diff:
    """The difference between the served version and a new answer, by user id or device id.

    `moved` lists (user, old unit, new unit); `groups` (user, groups joined, groups left);
    `changed` the ids whose record changed in any other way (e-mail, disabled, a device's
    identifiers or state)."""

    kind: str
    before: int
    after: int
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    moved: tuple[tuple[str, str, str], ...] = ()
    groups: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = ()
    changed: tuple[str, ...] = ()
    disabled: tuple[str, ...] = field(default=())

    @property
    def removal_share(self) -> float:
        return len(self.removed) / self.before if self.before else 0.0

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.moved or self.groups or self.changed)

    def counts(self) -> dict[str, int]:
        return {
            "before": self.before,
            "after": self.after,
            "added": len(self.added),
            "removed": len(self.removed),
            "moved": len(self.moved),
            "group_changes": len(self.groups),
            "changed": len(self.changed),
        }


def _users(users: Iterable[User]) -> dict[str, User]:
    return {u.id.casefold(): u for u in users}


def diff_directories(old: Iterable[User], new: Iterable[User]) -> Diff:
    before, after = _users(old), _users(new)
    moved: list[tuple[str, str, str]] = []
    groups: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = []
    changed: list[str] = []
    disabled: list[str] = []
    for key in sorted(before.keys() & after.keys()):
        was, now = before[key], after[key]
        if was == now:
            continue
        if was.unit != now.unit:
            moved.append((now.id, was.unit, now.unit))
        if was.groups != now.groups:
            groups.append(
                (
                    now.id,
                    tuple(sorted(now.groups - was.groups)),
                    tuple(sorted(was.groups - now.groups)),
                )
            )
        if (was.email, was.name, was.disabled, was.id) != (
            now.email,
            now.name,
            now.disabled,
            now.id,
        ):
            changed.append(now.id)
        if now.disabled and not was.disabled:
            disabled.append(now.id)
    return Diff(
        kind="directory",
        before=len(before),
        after=len(after),
        added=tuple(sorted(after[k].id for k in after.keys() - before.keys())),
        removed=tuple(sorted(before[k].id for k in before.keys() - after.keys())),
        moved=tuple(moved),
        groups=tuple(groups),
        changed=tuple(changed),
        disabled=tuple(disabled),
    )


def _devices(devices: Iterable[InventoryDevice]) -> dict[str, InventoryDevice]:
    return {d.device_id: d for d in devices}


def diff_inventories(old: Iterable[InventoryDevice], new: Iterable[InventoryDevice]) -> Diff:
    before, after = _devices(old), _devices(new)
    return Diff(
        kind="inventory",
        before=len(before),
        after=len(after),
        added=tuple(sorted(after.keys() - before.keys())),
        removed=tuple(sorted(before.keys() - after.keys())),
        changed=tuple(sorted(k for k in before.keys() & after.keys() if before[k] != after[k])),
    )


def diff(old: Rows | None, new: Rows) -> Diff:
    """What `new` changes against `old` (None: the source's first version)."""
    if new.kind == "directory":
        return diff_directories(old.users if old else (), new.users)
    return diff_inventories(old.devices if old else (), new.devices)


def refusal(change: Diff, max_removal: float) -> str | None:
    """Why the guard refuses `change`, or None when it lets it through."""
    noun = "users" if change.kind == "directory" else "devices"
    if change.after == 0:
        return f"empty answer: the source returned no {noun}"
    if change.before and change.removal_share > max_removal:
        return (
            f"would remove {len(change.removed)} of {change.before} {noun} "
            f"({change.removal_share:.1%} > the {max_removal:.0%} allowed)"
        )
    return None


__all__ = ["Diff", "diff", "diff_directories", "diff_inventories", "refusal"]
