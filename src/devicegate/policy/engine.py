"""`decide(snapshot, request, state) -> Decision`: the one place where decisions are made.

The combining rule, in order (docs/semantics.md; one test per row):

1. a compromised device is quarantined for every resource; no exception lifts it;
   a device an operator holds in quarantine stays quarantined until released;
2. a rule applies when the user is in scope, the resource is listed, the time is inside the
   window and the device matches;
3. before `from`, within `notice`, a matching rule yields `warn` naming the date — but only
   when the same request, at the moment the rule takes force, would get that rule's effect,
   and never when a rule in force decides (or the resource's default refuses); an exception
   in its last days warns likewise, naming its end;
4. an active exception removes the rules it names for that user or device;
5. among enforce-mode rules the deepest scope wins; at equal depth the most severe effect;
6. report-only rules never change the action; they are recorded as "would have" hits;
7. a condition the signals cannot evaluate yields the rule's `on_unidentified`;
8. conflicting signals: deny conditions match on any credible signal, allow-lists need all;
   the conflict is recorded as a spoofing suspicion;
9. otherwise the resource's default (allow unless the policy says otherwise).

`decide` is pure: its result depends only on (snapshot, request, state). How it stays fast:

* the snapshot reduces the user to a scope class and the time to a segment, and (class,
  resource, segment) to an interned *plan* — the rules that can apply;
* the device profile is reduced to a *device class*: its outcome on every distinct condition
  of the policy; devices the policy cannot tell apart share one;
* the full evaluation runs once per (plan, device class, resource, state) and yields a
  template; a decision is that template with the request's own device profile put in. An
  announcement (rule 3) is checked against the template of the plan of the announced moment
  for the same device class, so it too is decided once per template, never per request;
* a front cache answers a repeated (class, resource, segment, signals, state) directly.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime

from devicegate.model import (
    NO_STATE,
    SEVERITY,
    UNIDENTIFIED,
    Action,
    Decision,
    DeviceProfile,
    DeviceState,
    Request,
    RuleHit,
)
from devicegate.policy.compile import NOTICE, CompiledException, CompiledRule, Snapshot
from devicegate.policy.conditions import Tri, match_deny, match_only, tri_and

COMPROMISED_RULE = "builtin:compromised"
HELD_RULE = "builtin:quarantine-hold"
UNKNOWN_USER_RULE = "builtin:unknown-user"
HELD_MESSAGE = "This device is quarantined. Contact the IT service desk to release it."
UNKNOWN_USER_MESSAGE = "Your account is not known to the device policy."
#: messages of the built-in rules that do not come from the policy (`builtin:compromised`
#: takes the policy's `compromised_message`)
BUILTIN_MESSAGES = {HELD_RULE: HELD_MESSAGE, UNKNOWN_USER_RULE: UNKNOWN_USER_MESSAGE}


def decide(snapshot: Snapshot, request: Request, state: DeviceState = NO_STATE) -> Decision:
    """Decide one request. A repeated request costs one tuple and one dict lookup.

    The snapshot's immutable part is read, its documented caches (`plan_ids`,
    `front_cache`, `decision_cache`, `template_cache`) read and filled — see `Snapshot`."""
    cls = snapshot.name_class[request.user]  # `snapshot.class_of`, as one dict lookup
    ts = request.at.timestamp()
    segment = bisect_right(snapshot.class_breaks[cls], ts)
    resource = request.resource
    state_key = None if state is NO_STATE else state
    profile = request.profile
    front_key = None
    if profile is None:
        front_key = (cls, resource, segment, request.signals.cache_key, state_key)
        found = snapshot.front_cache.get(front_key)
        if found is not None:
            return found
        profile = snapshot.identifier.profile(request.signals)
    plan_id = snapshot.plan_ids.get((cls, resource, segment))
    if plan_id is None:
        plan_id = snapshot.plan(cls, resource, ts)
    key = (plan_id, id(profile), resource, state_key)
    decision = snapshot.decision_cache.get(key)
    if decision is None or decision.device is not profile:
        snapshot.trim_caches()
        device_class = snapshot.device_class(profile, state)
        template = _template(snapshot, plan_id, device_class, resource, state)
        decision = _materialise(template, profile)
        snapshot.decision_cache[key] = decision
    if front_key is not None:
        snapshot.front_cache[front_key] = decision
    return decision


def _template(
    snapshot: Snapshot, plan_id: int, device_class: int, resource: str, state: DeviceState
) -> Decision:
    """The decision template of (plan, device class, resource, state), evaluated once."""
    key = (plan_id, device_class, resource, None if state is NO_STATE else state)
    template = snapshot.template_cache.get(key)
    if template is None:
        template = evaluate(snapshot, plan_id, device_class, resource, state)
        snapshot.template_cache[key] = template
    return template


def _materialise(t: Decision, profile: DeviceProfile) -> Decision:
    """The template decision for this device's class, with this device in it."""
    reasons = t.reasons
    if profile.conflicts:
        claims = "; ".join(
            f"{c.attribute}: " + ", ".join(f"{sig}={val}" for sig, val in c.claims)
            for c in profile.conflicts
        )
        reasons = (f"signals conflict (spoofing suspected): {claims}", *reasons)
    # The constructor directly: dataclasses.replace costs several times more.
    return Decision(
        t.action,
        t.rule,
        t.message,
        reasons,
        profile,
        t.policy_version,
        t.matched,
        t.report_only,
        t.excepted,
        t.effective_from,
        t.spoofing_suspected,
    )


