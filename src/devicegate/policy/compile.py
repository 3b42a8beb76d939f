"""Compile a loaded policy, a directory and an inventory into an immutable `Snapshot`.

Compilation does every piece of work that does not depend on the single request, so that
`decide` is a handful of dict lookups on the hot path:

* users with the same scope membership (same rules, same depths, same exceptions) share a
  *scope class*; 100k users typically collapse into a few hundred classes;
* all dates (rule `from`, `from - notice`, `until`, exception windows and the start of each
  exception's last days) become sorted breakpoints: between two breakpoints nothing about the
  policy changes, so a time is reduced to a *segment* number with one bisect;
* (class, resource, segment) reduces to a *plan*: the rules that can apply and in which
  phase; plans are interned, and many classes share one. A plan in which a change is
  announced (a rule in notice, an exception in its last days) also names the plan of the
  moment that change happens, so that an announcement is made only when the same request
  will then get the announced effect (docs/semantics.md rule 3) — decided once per plan and
  device class, like everything else.

Decisions are then cached per (plan, device signals, device state) inside the snapshot: the
cache belongs to this immutable version and dies with it. `Snapshot` says which of its
attributes are the immutable compiled policy and which are caches; the bulk path (the audit)
uses it through `devicegate.policy.bulk`.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from devicegate.boundedcache import BoundedCache
from devicegate.directory import EMPTY_DIRECTORY, Directory, User
from devicegate.directory.names import normalise_name
from devicegate.identify import Identifier
from devicegate.inventory import EMPTY_INVENTORY, Inventory, device_forms, normalise_key
from devicegate.model import Action, Decision, DeviceProfile, DeviceState
from devicegate.policy.conditions import CompiledCondition, Tri, match_deny, match_only
from devicegate.policy.load import LoadedPolicy
from devicegate.policy.schema import (
    ALL_RESOURCES,
    DeviceCondition,
    PolicyException,
    Rule,
    parse_duration,
)
from devicegate.policy.validate import known_resources, to_instant, unit_closure, until_instant

USER_SPECIFIC_DEPTH = 1000  # a rule naming the user outranks any unit depth
NOTICE = "notice"
ACTIVE = "active"


@dataclass(frozen=True, slots=True)
class CompiledRule:
    index: int
    id: str
    description: str
    effect: Action
    report_only: bool
    resources: frozenset[str] | None  # None: every resource
    notice_start: float
    start: float
    end: float
    start_at: datetime
    until_at: datetime | None  # when the window ends (exclusive)
    notice: timedelta
    message: str
    on_unidentified: Action | None  # None: an unidentified device is not matched
    when: CompiledCondition | None
    only: CompiledCondition | None
    when_index: int  # position in Snapshot.conditions, -1 when absent
    only_index: int
    units: tuple[str, ...]
    groups: frozenset[str]
    users: frozenset[str]
    exclude_units: tuple[str, ...]
    exclude_groups: frozenset[str]
    exclude_users: frozenset[str]
    source: str

    def covers(self, resource: str) -> bool:
        return self.resources is None or resource in self.resources

    def phase(self, ts: float) -> str | None:
        if ts < self.notice_start or ts >= self.end:
            return None
        return ACTIVE if ts >= self.start else NOTICE

    def scope_depth(self, user: User) -> int | None:
        """How specifically this rule's scope names the user; None when out of scope."""
        uid = normalise_name(user.id)
        email = normalise_name(user.email or "")
        if uid in self.exclude_users or (email and email in self.exclude_users):
            return None
        if self.exclude_groups & user.groups:
            return None
        if any(_under(user.unit, unit) for unit in self.exclude_units):
            return None
        if not (self.units or self.groups or self.users):
            return 0
        depth: int | None = None
        if uid in self.users or (email and email in self.users):
            depth = USER_SPECIFIC_DEPTH
        for unit in self.units:
            if _under(user.unit, unit):
                depth = max(depth or 0, unit.count("/") + 1)
        if depth is None and self.groups & user.groups:
            depth = 0
        return depth


def _under(unit: str, scope: str) -> bool:
    return unit == scope or unit.startswith(scope + "/")


