"""Device conditions compiled for evaluation, with three-valued results.

A condition on a profile is MATCH, NO or UNKNOWN (the signals do not tell). Deny-list
conditions (`when`) match when *any* credible signal supports them; allow-list conditions
(`only`) approve a device only when *all* signals support them (docs/semantics.md rule 8):
someone evading a ban changes one signal, rarely all.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from devicegate.inventory import NO_THREAT
from devicegate.model import DeviceKind, DeviceProfile, DeviceState, Ownership, Trust
from devicegate.policy.schema import DeviceCondition


class Tri(Enum):
    NO = 0
    UNKNOWN = 1
    MATCH = 2


_VERSION_HEAD = re.compile(r"\d+(?:\.\d+){0,3}")


@lru_cache(maxsize=4096)
def parse_version(text: str) -> Version | None:
    """`16.5.1`, `16.5 (20F66)`, `iOS 17.0` → Version; None when there is no version."""
    match = _VERSION_HEAD.search(text)
    if not match:
        return None
    try:
        return Version(match.group(0))
    except InvalidVersion:
        return None


def glob_problem(glob: str) -> tuple[str, str] | None:
    """Why `glob` cannot mean what its author wrote, with a hint; None for a usable glob.

    `fnmatch` itself never refuses a pattern: an unclosed `[` silently becomes a literal
    (`iPhone[` matches only the text `iPhone[`) and an empty range matches nothing, which
    switches a rule off without a word. The engine matches with fnmatch, so this scan
    follows fnmatch's own reading of `[...]` (a `]` right after `[` or `[!` is a member)
    and flags exactly those two cases: a different glob library would judge different
    syntax from the one the engine runs."""
    if not glob:
        return "an empty glob matches no model", "remove the entry, or write `*` for any model"
    i, n = 0, len(glob)
    while i < n:
        char = glob[i]
        i += 1
        if char != "[":
            continue
        j = i
        if j < n and glob[j] == "!":
            j += 1
        if j < n and glob[j] == "]":
            j += 1
        while j < n and glob[j] != "]":
            j += 1
        if j >= n:
            return f"`[` at position {i} is never closed", "write `[[]` for a literal `[`"
        members = glob[i:j].removeprefix("!")
        k = 0
        while k < len(members):
            if k + 2 < len(members) and members[k + 1] == "-":
                low, high = members[k], members[k + 2]
                if low > high:
                    return f"the range `{low}-{high}` is empty", f"write `{high}-{low}`"
                k += 3
            else:
                k += 1
        i = j + 1
    return None


def compile_globs(globs: list[str] | tuple[str, ...]) -> re.Pattern[str]:
    """One case-insensitive pattern matching any of `globs` (none: matches nothing).
    Validation has already refused the globs `glob_problem` names."""
    pattern = "|".join(fnmatch.translate(glob) for glob in globs) or "(?!)"
    return re.compile(pattern, re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class CompiledCondition:
    vendor: frozenset[str] | None
    platform: frozenset[str] | None
    model: re.Pattern[str] | None
    model_text: tuple[str, ...]
    os_version: SpecifierSet | None
    kind: frozenset[DeviceKind] | None
    ownership: frozenset[Ownership] | None
    managed: bool | None
    attested: bool | None
    compromised: bool | None
    spoofing_suspected: bool | None
    mdm_threat: bool | None

    @classmethod
    def build(cls, condition: DeviceCondition) -> CompiledCondition:
        return cls(
            vendor=_folded(condition.vendor),
            platform=_folded(condition.platform),
            model=compile_globs(condition.model) if condition.model is not None else None,
            model_text=tuple(condition.model or ()),
            os_version=SpecifierSet(condition.os_version) if condition.os_version else None,
            kind=frozenset(condition.kind) if condition.kind is not None else None,
            ownership=frozenset(condition.ownership) if condition.ownership is not None else None,
            managed=condition.managed,
            attested=condition.attested,
            compromised=condition.compromised,
            spoofing_suspected=condition.spoofing_suspected,
            mdm_threat=condition.mdm_threat,
        )

    def tests(
        self, profile: DeviceProfile, state: DeviceState
    ) -> list[tuple[str, tuple[str, ...], object]]:
        """(attribute, values the device claims, what the condition wants) per condition."""
        out: list[tuple[str, tuple[str, ...], object]] = []
        if self.vendor is not None:
            out.append(("vendor", profile.claimed("vendor"), self.vendor))
        if self.platform is not None:
            out.append(("platform", profile.claimed("platform"), self.platform))
        if self.model is not None:
            out.append(("model", profile.claimed("model"), self.model))
        if self.os_version is not None:
            out.append(("os_version", profile.claimed("os_version"), self.os_version))
        if self.kind is not None:
            kinds = () if profile.kind is DeviceKind.UNKNOWN else (profile.kind.value,)
            out.append(("kind", kinds, self.kind))
        if self.ownership is not None:
            owned = () if profile.ownership is Ownership.UNKNOWN else (profile.ownership.value,)
            out.append(("ownership", owned, self.ownership))
        if self.managed is not None:
            out.append(("managed", (str(bool(profile.managed)).lower(),), self.managed))
        if self.attested is not None:
            out.append(("attested", (str(profile.trust is Trust.ATTESTED).lower(),), self.attested))
        if self.compromised is not None:
            out.append(("compromised", (str(state.compromised).lower(),), self.compromised))
        if self.spoofing_suspected is not None:
            value = str(profile.spoofing_suspected).lower()
            out.append(("spoofing_suspected", (value,), self.spoofing_suspected))
        if self.mdm_threat is not None:
            out.append(("mdm_threat", mdm_threat_claims(profile), self.mdm_threat))
        return out


def mdm_threat_claims(profile: DeviceProfile) -> tuple[str, ...]:
    """What the inventory records matched for this access say about a threat: `true` for a
    reported jailbreak or threat, `false` for a device the MDM reports clean; nothing when
    no record matched or its MDM reports nothing (the condition is then unknown)."""
    claims = {
        "false" if value == NO_THREAT else "true"
        for item in profile.evidence
        for key, value in item.says
        if key == "mdm_threat"
    }
    return tuple(sorted(claims))


def _folded(values: list[str] | None) -> frozenset[str] | None:
    return frozenset(v.casefold() for v in values) if values is not None else None


def _one(attribute: str, claim: str, wanted: object) -> bool | None:
    """Whether one claimed value satisfies the condition; None if it cannot be judged."""
    if attribute in ("vendor", "platform"):
        assert isinstance(wanted, frozenset)
        return claim.casefold() in wanted
    if attribute == "model":
        assert isinstance(wanted, re.Pattern)
        return (
            wanted.fullmatch(claim) is not None
            or wanted.fullmatch(claim.replace(",", "C")) is not None
        )
    if attribute == "os_version":
        assert isinstance(wanted, SpecifierSet)
        version = parse_version(claim)
        return None if version is None else wanted.contains(version, prereleases=True)
    if attribute in ("kind", "ownership"):
        assert isinstance(wanted, frozenset)
        return claim in {str(w) for w in wanted}
    return claim == str(wanted).lower()


def _describe(wanted: object) -> str:
    if isinstance(wanted, frozenset):
        return "[" + ", ".join(sorted(str(w) for w in wanted)) + "]"
    if isinstance(wanted, re.Pattern):
        return "the model globs"
    if isinstance(wanted, SpecifierSet):
        return f"`{wanted}`"
    return str(wanted).lower()


def _values(values: list[str] | tuple[str, ...], detail: bool) -> str:
    return " " + ", ".join(values) if detail else ""


def match_deny(
    cond: CompiledCondition, profile: DeviceProfile, state: DeviceState, *, detail: bool = True
) -> tuple[Tri, str]:
    """`when`: every listed attribute must be supported by at least one claim.

    With `detail=False` the note names attributes and conditions but not the device's values,
    so that devices that behave alike share one note (the engine caches by behaviour)."""
    result = Tri.MATCH
    notes = []
    for attribute, claims, wanted in cond.tests(profile, state):
        judged = [_one(attribute, claim, wanted) for claim in claims]
        if any(j is True for j in judged):
            supporting = [c for c, j in zip(claims, judged, strict=True) if j]
            notes.append(f"{attribute}{_values(supporting, detail)} in {_describe(wanted)}")
            continue
        if not claims or all(j is None for j in judged):
            notes.append(f"{attribute} unknown")
            result = Tri.UNKNOWN
            continue
        return Tri.NO, f"{attribute}{_values(claims, detail)} not in {_describe(wanted)}"
    return result, "; ".join(notes)


def match_only(
    cond: CompiledCondition, profile: DeviceProfile, state: DeviceState, *, detail: bool = True
) -> tuple[Tri, str]:
    """`only`: MATCH (the rule applies) when some claim falls outside the allow-list, NO when
    every claim of every attribute lies inside it, UNKNOWN when an attribute is unknown."""
    unknown = []
    for attribute, claims, wanted in cond.tests(profile, state):
        judged = [_one(attribute, claim, wanted) for claim in claims]
        outside = [c for c, j in zip(claims, judged, strict=True) if j is False]
        if outside:
            return (
                Tri.MATCH,
                f"{attribute}{_values(outside, detail)} not among approved {_describe(wanted)}",
            )
        if not claims or any(j is None for j in judged):
            unknown.append(attribute)
    if unknown:
        return Tri.UNKNOWN, f"{', '.join(unknown)} unknown: approval cannot be shown"
    return Tri.NO, "device is on the approved list"


def tri_and(a: Tri, b: Tri) -> Tri:
    return a if a.value < b.value else b