def _combine(
    rule: CompiledRule, when: tuple[Tri, str] | None, only: tuple[Tri, str] | None
) -> tuple[Action | None, str]:
    """The action a rule asks for given its condition outcomes (None: it does not apply)."""
    result, why = Tri.MATCH, []
    if when is not None:
        result = tri_and(result, when[0])
        why.append(when[1])
    if only is not None and result is not Tri.NO:
        result = tri_and(result, only[0])
        why.append(only[1])
    reason = "; ".join(w for w in why if w)
    if result is Tri.NO:
        return None, reason
    if result is Tri.UNKNOWN:
        if rule.on_unidentified is None:
            return None, f"{reason}; on_unidentified: allow"
        return rule.on_unidentified, f"{reason}; on_unidentified: {rule.on_unidentified.value}"
    return rule.effect, reason


def _rule_action(
    rule: CompiledRule, profile: DeviceProfile, state: DeviceState
) -> tuple[Action | None, str]:
    """As `_combine`, evaluating the conditions on one profile with full detail (explain)."""
    when = match_deny(rule.when, profile, state) if rule.when is not None else None
    only = match_only(rule.only, profile, state) if rule.only is not None else None
    return _combine(rule, when, only)


@dataclass(frozen=True, slots=True)
class _Announcement:
    """A change a warning may announce: `rule` takes force at `when` (its `from`, or the end
    of `exception`, which lifts it until then). `then` is the plan of that moment."""

    rule: CompiledRule
    depth: int
    action: Action  # what the rule asks for this device
    why: str
    then: int
    when: datetime
    exception: CompiledException | None


