"""`decide(snapshot, request, state) -> Decision`: the one place where decisions are made.

The combining rule, in order (docs/semantics.md; one test per row):

1. a compromised device is quarantined for every resource; no exception lifts it;
   a device an operator holds in quarantine stays quarantined until released;
2. a rule applies when the user is in scope, the resource is listed, the time is inside the
   window and the device matches;
3. before `from`, within `notice`, a matching rule yields `warn` naming the date — but only
   when no rule already in force decides (an announcement never softens a ban in force);
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
  template; a decision is that template with the request's own device profile put in;
* a front cache answers a repeated (class, resource, segment, signals, state) directly.
"""

from __future__ import annotations

from bisect import bisect_right

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
from devicegate.policy.compile import NOTICE, CompiledRule, DeviceClass, Plan, Snapshot
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
    """Decide one request. A repeated request costs one tuple and one dict lookup."""
    cls = snapshot.user_class.get(request.user)
    if cls is None:
        cls = snapshot.class_of(request.user)
    ts = request.at.timestamp()
    segment = bisect_right(snapshot.class_breaks[cls], ts)
    resource = request.resource
    state_key = None if state is NO_STATE else state
    profile = request.profile
    front_key = None
    if profile is None:
        front_key = (cls, resource, segment, request.signals.cache_key, state_key)
        found = snapshot._front.get(front_key)
        if found is not None:
            return found
        profile = snapshot.identifier.profile(request.signals)
    plan_id = snapshot._plan_ids.get((cls, resource, segment))
    if plan_id is None:
        plan_id = snapshot.plan(cls, resource, ts)
    key = (plan_id, id(profile), resource, state_key)
    decision = snapshot._decisions.get(key)
    if decision is None or decision.device is not profile:
        snapshot.trim_caches()
        device_class = snapshot.device_class(profile, state)
        template_key = (plan_id, device_class, resource, state_key)
        template = snapshot._templates.get(template_key)
        if template is None:
            template = evaluate(
                snapshot,
                snapshot.plan_at(plan_id),
                resource,
                snapshot.device_class_at(device_class),
                state,
            )
            snapshot._templates[template_key] = template
        decision = _materialise(template, profile)
        snapshot._decisions[key] = decision
    if front_key is not None:
        snapshot._front[front_key] = decision
    return decision


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


def evaluate(
    snapshot: Snapshot,
    plan: Plan,
    resource: str,
    device: DeviceClass,
    state: DeviceState,
) -> Decision:
    """The full evaluation for one plan and one device class, with its reason chain.

    Returns a template: its `device` is a placeholder that `decide` fills in."""
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

    lifted: dict[str, str] = {}
    for index in plan.exceptions:
        exc = snapshot.exceptions[index]
        if exc.device is None or index in device.device_exceptions:
            for rule_id in exc.rules:
                lifted.setdefault(
                    rule_id,
                    f"exception until {exc.until_at.date()} ({exc.reason}"
                    + (f", approved by {exc.approver}" if exc.approver else "")
                    + ")",
                )
    hits: list[RuleHit] = []
    notices: list[RuleHit] = []
    report_only: list[RuleHit] = []
    excepted: list[str] = []
    outcomes = device.outcomes
    for index, depth, phase in plan.entries:
        rule = snapshot.rules[index]
        action, why = _combine(
            rule,
            outcomes[rule.when_index] if rule.when_index >= 0 else None,
            outcomes[rule.only_index] if rule.only_index >= 0 else None,
        )
        if action is None:
            continue
        if phase == NOTICE:
            if rule.effect is Action.ALLOW or action is Action.ALLOW:
                continue
            why = f"{why}; in notice period: {rule.effect.value} from {rule.start_at.date()}"
            action = Action.WARN
        if rule.id in lifted:
            excepted.append(rule.id)
            reasons.append(
                f"rule `{rule.id}` would apply ({why}) but is lifted by {lifted[rule.id]}"
            )
            continue
        hit = RuleHit(rule.id, action, "report-only" if rule.report_only else "enforce", depth, why)
        if rule.report_only:
            report_only.append(hit)
            reasons.append(f"report-only rule `{rule.id}` would {action.value}: {why}")
        elif phase == NOTICE:
            notices.append(hit)
            reasons.append(f"rule `{rule.id}` announces: {why}")
        else:
            hits.append(hit)
            reasons.append(f"rule `{rule.id}` (depth {depth}) asks {action.value}: {why}")
    announcing = not hits and bool(notices)
    if announcing:
        # A rule in its notice period only warns when no rule in force decides: an
        # announcement must never soften a ban that already applies.
        hits, notices = notices, []
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
            message = f"From {rule.start_at.date()}: {rule.message}"
            effective_from = rule.start_at
    return Decision(
        winner.action,
        winner.rule,
        message,
        tuple(reasons),
        UNIDENTIFIED,
        version,
        matched=tuple(hits + notices),
        report_only=tuple(report_only),
        excepted=tuple(excepted),
        effective_from=effective_from,
        spoofing_suspected=spoofing,
    )


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