@dataclass(frozen=True, slots=True)
class CompiledException:
    index: int
    user: str | None
    device: str | None
    rules: frozenset[str]
    start: float
    end: float
    until_at: datetime  # when it ends (exclusive): a date-only `until` ends at the next midnight
    until_text: str  # `until` as the policy wrote it
    whole_day: bool  # `until` is a date: the exception includes that whole day
    reason: str
    approver: str | None
    # (rule id, start of the exception's last days for that rule): its own `notice`, else the
    # rule's; only for enforce-mode rules that restrict, and only with a notice.
    closing: tuple[tuple[str, float], ...] = ()
    #: `device` in every form a device's keys may carry it (`device_forms`)
    device_forms: frozenset[str] = frozenset()

    def active(self, ts: float) -> bool:
        return self.start <= ts < self.end

    def matches_device(self, keys: frozenset[str]) -> bool:
        return self.device is None or not keys.isdisjoint(self.device_forms)


@dataclass(frozen=True, slots=True)
class ScopeClass:
    rules: tuple[tuple[int, int], ...]  # (rule index, depth)
    exceptions: tuple[int, ...]  # exceptions naming this user
    known: bool = True


@dataclass(frozen=True, slots=True)
class DeviceClass:
    """How one device fares against every distinct condition of the policy."""

    outcomes: tuple[tuple[Tri, str], ...]
    device_exceptions: tuple[int, ...]
    spoofing: bool


@dataclass(frozen=True, slots=True)
class Plan:
    """What can apply to one scope class, for one resource, in one time segment.

    `ahead` and `closing` name plans of later moments (the same class and resource): what
    the request meets when an announced rule takes force, or when an ending exception has
    ended. The engine evaluates those to decide whether an announcement is true."""

    entries: tuple[tuple[int, int, str], ...]  # (rule index, depth, phase)
    exceptions: tuple[int, ...]  # active exceptions that may lift entries
    default: Action
    known_user: bool
    ahead: tuple[int, ...] = ()  # per entry: the plan at the rule's start if in notice, else -1
    closing: tuple[tuple[int, str, int], ...] = ()  # (exception, rule id, plan at its end)


@dataclass(frozen=True, slots=True)
class _Shape:
    """A plan before the plans of its later moments are known (instants, not plan ids)."""

    entries: tuple[tuple[int, int, str], ...]
    exceptions: tuple[int, ...]
    default: Action
    known_user: bool
    ahead: tuple[float | None, ...]
    closing: tuple[tuple[int, str, float], ...]

    def later(self) -> list[float]:
        return [t for t in self.ahead if t is not None] + [t for _, _, t in self.closing]

    def plan(self, plan_at: Callable[[float], int]) -> Plan:
        return Plan(
            self.entries,
            self.exceptions,
            self.default,
            self.known_user,
            tuple(-1 if t is None else plan_at(t) for t in self.ahead),
            tuple((i, rule_id, plan_at(t)) for i, rule_id, t in self.closing),
        )


class NameClasses(dict[str, int]):
    """Presented user name → scope class, as `decide` resolves it (`Snapshot.class_of`).

    Its entries are the directory's aliases (logins, e-mail addresses; normalised, shared
    ones left out), compiled in and never changed. Looking up any other name resolves it
    (`__missing__`: the one directory user the name stands for, else the class of users the
    directory does not know) without storing it: a hostile client's endless new names cost
    no memory here (`Snapshot.resolve_user` keeps a bounded cache). A subscript rather than
    a method, because `decide` looks the user up on every request and an exact alias — the
    usual case — is then a single C-level dict lookup. `.get` sees the aliases only."""

    __slots__ = ("_by_user", "_resolve", "_unknown")

    def __init__(
        self,
        aliases: dict[str, int],
        resolve: Callable[[str], User | None],
        by_user: dict[str, int],
        unknown: int,
    ) -> None:
        super().__init__(aliases)
        self._resolve = resolve
        self._by_user = by_user
        self._unknown = unknown

    def __missing__(self, name: str) -> int:
        user = self._resolve(name)
        return self._unknown if user is None else self._by_user[user.id]


