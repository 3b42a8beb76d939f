"""Checks that need the whole policy: cross-references (errors) and lints (warnings, info).

The lints on what conditions name live beside this module: `vocabulary` (values
identification never reports, contradictions) and `references` (groups, users and devices
against the directory and the inventory).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from devicegate.directory import Directory
from devicegate.inventory import Inventory
from devicegate.policy.conditions import glob_problem
from devicegate.policy.diagnostics import Issue, Severity, did_you_mean
from devicegate.policy.load import LoadedPolicy, Located
from devicegate.policy.references import reference_issues
from devicegate.policy.schema import ALL_RESOURCES, BUILTIN_RESOURCES, DeviceCondition, Rule
from devicegate.policy.vocabulary import vocabulary_issues


def unit_closure(units: Iterable[str]) -> set[str]:
    """Every unit and all its ancestors (`gov/minfin` implies `gov`)."""
    out: set[str] = set()
    for unit in units:
        parts = unit.strip("/").split("/")
        for depth in range(1, len(parts) + 1):
            out.add("/".join(parts[:depth]))
    return out


def to_instant(value: date | datetime, tz: str) -> datetime:
    """A policy date/time as an aware datetime: a bare date is local midnight in `tz`."""
    zone = ZoneInfo(tz)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone)
    return datetime(value.year, value.month, value.day, tzinfo=zone)


def known_resources(loaded: LoadedPolicy) -> set[str]:
    return set(BUILTIN_RESOURCES) | set(loaded.policy.resources)


def cross_check(loaded: LoadedPolicy, known_units: Iterable[str] | None) -> list[Issue]:
    policy = loaded.policy
    issues: list[Issue] = []
    units = unit_closure([*policy.units, *(known_units or ())])
    resources = known_resources(loaded)
    rule_ids = [rule.id for rule in policy.rules]
    seen: set[str] = set()
    for index, rule in enumerate(policy.rules):
        origin = loaded.rule_origins[index]
        if rule.id in seen:
            issues.append(
                Issue(
                    Severity.ERROR,
                    origin.file,
                    origin.line("id"),
                    f"rules[{index}].id",
                    f"duplicate rule id `{rule.id}`",
                    "rule ids must be unique across files",
                    "duplicate-rule",
                )
            )
        seen.add(rule.id)
        if units:
            for field in ("units",):
                for pos, unit in enumerate(rule.scope.units):
                    if unit not in units:
                        issues.append(
                            _unknown_unit(
                                origin.file,
                                origin.line("scope", field, pos),
                                f"rules[{index}].scope.units[{pos}]",
                                unit,
                                units,
                            )
                        )
                for pos, unit in enumerate(rule.scope.exclude.units):
                    if unit not in units:
                        issues.append(
                            _unknown_unit(
                                origin.file,
                                origin.line("scope", "exclude", "units", pos),
                                f"rules[{index}].scope.exclude.units[{pos}]",
                                unit,
                                units,
                            )
                        )
        for pos, resource in enumerate(rule.resources):
            if resource != ALL_RESOURCES and resource not in resources:
                issues.append(
                    Issue(
                        Severity.ERROR,
                        origin.file,
                        origin.line("resources", pos),
                        f"rules[{index}].resources[{pos}]",
                        f"unknown resource `{resource}`",
                        did_you_mean(resource, [*resources, ALL_RESOURCES])
                        or "declare it under `resources:`",
                        "unknown-resource",
                    )
                )
        issues.extend(_glob_issues(rule, origin, index))
        tz = rule.timezone or policy.timezone
        if rule.until is not None and to_instant(rule.until, tz) <= to_instant(rule.from_, tz):
            issues.append(
                Issue(
                    Severity.ERROR,
                    origin.file,
                    origin.line("until"),
                    f"rules[{index}].until",
                    f"`until` {rule.until} is not after `from` {rule.from_}",
                    None,
                    "window",
                )
            )
    for index, exc in enumerate(policy.exceptions):
        origin = loaded.exception_origins[index]
        for pos, rule_id in enumerate(exc.rules):
            if rule_id not in rule_ids:
                issues.append(
                    Issue(
                        Severity.ERROR,
                        origin.file,
                        origin.line("rules", pos),
                        f"exceptions[{index}].rules[{pos}]",
                        f"unknown rule `{rule_id}`",
                        did_you_mean(rule_id, rule_ids),
                        "unknown-rule",
                    )
                )
        if exc.from_ is not None and to_instant(exc.until, policy.timezone) <= to_instant(
            exc.from_, policy.timezone
        ):
            issues.append(
                Issue(
                    Severity.ERROR,
                    origin.file,
                    origin.line("until"),
                    f"exceptions[{index}].until",
                    "`until` is not after `from`",
                    None,
                    "window",
                )
            )
    return issues


def _glob_issues(rule: Rule, origin: Located, index: int) -> list[Issue]:
    """Model globs the engine could compile but that cannot mean what was written."""
    issues = []
    for side, condition in (("when", rule.when), ("only", rule.only)):
        for pos, glob in enumerate(condition.model or () if condition else ()):
            problem = glob_problem(glob)
            if problem is not None:
                issues.append(
                    Issue(
                        Severity.ERROR,
                        origin.file,
                        origin.line(side, "model", pos),
                        f"rules[{index}].{side}.model[{pos}]",
                        f"`{glob}` is not a usable glob: {problem[0]}",
                        problem[1],
                        "glob",
                    )
                )
    return issues


def _unknown_unit(file: str, line: int, field: str, unit: str, units: set[str]) -> Issue:
    return Issue(
        Severity.ERROR,
        file,
        line,
        field,
        f"unknown unit `{unit}`",
        did_you_mean(unit, units) or "declare it under `units:`",
        "unknown-unit",
    )


def _never_matches(rule: Rule) -> str | None:
    """Why a rule's device conditions can never hold, if they obviously cannot."""
    when, only = rule.when, rule.only
    if when is not None and only is not None:
        for attr in ("vendor", "platform"):
            wanted, allowed = getattr(when, attr), getattr(only, attr)
            if wanted and allowed and {v.lower() for v in wanted} <= {v.lower() for v in allowed}:
                return (
                    f"`when.{attr}` {wanted} lies inside `only.{attr}` {allowed}: no device is "
                    "both matched and outside the allow-list"
                )
    if when is not None and isinstance(when, DeviceCondition):
        for attr in ("vendor", "platform", "model", "ownership", "kind"):
            if getattr(when, attr) == []:
                return f"`when.{attr}` is an empty list"
    scope, exclude = rule.scope, rule.scope.exclude
    if not (scope.units or scope.groups or scope.users):
        return None  # everyone: only the directory can tell whether anyone is left
    excluded_users = {user.casefold() for user in exclude.users}
    if (
        all(any(_under(unit, out) for out in exclude.units) for unit in scope.units)
        and set(scope.groups) <= set(exclude.groups)
        and all(user.casefold() in excluded_users for user in scope.users)
    ):
        return "everyone its scope names is also excluded (a unit's exclusion covers its subtree)"
    return None


