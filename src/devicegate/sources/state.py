"""What one read of a source yields, how it is kept in the store, and what it serves.

A `DirectoryState` is everything an LDAP pass learnt: each user entry (by its stable key:
`entryUUID`, AD's `objectGUID`, else the DN), each group with its members, and how nested
groups are resolved. A delta pass changes a copy of it; the `Directory` the policy compiles
against is derived from it. An `InventoryState` is the list of devices an MDM returned.

Both serialise to compressed canonical JSON (`encode`/`decode`): that blob is the version the
store keeps, so a restart during an outage starts from exactly what was served, and its digest
is the version id: two passes that read the same data name the same version whatever order
the server answered in.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Literal, NamedTuple

from devicegate.directory import Directory, DirectoryProblem, User
from devicegate.errors import SourceError
from devicegate.inventory import Inventory, InventoryDevice
from devicegate.model import Ownership

FORMAT = 1
#: A stored blob larger than this after decompression is refused (a corrupt or hostile row).
MAX_CONTENT_BYTES = 2 * 1024 * 1024 * 1024

GroupMode = Literal["walk", "in_chain", "none"]


class UserEntry(NamedTuple):
    """One person entry as mapped from LDAP. `unit` is None when no usable unit was found
    (the user is then reported, not served). A named tuple, not a dataclass: a full pass
    makes one per user, and the stored form writes it as it is (a JSON array)."""

    key: str
    dn: str
    login: str
    unit: str | None
    email: str | None = None
    name: str | None = None
    disabled: bool = False


class GroupEntry(NamedTuple):
    """One group. `members` holds normalised member DNs (walk: users and groups alike) or,
    with AD's in-chain rule, the keys of every user that is a member at any depth.
    `parents` are the normalised DNs of the groups this group is a direct member of (AD's
    `memberOf` of the group; a delta re-resolves them when a member group changes)."""

    key: str
    dn: str
    name: str
    members: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()


@dataclass(slots=True)
class DirectoryState:
    users: dict[str, UserEntry] = field(default_factory=dict)
    groups: dict[str, GroupEntry] = field(default_factory=dict)
    mode: GroupMode = "walk"
    server: str = "openldap"

    def copy(self) -> DirectoryState:
        return DirectoryState(dict(self.users), dict(self.groups), self.mode, self.server)


@dataclass(slots=True)
class InventoryState:
    devices: list[InventoryDevice] = field(default_factory=list)


State = DirectoryState | InventoryState


# ---- what is served -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rows:
    """What a state serves, before it is indexed: the users (with their groups resolved) and
    the problems found, or the devices. The guard compares rows; `build` makes the
    `Directory` or `Inventory` a server swaps in (its alias index costs as much again)."""

    kind: str
    source: str
    users: tuple[User, ...] = ()
    devices: tuple[InventoryDevice, ...] = ()
    problems: tuple[DirectoryProblem, ...] = ()

    def __len__(self) -> int:
        return len(self.users) if self.kind == "directory" else len(self.devices)

    def build(self) -> Directory | Inventory:
        if self.kind == "directory":
            return Directory(self.users, source=self.source, problems=self.problems)
        return Inventory(sorted(self.devices, key=lambda d: d.device_id), source=self.source)


def group_cycles(groups: dict[str, GroupEntry]) -> list[tuple[str, ...]]:
    """Groups that contain themselves through other groups (walk mode), each cycle once, as
    sorted group names. Iterative DFS: a deep nesting must not exhaust the stack."""
    cycles: set[tuple[str, ...]] = set()
    colour: dict[str, int] = {}
    for start in groups:
        if colour.get(start):
            continue
        stack: list[tuple[str, Iterable[str]]] = [(start, iter(groups[start].members))]
        path = [start]
        colour[start] = 1
        while stack:
            node, children = stack[-1]
            child = next((c for c in children if c in groups), None)
            if child is None:
                colour[node] = 2
                stack.pop()
                path.pop()
                continue
            state = colour.get(child, 0)
            if state == 1:
                loop = path[path.index(child) :]
                cycles.add(tuple(sorted(groups[k].name for k in loop)))
            elif state == 0:
                colour[child] = 1
                path.append(child)
                stack.append((child, iter(groups[child].members)))
    return sorted(cycles)


def _squeezed(rdn: str) -> str:
    """An RDN as `normalise_dn` writes it when it has spaces around `=`."""
    attribute, _, value = rdn.partition("=")
    return f"{attribute.strip()}={value.strip()}".casefold()


def resolve_groups(state: DirectoryState) -> dict[str, frozenset[str]]:
    """Each user key → the names of every group it belongs to, at any depth."""
    result: dict[str, set[str]] = {}
    if state.mode == "none":
        return {}
    if state.mode == "in_chain":
        for group in state.groups.values():
            for key in group.members:
                result.setdefault(key, set()).add(group.name)
        return {k: frozenset(v) for k, v in result.items()}
    parents: dict[str, list[str]] = {}
    for group in state.groups.values():
        for member in group.members:
            parents.setdefault(member, []).append(group.key)
    closure: dict[str, frozenset[str]] = {}

    def above(start: str) -> frozenset[str]:
        """Names of every group reachable upwards from `start` (visited set: cycles end)."""
        cached = closure.get(start)
        if cached is not None:
            return cached
        seen: set[str] = set()
        todo = list(parents.get(start, ()))
        while todo:
            key = todo.pop()
            if key in seen:
                continue
            seen.add(key)
            todo.extend(parents.get(key, ()))
        names = frozenset(state.groups[k].name for k in seen)
        closure[start] = names
        return names

    from devicegate.sources.ldapmap import normalise_dn, plain_dn

    # only a user whose first RDN some member DN starts with can be a member: a plain DN
    # (no escapes) whose first RDN is no member's is skipped without normalising it all —
    # most users are in no group
    heads = {member.partition(",")[0] for member in parents}
    for user in state.users.values():
        if plain_dn(user.dn) and _squeezed(user.dn.partition(",")[0]) not in heads:
            continue
        direct = parents.get(normalise_dn(user.dn))
        if direct:
            # users sharing the same direct groups share one closure computation
            groups: set[str] = set()
            for group_key in direct:
                groups.add(state.groups[group_key].name)
                groups |= above(group_key)
            result[user.key] = groups
    return {k: frozenset(v) for k, v in result.items()}


def directory_rows(state: DirectoryState, source: str) -> Rows:
    """The users a state serves: those with a unit, their groups resolved; entries without a
    login or a usable unit, logins two entries share (the entry with the smaller DN keeps it,
    whatever order the server answered in) and group cycles are reported."""
    memberships = resolve_groups(state)
    problems: list[DirectoryProblem] = []
    chosen: dict[str, UserEntry] = {}
    for entry in state.users.values():
        if not entry.login:
            problems.append(
                DirectoryProblem(
                    source,
                    0,
                    f"entry `{entry.dn}` has no login attribute",
                    "give the account a login, or set `users.login` to the attribute it has",
                )
            )
            continue
        if entry.unit is None:
            problems.append(
                DirectoryProblem(
                    source,
                    0,
                    f"user `{entry.login}`: no usable unit in `{entry.dn}`",
                    "set the unit attribute, or map the entry's ou= path in `unit.map`",
                )
            )
            continue
        folded = entry.login.casefold()
        other = chosen.get(folded)
        if other is not None:
            kept, dropped = (other, entry) if other.dn <= entry.dn else (entry, other)
            chosen[folded] = kept
            problems.append(
                DirectoryProblem(
                    source,
                    0,
                    f"user `{dropped.login}` ({dropped.dn}) has the login of `{kept.dn}`",
                    "give every account its own login; the one with the smaller DN is used",
                )
            )
            continue
        chosen[folded] = entry
    users = [
        User(
            id=entry.login,
            unit=entry.unit,  # type: ignore[arg-type]  # None was reported above
            groups=memberships.get(entry.key, _NO_GROUPS),
            email=entry.email,
            name=entry.name,
            disabled=entry.disabled,
        )
        for entry in chosen.values()
    ]
    if state.mode == "walk":
        for cycle in group_cycles(state.groups):
            problems.append(
                DirectoryProblem(
                    source,
                    0,
                    f"groups {', '.join(f'`{n}`' for n in cycle)} contain each other",
                    "a cycle is resolved once (every member of one is a member of all)",
                )
            )
    problems.sort(key=lambda p: p.message)
    return Rows("directory", source, users=tuple(users), problems=tuple(problems))


_NO_GROUPS: frozenset[str] = frozenset()


def inventory_rows(state: InventoryState, source: str) -> Rows:
    return Rows("inventory", source, devices=tuple(state.devices))


def rows_of(state: State, source: str) -> Rows:
    if isinstance(state, DirectoryState):
        return directory_rows(state, source)
    return inventory_rows(state, source)


def build_directory(state: DirectoryState, source: str) -> Directory:
    built = directory_rows(state, source).build()
    assert isinstance(built, Directory)
    return built


# ---- canonical form, version id, compression ------------------------------------------------

_DEVICE_FIELDS = tuple(f.name for f in fields(InventoryDevice))


def device_row(device: InventoryDevice) -> list[object]:
    return [
        getattr(device, name).value if name == "ownership" else getattr(device, name)
        for name in _DEVICE_FIELDS
    ]


def encode(state: State) -> tuple[bytes, str]:
    """The compressed canonical JSON the store keeps for a version, and the version id: the
    first 16 hex digits of the JSON's SHA-256. Entries are sorted by their stable id and
    members within a group, so two passes that read the same data name the same version
    whatever order the server answered in."""
    if isinstance(state, DirectoryState):
        data: dict[str, object] = {
            "format": FORMAT,
            "kind": "directory",
            "mode": state.mode,
            "server": state.server,
            # named tuples sort by their first field, the key, and dump as JSON arrays
            "users": sorted(state.users.values()),
            "groups": [
                [g.key, g.dn, g.name, sorted(g.members), sorted(g.parents)]
                for g in sorted(state.groups.values(), key=lambda g: g.key)
            ],
        }
    else:
        data = {
            "format": FORMAT,
            "kind": "inventory",
            "fields": list(_DEVICE_FIELDS),
            "devices": [device_row(d) for d in sorted(state.devices, key=lambda d: d.device_id)],
        }
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return zlib.compress(raw, 1), hashlib.sha256(raw).hexdigest()[:16]


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError("expected text")


def decode(blob: bytes) -> State:
    """A stored version back into a state; a damaged blob is a `SourceError`, never a
    silently empty directory."""
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(blob, MAX_CONTENT_BYTES)
        if inflater.unconsumed_tail:
            raise ValueError("larger than 2 GiB")
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(
                f"unknown format {data.get('format') if isinstance(data, dict) else ''}"
            )
        if data["kind"] == "directory":
            state = DirectoryState(mode=data["mode"], server=str(data["server"]))
            if state.mode not in ("walk", "in_chain", "none"):
                raise ValueError(f"unknown group mode `{state.mode}`")
            for key, dn, login, unit, email, name, disabled in data["users"]:
                state.users[str(key)] = UserEntry(
                    str(key), str(dn), str(login), _text(unit), _text(email), _text(name),
                    disabled is True,
                )  # fmt: skip
            for key, dn, name, members, parents in data["groups"]:
                state.groups[str(key)] = GroupEntry(
                    str(key), str(dn), str(name), tuple(map(str, members)),
                    tuple(map(str, parents)),
                )  # fmt: skip
            return state
        if data["kind"] == "inventory":
            names = data["fields"]
            devices = []
            for row in data["devices"]:
                values = dict(zip(names, row, strict=True))
                values["ownership"] = Ownership(values.get("ownership") or "unknown")
                values = {k: v for k, v in values.items() if k in _DEVICE_FIELDS}
                devices.append(InventoryDevice(**values))
            return InventoryState(devices)
        raise ValueError(f"unknown kind `{data['kind']}`")
    except (zlib.error, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise SourceError(f"a stored source version cannot be read: {exc}") from None


__all__ = [
    "DirectoryState",
    "GroupEntry",
    "InventoryState",
    "Rows",
    "State",
    "UserEntry",
    "build_directory",
    "decode",
    "device_row",
    "directory_rows",
    "encode",
    "group_cycles",
    "inventory_rows",
    "resolve_groups",
    "rows_of",
]