@dataclass(eq=False)
class Snapshot:
    """A versioned policy compiled for `decide`: the policy, directory and inventory of one
    version, reduced to scope classes, time segments and plans.

    **Immutable** — every field up to `class_by_user` is fixed at compile time and never
    changed: the policy, directory and inventory, the compiled rules and exceptions, the
    segment breakpoints (`breaks`, `class_breaks`), the scope `classes`, `name_class` (the
    user lookup) and the `identifier`. Readers may rely on them for the life of the snapshot.

    **Caches** — the other attributes. Each entry is a pure function of the immutable part
    and its key, so an entry may be dropped at any time and is computed again, identically,
    when next needed; they belong to this version and die with it. Four are documented for
    `devicegate.policy.engine.decide`, which reads and fills them on its hot path (a method
    call per request would cost more than the lookup itself):

    * `plan_ids`: (class, resource, segment of `class_breaks[class]`) → plan id; filled by
      `plan`, the only writer;
    * `front_cache`: (class, resource, segment, signals' cache key, device state) → the
      decision of a request identified by its signals;
    * `decision_cache`: (plan, id of the device profile, resource, device state) → the
      decision (the profile is checked with `is`: an id may be reused);
    * `template_cache`: (plan, device class, resource, device state) → the decision
      template, before the request's own device is put in.

    `trim_caches` bounds them; the private ones (interned plans and device classes, resolved
    names) are this class's own."""

    loaded: LoadedPolicy
    directory: Directory
    inventory: Inventory
    version: str
    timezone: ZoneInfo
    rules: tuple[CompiledRule, ...]
    exceptions: tuple[CompiledException, ...]
    resources: frozenset[str]
    defaults: dict[str, Action]
    unknown_user: Action
    compromised_message: str
    breaks: tuple[float, ...]
    class_breaks: tuple[tuple[float, ...], ...]
    classes: tuple[ScopeClass, ...]
    #: a directory alias → scope class; the lookup `name_class` is built from it
    alias_class: dict[str, int]
    identifier: Identifier
    conditions: tuple[tuple[str, CompiledCondition], ...] = ()
    device_only_exceptions: tuple[int, ...] = ()  # name a device, not a user: every plan
    device_bound_exceptions: tuple[int, ...] = ()  # name a device: checked per device class
    rules_by_id: dict[str, CompiledRule] = field(default_factory=dict)
    #: case-folded domain → alias template (`directory.names`)
    login_domains: dict[str, str] = field(default_factory=dict)
    #: a directory user's id → scope class
    class_by_user: dict[str, int] = field(default_factory=dict)
    #: the versions of the directory and inventory compiled in ("" when none was named)
    directory_version: str = ""
    inventory_version: str = ""
    cache_limit: int = 1_000_000
    #: presented name → scope class (`class_of`); set from `alias_class` on construction
    name_class: NameClasses = field(init=False, repr=False)
    # Caches (see the class docstring): derived from the immutable part, bounded by
    # `trim_caches`. The first four are `decide`'s.
    plan_ids: dict[tuple[int, str, int], int] = field(default_factory=dict)
    front_cache: dict[object, Decision] = field(default_factory=dict)
    decision_cache: dict[object, Decision] = field(default_factory=dict)
    template_cache: dict[object, Decision] = field(default_factory=dict)
    _plans: list[Plan] = field(default_factory=list)
    _plan_index: dict[Plan, int] = field(default_factory=dict)
    _class_of: dict[object, tuple[DeviceProfile, DeviceState, int]] = field(default_factory=dict)
    _device_classes: list[DeviceClass] = field(default_factory=list)
    _device_class_index: dict[DeviceClass, int] = field(default_factory=dict)
    # presented name → (the directory user, the canonical name): `resolve_user`, `canonical_user`
    _names: BoundedCache[str, tuple[User | None, str]] = field(
        default_factory=lambda: BoundedCache(100_000)
    )

    def __post_init__(self) -> None:
        self.name_class = NameClasses(
            self.alias_class, self.resolve_user, self.class_by_user, len(self.classes) - 1
        )

    def trim_caches(self) -> None:
        """Bound memory: when a cache is full, start the per-request caches afresh."""
        if len(self.front_cache) + len(self.decision_cache) >= self.cache_limit:
            self.front_cache.clear()
            self.decision_cache.clear()
            self._class_of.clear()
        if len(self.template_cache) >= self.cache_limit:
            self.template_cache.clear()

    def device_class(self, profile: DeviceProfile, state: DeviceState) -> int:
        """Devices the policy cannot tell apart share a class: same outcome (and note) for
        every distinct condition, same device exceptions, same spoofing flag."""
        key = (id(profile), state)
        found = self._class_of.get(key)
        if found is not None and found[0] is profile:
            return found[2]
        outcomes = []
        for kind, condition in self.conditions:
            match = match_deny if kind == "when" else match_only
            outcomes.append(match(condition, profile, state, detail=False))
        exceptions: tuple[int, ...] = ()
        if self.device_bound_exceptions:
            keys = device_keys(profile.keys, (profile.device_id,))
            exceptions = tuple(
                i for i in self.device_bound_exceptions if self.exceptions[i].matches_device(keys)
            )
        vector = DeviceClass(tuple(outcomes), exceptions, profile.spoofing_suspected)
        index = self._device_class_index.setdefault(vector, len(self._device_classes))
        if index == len(self._device_classes):
            self._device_classes.append(vector)
        self._class_of[key] = (profile, state, index)
        return index

    def device_class_at(self, index: int) -> DeviceClass:
        return self._device_classes[index]

    @property
    def unknown_class(self) -> int:
        return len(self.classes) - 1

    def segment(self, ts: float) -> int:
        """The policy-wide time segment of `ts` (nothing in the policy changes inside one)."""
        return bisect_right(self.breaks, ts)

    def class_of(self, user: str) -> int:
        """The scope class of a presented user name as `decide` resolves it: an exact alias,
        else the one directory user the name stands for (`resolve_user`), else the class of
        users the directory does not know. The same lookup as `name_class[user]`, which
        `decide` uses."""
        return self.name_class[user]

    def resolve_user(self, name: str) -> User | None:
        """The directory user a presented name stands for — normalised, `DOMAIN\\login` and
        `login@DOMAIN` through `login_domains` — or None: no user, or more than one
        (`devicegate.directory.names`). Cached per name."""
        found = self._names.get(name)
        return (found if found is not None else self._name(name))[0]

    def canonical_user(self, name: str) -> str:
        """The name decisions and sightings record: the directory user's id, or for a user
        the directory does not know, the normalised name (so every form of one unknown name
        still meets in the log)."""
        found = self._names.get(name)  # asked on every request of the mail paths
        return (found if found is not None else self._name(name))[1]

    def _name(self, name: str) -> tuple[User | None, str]:
        return self._names.put(name, self.read_name(name))

    def read_name(self, name: str) -> tuple[User | None, str]:
        """`resolve_user` and `canonical_user` of `name`, worked out afresh and not cached:
        for a caller that asks once about each of many names (the audit), which a bounded
        cache would only churn."""
        user = self.directory.resolve(name, self.login_domains)
        return user, user.id if user is not None else normalise_name(name)

    def message_of(self, rule: str) -> str | None:
        """The message the policy gives for a rule id (built-in ones included); None for an
        id the policy does not have."""
        compiled = self.rules_by_id.get(rule)
        if compiled is not None:
            return compiled.message
        return self.builtin_messages.get(rule)

    @property
    def builtin_messages(self) -> dict[str, str]:
        from devicegate.policy.engine import BUILTIN_MESSAGES

        return {**BUILTIN_MESSAGES, "builtin:compromised": self.compromised_message}

    def valid_until(self, user: str, ts: float) -> float:
        """The next moment after `ts` at which anything in the policy changes for `user`
        (a rule's notice, start or end, an exception's start or expiry); `inf` if none.

        A decision made at `ts` stays the same until then, all other inputs equal — what lets
        a server replay it instead of deciding again."""
        breaks = self.class_breaks[self.class_of(user)]
        index = bisect_right(breaks, ts)
        return breaks[index] if index < len(breaks) else math.inf

    def valid_from(self, user: str, ts: float) -> float:
        """The moment at or before `ts` from which the policy has been the same for `user`
        (`-inf` if it always was): with `valid_until`, the segment a decision holds for. A
        wall clock stepped back before it leaves the segment as surely as one moving past
        its end."""
        breaks = self.class_breaks[self.class_of(user)]
        index = bisect_right(breaks, ts)
        return breaks[index - 1] if index > 0 else -math.inf

    def plan(self, cls: int, resource: str, ts: float) -> int:
        """Plan id for (class, resource, time): computed once per segment, then looked up.

        A plan names the plans of the later moments it announces, so those are built first
        — from an explicit stack, not by recursion: a policy may chain many announcements
        (each wave in notice when the one before it starts)."""
        breaks = self.class_breaks[cls]
        found = self.plan_ids.get((cls, resource, bisect_right(breaks, ts)))
        if found is not None:
            return found
        todo = [ts]
        while todo:
            moment = todo[-1]
            key = (cls, resource, bisect_right(breaks, moment))
            if key in self.plan_ids:
                todo.pop()
                continue
            shape = self._shape(cls, resource, moment)
            later = [
                t
                for t in shape.later()
                if (cls, resource, bisect_right(breaks, t)) not in self.plan_ids
            ]
            if later:
                todo.extend(later)
                continue
            todo.pop()
            plan = shape.plan(lambda t: self.plan_ids[(cls, resource, bisect_right(breaks, t))])
            plan_id = self._plan_index.setdefault(plan, len(self._plans))
            if plan_id == len(self._plans):
                self._plans.append(plan)
            self.plan_ids[key] = plan_id
        return self.plan_ids[(cls, resource, bisect_right(breaks, ts))]

    def _shape(self, cls: int, resource: str, ts: float) -> _Shape:
        """What applies to (class, resource) at `ts`, with the later moments it announces."""
        scope = self.classes[cls]
        entries = []
        ahead: list[float | None] = []
        for index, depth in scope.rules:
            rule = self.rules[index]
            phase = rule.phase(ts)
            if phase is not None and rule.covers(resource):
                entries.append((index, depth, phase))
                announces = phase == NOTICE and not rule.report_only
                ahead.append(rule.start if announces and rule.effect is not Action.ALLOW else None)
        exceptions = tuple(
            i
            for i in (*scope.exceptions, *self.device_only_exceptions)
            if self.exceptions[i].active(ts)
        )
        present = {self.rules[index].id for index, _, _ in entries}
        closing = tuple(
            (i, rule_id, self.exceptions[i].end)
            for i in exceptions
            for rule_id, opens in self.exceptions[i].closing
            if opens <= ts and rule_id in present
        )
        default = self.defaults.get(resource, Action.ALLOW)
        return _Shape(tuple(entries), exceptions, default, scope.known, tuple(ahead), closing)

    def plan_at(self, plan_id: int) -> Plan:
        return self._plans[plan_id]

    def summary(self) -> dict[str, object]:
        return {
            "policy_version": self.version,
            "files": list(self.loaded.files),
            "rules": len(self.rules),
            "exceptions": len(self.exceptions),
            "users": len(self.directory),
            "scope_classes": len(self.classes) - 1,
            "inventory_devices": len(self.inventory),
            "directory_problems": len(self.directory.problems),
        }