def _under(unit: str, scope: str) -> bool:
    """Whether `unit` lies in `scope`'s subtree (as the engine reads a scope)."""
    return unit == scope or unit.startswith(scope + "/")


def lint_policy(
    loaded: LoadedPolicy,
    *,
    now: datetime | None = None,
    directory: Directory | None = None,
    inventory: Inventory | None = None,
) -> list[Issue]:
    """Warnings and info about a valid policy: rules that can never match or have ended,
    names identification never reports, references the directory or inventory lack."""
    policy = loaded.policy
    now = now or datetime.now(UTC)
    issues: list[Issue] = vocabulary_issues(loaded)
    declared_units = unit_closure(policy.units) if policy.units else None
    issues.extend(reference_issues(loaded, directory, inventory, declared_units))
    for index, rule in enumerate(policy.rules):
        origin = loaded.rule_origins[index]
        field = f"rules[{index}]"
        tz = rule.timezone or policy.timezone
        reason = _never_matches(rule)
        if reason:
            issues.append(
                Issue(
                    Severity.WARNING,
                    origin.file,
                    origin.line("id"),
                    field,
                    f"rule `{rule.id}` can never match: {reason}",
                    None,
                    "never-matches",
                )
            )
        if rule.until is not None and to_instant(rule.until, tz) <= now:
            issues.append(
                Issue(
                    Severity.WARNING,
                    origin.file,
                    origin.line("until"),
                    f"{field}.until",
                    f"rule `{rule.id}` ended on {rule.until} and can never apply again",
                    "remove it or move `until`",
                    "expired-rule",
                )
            )
        elif to_instant(rule.from_, tz) <= now:
            issues.append(
                Issue(
                    Severity.INFO,
                    origin.file,
                    origin.line("from"),
                    f"{field}.from",
                    f"rule `{rule.id}` takes effect on {rule.from_}, a date already past: "
                    "it applies at once, without notice",
                    "for a new rule, pick a future date and a `notice` period",
                    "past-date",
                )
            )
        if (
            rule.effect == "allow"
            and rule.mode == "enforce"
            and not _shadows_something(loaded, rule)
        ):
            issues.append(
                Issue(
                    Severity.WARNING,
                    origin.file,
                    origin.line("effect"),
                    f"{field}.effect",
                    f"allow rule `{rule.id}` overrides no broader deny rule",
                    "an allow only matters beneath a block/quarantine/warn rule",
                    "allow-shadows-nothing",
                )
            )
    if loaded.unknown_user_set is None and any(
        rule.effect in ("block", "quarantine") and rule.mode == "enforce" for rule in policy.rules
    ):
        issues.append(
            Issue(
                Severity.INFO,
                loaded.top.file,
                loaded.top.line("unknown_user"),
                "unknown_user",
                "`unknown_user` is not set, so it is allow: a name the directory does not "
                "know (or that names several users) is let through every rule; "
                "`devicegate_unknown_user_decisions_total` on /metrics counts them",
                "write `unknown_user: block` once the directory covers everyone who may use "
                "these services, or `unknown_user: allow` to say so (docs/security.md)",
                "unknown-user-allowed",
            )
        )
    for index, exc in enumerate(policy.exceptions):
        origin = loaded.exception_origins[index]
        if to_instant(exc.until, policy.timezone) <= now:
            subject = exc.user or exc.device
            issues.append(
                Issue(
                    Severity.WARNING,
                    origin.file,
                    origin.line("until"),
                    f"exceptions[{index}].until",
                    f"the exception for `{subject}` expired on {exc.until}",
                    "remove it, or renew it with a new `until` and approver",
                    "expired-exception",
                )
            )
    return issues


def _covers(outer: list[str], inner: list[str]) -> bool:
    """Whether a scope listing `outer` units covers some unit in `inner` (or everyone)."""
    if not outer:
        return True
    if not inner:
        return False
    return any(_under(i, o) for i in inner for o in outer)


def _shadows_something(loaded: LoadedPolicy, allow: Rule) -> bool:
    resources = set(allow.resources)
    for rule in loaded.policy.rules:
        if rule is allow or rule.effect == "allow" or rule.mode != "enforce":
            continue
        if not (
            resources & set(rule.resources) or ALL_RESOURCES in resources | set(rule.resources)
        ):
            continue
        if _covers(rule.scope.units, allow.scope.units) or rule.scope.groups or rule.scope.users:
            return True
    return False
