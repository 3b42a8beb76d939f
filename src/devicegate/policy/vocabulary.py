"""Lints on what device conditions name: only what identification can report ever matches.

The engine compares a condition's `vendor`/`platform` values with what identification
claimed, case-insensitively. A value identification never reports therefore switches its
entry off without a word: `when: {vendor: [Appel]}` matches no device, `only: {platform:
[Aurroa]}` approves none. The names identification can report are one list,
`identify.names.PLATFORMS` / `VENDORS`, extended per policy by `platforms:` / `vendors:`
for names it does not know yet. The same table says which maker's hardware runs which
platform, which is how `vendor: Apple` with `platform: Android` is known to match nobody.

Findings are warnings (errors under `validate --strict`): a new name can be legitimate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from devicegate.identify.names import (
    PLATFORM_NAMES,
    VENDORS,
    canonical_platform,
    canonical_vendor,
    runs_on,
)
from devicegate.model import DeviceKind, Ownership
from devicegate.policy.diagnostics import Issue, Severity, did_you_mean
from devicegate.policy.load import LoadedPolicy, Located
from devicegate.policy.schema import DeviceCondition, Rule

#: What an entry identification never reports does, on each side of a rule.
_CONSEQUENCE = {
    "when": "no device matches this entry",
    "only": "this entry approves no device: the rule applies to the devices it meant to allow",
}


@dataclass(frozen=True, slots=True)
class _Names:
    """One attribute's vocabulary: identification's own names and the policy's additions,
    each by case-folded key (the engine's comparison) with its spelling."""

    attribute: str  # "vendor" or "platform"
    builtin: dict[str, str]
    declared: dict[str, str]
    canonical: Callable[[str | None], str | None]

    @property
    def section(self) -> str:
        return f"{self.attribute}s"

    def spelling(self, value: str) -> str:
        """The name as identification (or the declaration) spells it, else as written."""
        key = value.casefold()
        return self.builtin.get(key) or self.declared.get(key) or value

    def check(self, value: str, side: str, file: str, line: int, field: str) -> Issue | None:
        """A finding about one `when`/`only` entry, or None when identification reports it."""
        key = value.casefold()
        if key in self.builtin:
            return None
        reported = self.canonical(value)
        if reported is not None and reported.casefold() in self.builtin:
            return Issue(
                Severity.WARNING,
                file,
                line,
                field,
                f"identification reports `{value}` as `{reported}`: {_CONSEQUENCE[side]}",
                f"write `{reported}`",
                "other-spelling",
            )
        if key in self.declared:
            return None
        suggestion = did_you_mean(value, [*self.builtin.values(), *self.declared.values()])
        declare = f"if identification does not know it yet, declare it under `{self.section}:`"
        return Issue(
            Severity.WARNING,
            file,
            line,
            field,
            f"unknown {self.attribute} `{value}`: identification never reports it, "
            f"so {_CONSEQUENCE[side]}",
            f"{suggestion} Or, {declare}" if suggestion else declare.capitalize(),
            f"unknown-{self.attribute}",
        )


def _vocabularies(loaded: LoadedPolicy) -> dict[str, _Names]:
    policy = loaded.policy

    def keyed(names: tuple[str, ...] | list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for name in names:
            out.setdefault(name.casefold(), name)
        return out

    return {
        "vendor": _Names("vendor", keyed(VENDORS), keyed(policy.vendors), canonical_vendor),
        "platform": _Names(
            "platform", keyed(PLATFORM_NAMES), keyed(policy.platforms), canonical_platform
        ),
    }


def vocabulary_issues(loaded: LoadedPolicy) -> list[Issue]:
    """Every condition value identification never reports, every contradiction between a
    condition's vendors and platforms, and declarations that do not do what they say."""
    names = _vocabularies(loaded)
    issues: list[Issue] = []
    for index, rule in enumerate(loaded.policy.rules):
        origin = loaded.rule_origins[index]
        for side, condition in (("when", rule.when), ("only", rule.only)):
            if condition is None:
                continue
            issues.extend(_values(condition, origin, f"rules[{index}].{side}", side, names))
            issues.extend(_contradiction(rule, condition, origin, index, side, names))
    issues.extend(_declarations(loaded, names))
    return issues


def _values(
    condition: DeviceCondition, origin: Located, field: str, side: str, names: dict[str, _Names]
) -> Iterator[Issue]:
    for attribute, vocabulary in names.items():
        for pos, value in enumerate(getattr(condition, attribute) or ()):
            found = vocabulary.check(
                value,
                side,
                origin.file,
                origin.line(side, attribute, pos),
                f"{field}.{attribute}[{pos}]",
            )
            if found is not None:
                yield found
    unknowns: tuple[tuple[str, object], ...] = (
        ("kind", DeviceKind.UNKNOWN),
        ("ownership", Ownership.UNKNOWN),
    )
    for attribute, unknown in unknowns:
        for pos, value in enumerate(getattr(condition, attribute) or ()):
            if value is unknown:
                yield Issue(
                    Severity.WARNING,
                    origin.file,
                    origin.line(side, attribute, pos),
                    f"{field}.{attribute}[{pos}]",
                    f"`unknown` is never reported as a {attribute}: identification claims "
                    "nothing when it cannot tell, so no device matches this entry",
                    "a device identification cannot tell is handled by the rule's "
                    "`on_unidentified`",
                    "never-reported",
                )


def _contradiction(
    rule: Rule,
    condition: DeviceCondition,
    origin: Located,
    index: int,
    side: str,
    names: dict[str, _Names],
) -> list[Issue]:
    """Vendors and platforms of one condition that no single device can both be."""
    vendors = [names["vendor"].spelling(v) for v in condition.vendor or ()]
    platforms = [names["platform"].spelling(p) for p in condition.platform or ()]
    if not vendors or not platforms or condition.spoofing_suspected:
        return []
    field = f"rules[{index}].{side}"
    if not any(runs_on(p, v) for p in platforms for v in vendors):
        pairing = f"no device is both {_listed(vendors)} and {_listed(platforms)}"
        if side == "when":
            message = f"rule `{rule.id}` can never match: {pairing}"
            hint = (
                "only spoofed signals claim both; add `spoofing_suspected: true` if that is meant"
            )
            code = "never-matches"
        else:
            message = (
                f"`only` approves nobody: {pairing}, so rule `{rule.id}` applies to every "
                "device in its scope"
            )
            hint = "an allow-list lists what may stay; check the vendor and platform lists"
            code = "only-unsatisfiable"
        return [Issue(Severity.WARNING, origin.file, origin.line(side), field, message, hint, code)]
    issues = []
    for attribute, own, other in (("vendor", vendors, platforms), ("platform", platforms, vendors)):
        for pos, value in enumerate(own):
            pairs = [(value, o) if attribute == "vendor" else (o, value) for o in other]
            if not any(runs_on(p, v) for v, p in pairs):
                issues.append(
                    Issue(
                        Severity.WARNING,
                        origin.file,
                        origin.line(side, attribute, pos),
                        f"{field}.{attribute}[{pos}]",
                        f"no device is both `{value}` and one of {_listed(other)}: "
                        "this entry never matches",
                        None,
                        "contradiction",
                    )
                )
    return issues


def _declarations(loaded: LoadedPolicy, names: dict[str, _Names]) -> Iterator[Issue]:
    """`vendors:`/`platforms:` entries that identification already knows, or reports under
    another name (declaring `Astra Linux` does not help while identification says `Linux`)."""
    by_section = {vocabulary.section: vocabulary for vocabulary in names.values()}
    for section, name, origin in loaded.declared:
        vocabulary = by_section[section]
        pos = origin.path[-1]
        field = f"{section}[{pos}]"
        line = origin.line()
        if name.casefold() in vocabulary.builtin:
            yield Issue(
                Severity.INFO,
                origin.file,
                line,
                field,
                f"identification already knows the {vocabulary.attribute} `{name}`",
                "the declaration can go",
                "declared-known",
            )
            continue
        reported = vocabulary.canonical(name)
        if reported is not None and reported.casefold() in vocabulary.builtin:
            yield Issue(
                Severity.WARNING,
                origin.file,
                line,
                field,
                f"identification reports `{name}` as `{reported}`: a condition on "
                f"`{name}` never matches",
                f"write `{reported}` in conditions",
                "other-spelling",
            )


def _listed(values: list[str]) -> str:
    return "[" + ", ".join(values) + "]"