def evaluate(
    snapshot: Snapshot,
    plan_id: int,
    device_class: int,
    resource: str,
    state: DeviceState,
) -> Decision:
    """The full evaluation for one plan and one device class, with its reason chain.

    Returns a template: its `device` is a placeholder that `decide` fills in."""
    plan = snapshot.plan_at(plan_id)
    device = snapshot.device_class_at(device_class)
    reasons: list[str] = []
    version = snapshot.version
    spoofing = device.spoofing
    if state.compromised:
        reasons.append(
            f"device is marked compromised ({state.verdict or 'triage verdict'}): quarantined for "
            "every resource; no exception lifts this"
        )
        return Decision(
            Action.QUARANTINE,
            COMPROMISED_RULE,
            snapshot.compromised_message,
            tuple(reasons),
            UNIDENTIFIED,
            version,
            spoofing_suspected=spoofing,
        )
    if "*" in state.held or resource in state.held:
        reasons.append("device is held in quarantine until an operator releases it")
        return Decision(
            Action.QUARANTINE,
            HELD_RULE,
            HELD_MESSAGE,
            tuple(reasons),
            UNIDENTIFIED,
            version,
            spoofing_suspected=spoofing,
        )
    if not plan.known_user:
        unknown = snapshot.unknown_user
        reasons.append(f"user is not in the directory: policy `unknown_user` is {unknown.value}")
        message = "" if unknown is Action.ALLOW else UNKNOWN_USER_MESSAGE
        return Decision(
            unknown,
            UNKNOWN_USER_RULE,
            message,
            tuple(reasons),
            UNIDENTIFIED,
            version,
            spoofing_suspected=spoofing,
        )

    # Each lifted rule is lifted until the latest end among the exceptions that lift it.
    lifted: dict[str, CompiledException] = {}
    for index in plan.exceptions:
        active = snapshot.exceptions[index]
        if active.device is None or index in device.device_exceptions:
            for rule_id in active.rules:
                held = lifted.get(rule_id)
                if held is None or active.end > held.end:
                    lifted[rule_id] = active
    ending = {(index, rule_id): then for index, rule_id, then in plan.closing}
    hits: list[RuleHit] = []
    pending: list[_Announcement] = []
    report_only: list[RuleHit] = []
    excepted: list[str] = []
    outcomes = device.outcomes
    for (index, depth, phase), ahead in zip(plan.entries, plan.ahead, strict=True):
        rule = snapshot.rules[index]
        action, why = _combine(
            rule,
            outcomes[rule.when_index] if rule.when_index >= 0 else None,
            outcomes[rule.only_index] if rule.only_index >= 0 else None,
        )
        if action is None:
            continue
        if phase == NOTICE and (rule.effect is Action.ALLOW or action is Action.ALLOW):
            continue
        exc = lifted.get(rule.id)
        if exc is not None:
            excepted.append(rule.id)
            reasons.append(f"rule `{rule.id}` would apply ({why}) but is lifted by {_by(exc)}")
            then = ending.get((exc.index, rule.id))
            if then is not None and action is not Action.ALLOW:
                pending.append(_Announcement(rule, depth, action, why, then, exc.until_at, exc))
            continue
        if phase == NOTICE and not rule.report_only:
            pending.append(_Announcement(rule, depth, action, why, ahead, rule.start_at, None))
            continue
        if phase == NOTICE:
            why = f"{why}; in notice period: {rule.effect.value} from {rule.start_at.date()}"
            action = Action.WARN
        hit = RuleHit(rule.id, action, "report-only" if rule.report_only else "enforce", depth, why)
        if rule.report_only:
            report_only.append(hit)
            reasons.append(f"report-only rule `{rule.id}` would {action.value}: {why}")
        else:
            hits.append(hit)
            reasons.append(f"rule `{rule.id}` (depth {depth}) asks {action.value}: {why}")
    announced = _announce(snapshot, plan.default, resource, device_class, state, hits, pending)
    for line in announced[1]:
        reasons.append(line)
    announcing = not hits and bool(announced[0])
    if announcing:
        hits = [hit for hit, _ in announced[0]]
    if not hits:
        default = plan.default
        reasons.append(f"no enforce-mode rule applies: default for `{resource}` is {default.value}")
        message = (
            "" if default is Action.ALLOW else f"{resource} is not available from this device."
        )
        return Decision(
            default,
            None,
            message,
            tuple(reasons),
            UNIDENTIFIED,
            version,
            report_only=tuple(report_only),
            excepted=tuple(excepted),
            spoofing_suspected=spoofing,
        )
    hits.sort(key=lambda h: (h.depth, SEVERITY[h.action]), reverse=True)
    winner = hits[0]
    rule = snapshot.rules_by_id[winner.rule]
    if len(hits) > 1:
        reasons.append(
            f"`{winner.rule}` wins: "
            + ("deepest scope" if winner.depth > hits[1].depth else "most severe at equal depth")
        )
    message = ""
    effective_from = None
    if winner.action is not Action.ALLOW:
        message = rule.message
        if announcing:
            change = next(a for hit, a in announced[0] if hit is winner)
            message = _announcement_text(change)
            effective_from = change.when
    return Decision(
        winner.action,
        winner.rule,
        message,
        tuple(reasons),
        UNIDENTIFIED,
        version,
        matched=tuple(hits),
        report_only=tuple(report_only),
        excepted=tuple(excepted),
        effective_from=effective_from,
        spoofing_suspected=spoofing,
    )


def _by(exc: CompiledException) -> str:
    approved = f", approved by {exc.approver}" if exc.approver else ""
    return f"exception until {exc.until_text} ({exc.reason}{approved})"