def _instant(value: object, tz: str) -> datetime:
    assert isinstance(value, datetime) or hasattr(value, "year")
    return to_instant(value, tz)  # type: ignore[arg-type]


def _until(value: object, tz: str) -> datetime:
    assert isinstance(value, datetime) or hasattr(value, "year")
    return until_instant(value, tz)  # type: ignore[arg-type]


def _closing(
    exc: PolicyException, until_at: datetime, rules: dict[str, CompiledRule]
) -> tuple[tuple[str, float], ...]:
    """Where the last days of an exception begin, per lifted rule that will restrict again.

    Wall-clock arithmetic on the aware `until_at`, as for a rule's notice: the start stays a
    local midnight across a change of daylight saving time."""
    own = parse_duration(exc.notice) if exc.notice else None
    out = []
    for rule_id in exc.rules:
        rule = rules.get(rule_id)
        if rule is None or rule.report_only or rule.effect is Action.ALLOW:
            continue
        notice = own if own is not None else rule.notice
        if notice > timedelta(0):
            out.append((rule_id, (until_at - notice).timestamp()))
    return tuple(out)


class _Conditions:
    """Distinct device conditions of a policy: devices are classed by their outcomes."""

    def __init__(self) -> None:
        self.items: list[tuple[str, CompiledCondition]] = []
        self._index: dict[str, int] = {}

    def add(
        self, kind: str, condition: DeviceCondition | None
    ) -> tuple[int, CompiledCondition | None]:
        if condition is None:
            return -1, None
        key = kind + condition.model_dump_json()
        if key not in self._index:
            self._index[key] = len(self.items)
            self.items.append((kind, CompiledCondition.build(condition)))
        index = self._index[key]
        return index, self.items[index][1]


