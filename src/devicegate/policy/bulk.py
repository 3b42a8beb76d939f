"""The compiled policy for judging in bulk: what the audit's engines may ask of a snapshot.

Online, `decide` answers one request at a time. The audit (DuckDB or Spark over millions of
logged events) first reduces the events to a few distinct things — users, signals, times —
and asks about those, once each, then joins the answers back. This module is the whole of
what it asks of a `Snapshot` besides `decide` itself. Nothing here judges: each function is
one step `decide` takes, made available so that the step is taken once per distinct value.

What the audit relies on — each holds by construction of `compile` and `engine`:

* `decide(Request(name, resource, at, signals))` depends on `name` only through
  `user(snapshot, name).cls`, so one name per class decides for all its members;
* it depends on `at` only through `plan(snapshot, cls, resource, at)`, and `at` reaches the
  plan only through `segment(snapshot, at)`: nothing in the policy changes between two of
  the `breaks`, which an engine turns into SQL to place millions of times at once;
* its action, rule, exceptions, report-only hits and spoofing flag depend on `signals` only
  through `device_class(snapshot, identify(snapshot, signals))`.

Every function reads the snapshot's immutable part; `plan`, `identify` and `device_class`
fill its caches (`Snapshot` says which are which), as `decide` would.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import NamedTuple

from devicegate.directory import User
from devicegate.model import NO_STATE, DeviceProfile, Signals
from devicegate.policy.compile import Snapshot


class BulkUser(NamedTuple):
    """A presented user name as `decide` and `serve` take it.

    `cls` is its scope class (`Snapshot.class_of`); `user` the one directory user it stands
    for (`Snapshot.resolve_user`: case, space, dots, `DOMAIN\\login` and `login@DOMAIN`
    through the policy's `login_domains`), None for a name that names nobody; `canonical`
    the name sightings and decisions are recorded under (`Snapshot.canonical_user`): the
    user's id, else the normalised name. A named tuple: the audit makes one per distinct
    logged name, and it takes half the time of a frozen dataclass to build."""

    cls: int
    user: User | None
    canonical: str


def user(snapshot: Snapshot, name: str) -> BulkUser:
    """How `decide` and `serve` take the presented name `name`. Not cached: the audit
    asks once per distinct name."""
    return BulkUser(snapshot.class_of(name), *snapshot.read_name(name))


def breaks(snapshot: Snapshot) -> tuple[float, ...]:
    """The instants (epoch seconds, sorted) at which anything in the policy changes — a
    rule's notice, start or end, an exception's start, last days or end."""
    return snapshot.breaks


def segment(snapshot: Snapshot, ts: float) -> int:
    """The time segment of `ts`: the number of `breaks` at or before it."""
    return bisect_right(snapshot.breaks, ts)


def plan(snapshot: Snapshot, cls: int, resource: str, ts: float) -> int:
    """The plan (the rules that can apply, in which phase) of a scope class, a resource and
    a time; equal plans decide equal devices equally. The same for every `ts` of one
    `segment`."""
    return snapshot.plan(cls, resource, ts)


def identify(snapshot: Snapshot, signals: Signals) -> DeviceProfile:
    """The device `decide` sees for these signals (the snapshot's `Identifier`)."""
    return snapshot.identifier.profile(signals)


def device_class(snapshot: Snapshot, profile: DeviceProfile) -> int:
    """The class of devices the policy cannot tell apart from `profile`, with no device
    state (the audit judges what the policy alone says)."""
    return snapshot.device_class(profile, NO_STATE)


__all__ = ["BulkUser", "breaks", "device_class", "identify", "plan", "segment", "user"]