def _announce(
    snapshot: Snapshot,
    default: Action,
    resource: str,
    device_class: int,
    state: DeviceState,
    hits: list[RuleHit],
    pending: list[_Announcement],
) -> tuple[list[tuple[RuleHit, _Announcement]], list[str]]:
    """Rule 3: the announcements that hold, as `warn` hits, and the reasons for each.

    An announcement holds only when no rule in force decides, the resource's default does
    not refuse the request already (a warning lets it through), and the same request gets
    the announced rule's action at the announced moment — which is the template of that
    moment's plan for this device class, evaluated (and cached) like any other."""
    if not pending:
        return [], []
    if hits or SEVERITY[default] > SEVERITY[Action.WARN]:
        stands = "a rule in force decides" if hits else f"the default ({default.value}) stands"
        return [], [f"rule `{a.rule.id}` announces a change, but {stands}" for a in pending]
    held: list[tuple[RuleHit, _Announcement]] = []
    reasons = []
    for a in pending:
        then = _template(snapshot, a.then, device_class, resource, state)
        day = a.when.date()
        if then.action is not a.action:
            by = f"rule `{then.rule}`" if then.rule else "the default"
            reasons.append(
                f"rule `{a.rule.id}` would {a.action.value} from {day}, but then this request "
                f"gets {then.action.value} ({by}): no warning"
            )
            continue
        if a.exception is None:
            why = f"{a.why}; in notice period: {a.action.value} from {day}"
        else:
            why = f"{a.why}; {_by(a.exception)} ends: {a.action.value} from {a.when:%Y-%m-%d %H:%M}"
        held.append((RuleHit(a.rule.id, Action.WARN, "enforce", a.depth, why), a))
        reasons.append(f"rule `{a.rule.id}` announces: {why}")
    return held, reasons


def _announcement_text(a: _Announcement) -> str:
    """The user-facing warning: the date the change happens, then the rule's message."""
    if a.exception is None:
        return f"From {a.rule.start_at.date()}: {a.rule.message}"
    exc = a.exception
    if exc.whole_day:
        return (
            f"Your exception to this rule expires at the end of {exc.until_text}; "
            f"from {exc.until_at.date()}: {a.rule.message}"
        )
    return f"Your exception to this rule expires at {exc.until_text}: {a.rule.message}"


def explain(snapshot: Snapshot, request: Request, state: DeviceState = NO_STATE) -> list[str]:
    """The decision's reason chain, preceded by why every other rule did not apply."""
    lines: list[str] = []
    user = snapshot.resolve_user(request.user)
    if user is None:
        lines.append(f"user `{request.user}` is not in the directory")
    else:
        groups = ", ".join(sorted(user.groups)) or "none"
        lines.append(f"user `{user.id}` in unit `{user.unit}` (groups: {groups})")
    profile = request.profile or snapshot.identifier.profile(request.signals)
    described = (
        ", ".join(
            f"{k}={getattr(profile, k)}"
            for k in ("vendor", "platform", "model", "os_version")
            if getattr(profile, k)
        )
        or "unidentified"
    )
    lines.append(f"device: {described} (trust: {profile.trust.value if profile.trust else 'none'})")
    for ev in profile.evidence:
        says = ", ".join(f"{k}={v}" for k, v in ev.says) or "nothing"
        note = f" — {ev.note}" if ev.note else ""
        lines.append(f"  evidence [{ev.trust.value}] {ev.signal} via {ev.source}: {says}{note}")
    ts = request.at.timestamp()
    for rule in snapshot.rules:
        depth = rule.scope_depth(user) if user else None
        if depth is None:
            lines.append(f"rule `{rule.id}`: user not in scope")
        elif not rule.covers(request.resource):
            lines.append(f"rule `{rule.id}`: resource `{request.resource}` not covered")
        elif rule.phase(ts) is None:
            when = (
                f"from {rule.start_at.isoformat()}"
                if ts < rule.notice_start
                else f"ended {rule.until_at.isoformat() if rule.until_at else ''}"
            )
            lines.append(f"rule `{rule.id}`: not in effect at this time ({when})")
        else:
            action, why = _rule_action(rule, profile, state)
            if action is None:
                lines.append(f"rule `{rule.id}`: device does not match ({why})")
    decision = decide(snapshot, request, state)
    lines.extend(decision.reasons)
    lines.append(
        f"decision: {decision.action.value}"
        + (f" by rule `{decision.rule}`" if decision.rule else " (default)")
        + f" — policy {decision.policy_version}"
    )
    return lines