def _compile_rule(
    index: int, rule: Rule, policy_tz: str, source: str, conditions: _Conditions
) -> CompiledRule:
    tz = rule.timezone or policy_tz
    start_at = _instant(rule.from_, tz)
    until_at = _until(rule.until, tz) if rule.until is not None else None
    notice = parse_duration(rule.notice) if rule.notice else timedelta(0)
    effect = Action(rule.effect)
    if rule.on_unidentified is not None:
        on_unidentified: Action | None = (
            None if rule.on_unidentified == "allow" else Action(rule.on_unidentified)
        )
    else:
        # An allow-list cannot approve what it cannot see: unknown devices get the effect.
        on_unidentified = effect if rule.only is not None and effect is not Action.ALLOW else None
    when_index, when = conditions.add("when", rule.when)
    only_index, only = conditions.add("only", rule.only)
    return CompiledRule(
        index=index,
        id=rule.id,
        description=rule.description,
        effect=effect,
        report_only=rule.mode == "report-only",
        resources=None if ALL_RESOURCES in rule.resources else frozenset(rule.resources),
        notice_start=(start_at - notice).timestamp(),
        start=start_at.timestamp(),
        end=until_at.timestamp() if until_at else math.inf,
        start_at=start_at,
        until_at=until_at,
        notice=notice,
        message=rule.message or rule.description or f"blocked by rule {rule.id}",
        on_unidentified=on_unidentified,
        when=when,
        only=only,
        when_index=when_index,
        only_index=only_index,
        units=tuple(rule.scope.units),
        groups=frozenset(rule.scope.groups),
        users=frozenset(normalise_name(u) for u in rule.scope.users),
        exclude_units=tuple(rule.scope.exclude.units),
        exclude_groups=frozenset(rule.scope.exclude.groups),
        exclude_users=frozenset(normalise_name(u) for u in rule.scope.exclude.users),
        source=source,
    )


def compile_policy(
    loaded: LoadedPolicy,
    directory: Directory = EMPTY_DIRECTORY,
    inventory: Inventory = EMPTY_INVENTORY,
    *,
    identifier: Identifier | None = None,
    directory_version: str = "",
    inventory_version: str = "",
) -> Snapshot:
    """Compile; the versions name the directory and inventory this snapshot decides with
    (`sources.inputs.Inputs` sets them; every decision records them)."""
    policy = loaded.policy
    conditions = _Conditions()
    rules = tuple(
        _compile_rule(i, rule, policy.timezone, "{}:{}".format(*loaded.where_rule(i)), conditions)
        for i, rule in enumerate(policy.rules)
    )
    by_id = {rule.id: rule for rule in rules}
    exceptions = []
    for i, exc in enumerate(policy.exceptions):
        until_at = until_instant(exc.until, policy.timezone)
        exceptions.append(
            CompiledException(
                index=i,
                user=normalise_name(exc.user) if exc.user else None,
                device=_device_key(exc.device) if exc.device else None,
                device_forms=device_forms(exc.device) if exc.device else frozenset(),
                rules=frozenset(exc.rules),
                start=to_instant(exc.from_, policy.timezone).timestamp()
                if exc.from_
                else -math.inf,
                end=until_at.timestamp(),
                until_at=until_at,
                until_text=exc.until.isoformat(sep=" ", timespec="minutes")
                if isinstance(exc.until, datetime)
                else exc.until.isoformat(),
                whole_day=not isinstance(exc.until, datetime),
                reason=exc.reason,
                approver=exc.approver,
                closing=_closing(exc, until_at, by_id),
            )
        )
    breaks = sorted(
        {t for r in rules for t in (r.notice_start, r.start, r.end) if math.isfinite(t)}
        | {t for e in exceptions for t in _moments(e) if math.isfinite(t)}
    )
    named_users = {u for r in rules for u in (*r.users, *r.exclude_users)}
    excepted_users: dict[str, list[int]] = {}
    for exc_c in exceptions:
        if exc_c.user:
            excepted_users.setdefault(exc_c.user, []).append(exc_c.index)
    known = unit_closure(policy.units) if policy.units else None
    if known is not None:
        directory = directory.with_known_units(known)

    classes: list[ScopeClass] = []
    class_index: dict[ScopeClass, int] = {}
    by_base: dict[tuple[str, frozenset[str]], ScopeClass] = {}
    alias_class: dict[str, int] = {}
    class_by_user: dict[str, int] = {}
    for user in directory.users:
        names = {normalise_name(alias) for alias in user.aliases()} - directory.shared_aliases
        personal = bool(names & named_users) or bool(names & excepted_users.keys())
        base = (user.unit, user.groups)
        scope = None if personal else by_base.get(base)
        if scope is None:
            in_scope = []
            for rule in rules:
                depth = rule.scope_depth(user)
                if depth is not None:
                    in_scope.append((rule.index, depth))
            own = tuple(i for name in sorted(names) for i in excepted_users.get(name, ()))
            scope = ScopeClass(tuple(in_scope), own)
            if not personal:
                by_base[base] = scope
        cls = class_index.setdefault(scope, len(classes))
        if cls == len(classes):
            classes.append(scope)
        class_by_user[user.id] = cls
        for name in names:
            alias_class.setdefault(name, cls)
    if policy.login_domains:
        # An alias that reads as `login@DOMAIN` of a mapped domain stands for what the map
        # says, not only for itself: leave it to `resolve_user` (the one authority), so that
        # `class_of` and `canonical_user` never disagree about such a name.
        domains = {domain.casefold() for domain in policy.login_domains}
        for name in [n for n in alias_class if n.rpartition("@")[2] in domains]:
            del alias_class[name]
    classes.append(ScopeClass((), (), known=False))  # the unknown user's class, always last
    device_only = [e.index for e in exceptions if e.user is None]
    class_breaks = []
    for scope in classes:
        moments = {
            t for i, _ in scope.rules for t in (rules[i].notice_start, rules[i].start, rules[i].end)
        }
        moments |= {t for i in (*scope.exceptions, *device_only) for t in _moments(exceptions[i])}
        class_breaks.append(tuple(sorted(t for t in moments if math.isfinite(t))))

    resources = known_resources(loaded)
    defaults = {name: Action(spec.default) for name, spec in policy.resources.items()}
    snapshot = Snapshot(
        loaded=loaded,
        directory=directory,
        inventory=inventory,
        version=loaded.version,
        timezone=ZoneInfo(policy.timezone),
        rules=rules,
        exceptions=tuple(exceptions),
        resources=frozenset(resources),
        defaults=defaults,
        unknown_user=Action(policy.unknown_user),
        compromised_message=policy.compromised_message,
        breaks=tuple(breaks),
        class_breaks=tuple(class_breaks),
        classes=tuple(classes),
        alias_class=alias_class,
        identifier=identifier or Identifier(inventory),
        conditions=tuple(conditions.items),
        device_only_exceptions=tuple(device_only),
        device_bound_exceptions=tuple(e.index for e in exceptions if e.device is not None),
        login_domains=dict(policy.login_domains),
        class_by_user=class_by_user,
        directory_version=directory_version,
        inventory_version=inventory_version,
    )
    snapshot.rules_by_id.update(by_id)
    return snapshot


def _moments(exc: CompiledException) -> tuple[float, ...]:
    """Where anything about an exception changes: its start, its last days, its end."""
    return (exc.start, exc.end, *(opens for _, opens in exc.closing))


def _device_key(text: str) -> str:
    return text.strip().lower()


def device_keys(
    values: tuple[tuple[str, str], ...], extra: tuple[str | None, ...] = ()
) -> frozenset[str]:
    """Every identifier of a device, lower-cased, for matching device exceptions."""
    out = {_device_key(value) for _, value in values}
    out |= {_device_key(normalise_key("mac", v)) for k, v in values if k == "mac"}
    out |= {_device_key(v) for v in extra if v}
    return frozenset(out)
