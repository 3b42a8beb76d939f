"""From every extractor's evidence to one `DeviceProfile`: the combining rule, written once.

=================  ===============================================================
profile field      rule
=================  ===============================================================
`claims[attr]`     distinct values claimed for `attr`; if any *attested* evidence
                   claims `attr`, only attested values count for it
`vendor` …         the single best value: highest trust, then highest confidence,
                   then the order the extractor listed it
`ambiguous`        attributes for which one piece of evidence claims several values
                   (iPadOS in desktop mode: `macOS` and `iPadOS`)
`conflicts`        vendor or platform claims that no single device could satisfy,
                   attested or not (a spoof is recorded even when outranked)
`trust`            the best level among evidence that claims anything
`confidence`       1 − Π(1 − c) over evidence agreeing with the chosen vendor/platform,
                   halved when signals conflict, capped at 0.99
`keys`             every stable identifier seen, first occurrence first
=================  ===============================================================

Disagreement is judged on *families* (names.platform_family): iOS vs iPadOS, or Android vs
a Linux desktop-mode agent, is not a spoofing suspicion; iOS vs Android is. For the vendor,
a platform that excludes Apple hardware (Android, Windows…) counts as "not Apple", so an
Apple MAC prefix under an Android User-Agent is a conflict even when the agent names no
maker.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from devicegate.identify.names import excludes_apple, platform_family
from devicegate.model import (
    Conflict,
    DeviceKind,
    DeviceProfile,
    Evidence,
    Ownership,
    Trust,
)

_CLAIMED = ("vendor", "platform", "model", "os_version")
_SINGLE = ("kind", "ownership", "managed", "device_id")


def _ranked(pairs: list[tuple[int, Evidence, str]]) -> list[str]:
    """Distinct values, best first: trust, then confidence, then original order."""
    pairs.sort(key=lambda p: (-p[1].trust.rank, -p[1].confidence, p[0]))
    out: list[str] = []
    for _, _, value in pairs:
        if value not in out:
            out.append(value)
    return out


def _platform_conflict(claiming: Sequence[Evidence]) -> Conflict | None:
    sets: list[tuple[Evidence, set[str], list[str]]] = []
    for item in claiming:
        values = [v for k, v in item.says if k == "platform"]
        if values:
            sets.append((item, {platform_family(v) for v in values}, values))
    if len(sets) < 2:
        return None
    common = set.intersection(*(families for _, families, _ in sets))
    if common:
        return None
    claims = tuple((item.signal, value) for item, _, values in sets for value in values)
    return Conflict("platform", claims, "no single platform satisfies every signal")


def _vendor_conflict(claiming: Sequence[Evidence]) -> Conflict | None:
    positive: list[tuple[Evidence, set[str]]] = []
    negative: list[tuple[Evidence, str]] = []
    for item in claiming:
        vendors = {v for k, v in item.says if k == "vendor"}
        if vendors:
            positive.append((item, vendors))
            continue
        platforms = [v for k, v in item.says if k == "platform"]
        if platforms and all(excludes_apple(p) for p in platforms):
            negative.append((item, platforms[0]))
    if not positive:
        return None
    common = set.intersection(*(vendors for _, vendors in positive))
    if negative:
        common.discard("Apple")
    if common or (len(positive) < 2 and not negative):
        return None
    claims = tuple((item.signal, v) for item, vendors in positive for v in sorted(vendors))
    claims += tuple((item.signal, f"not Apple ({platform})") for item, platform in negative)
    return Conflict("vendor", claims, "the signals name different makers")


def _dedupe(keys: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    seen: set[tuple[str, str]] = set()
    out: list[tuple[str, str]] = []
    for key in keys:
        if key not in seen:
            seen.add(key)
            out.append(key)
    return tuple(out)


def combine(evidence: Sequence[Evidence], keys: Iterable[tuple[str, str]] = ()) -> DeviceProfile:
    """The profile all `evidence` supports (see the module table for every rule)."""
    if len(evidence) == 1 and evidence[0].says:  # a lone User-Agent: the common miss
        return _single(evidence[0], evidence, keys)
    claiming = [item for item in evidence if item.says]
    if not claiming:
        return DeviceProfile(evidence=tuple(evidence), keys=_dedupe(keys))
    if len(claiming) == 1:
        return _single(claiming[0], evidence, keys)

    by_attr: dict[str, list[tuple[int, Evidence, str]]] = {}
    order = 0
    for item in claiming:
        for attr, value in item.says:
            by_attr.setdefault(attr, []).append((order, item, value))
            order += 1

    claims: list[tuple[str, tuple[str, ...]]] = []
    ambiguous: list[str] = []
    best: dict[str, str] = {}
    for attr in _CLAIMED + _SINGLE:
        pairs = by_attr.get(attr)
        if not pairs:
            continue
        attested = [p for p in pairs if p[1].trust is Trust.ATTESTED]
        counted = attested or pairs
        values = _ranked(list(counted))
        best[attr] = values[0]
        if attr == "os_version":
            # `11` and `11.2.6` agree; the more precise one is the better answer.
            refined = [v for v in values if v.startswith(values[0] + ".")]
            if refined:
                best[attr] = max(refined, key=len)
        if attr in _CLAIMED:
            claims.append((attr, tuple(values)))
            per_item: dict[int, set[str]] = {}
            for _, item, value in counted:
                per_item.setdefault(id(item), set()).add(value)
            if any(len(v) > 1 for v in per_item.values()):
                ambiguous.append(attr)

    conflicts = tuple(
        c for c in (_vendor_conflict(claiming), _platform_conflict(claiming)) if c is not None
    )
    trust = max((item.trust for item in claiming), key=lambda t: t.rank)

    vendor, platform = best.get("vendor"), best.get("platform")
    family = platform_family(platform) if platform else None
    doubt = 1.0
    for item in claiming:
        agrees = (vendor is not None and ("vendor", vendor) in item.says) or (
            family is not None
            and any(k == "platform" and platform_family(v) == family for k, v in item.says)
        )
        if agrees:
            doubt *= 1.0 - item.confidence
    confidence = 1.0 - doubt if (vendor or platform) else 0.0
    if conflicts:
        confidence *= 0.5
    confidence = round(min(confidence, 0.99), 3)

    kind_text = best.get("kind")
    ownership_text = best.get("ownership")
    managed_text = best.get("managed")
    return DeviceProfile(
        vendor=vendor,
        platform=platform,
        model=best.get("model"),
        os_version=best.get("os_version"),
        kind=_KINDS.get(kind_text or "", DeviceKind.UNKNOWN),
        ownership=_OWNERSHIPS.get(ownership_text or "", Ownership.UNKNOWN),
        managed=None if managed_text is None else managed_text == "true",
        device_id=best.get("device_id"),
        trust=trust,
        confidence=confidence,
        evidence=tuple(evidence),
        conflicts=conflicts,
        claims=tuple(claims),
        ambiguous=tuple(ambiguous),
        keys=_dedupe(keys),
    )


def _single(
    item: Evidence, evidence: Sequence[Evidence], keys: Iterable[tuple[str, str]]
) -> DeviceProfile:
    """The same rules for the common case of one claiming piece of evidence, faster.

    A new User-Agent with nothing else is most of the online miss path; with one source
    there is nothing to rank and nothing to disagree with.
    """
    says = item.says
    first = dict(reversed(says))  # each attribute's first value
    many: dict[str, list[str]] | None = None
    if len(first) != len(says):  # an attribute claimed twice (iPadOS in desktop mode)
        many = {}
        for attr, value in says:
            if value != first[attr]:
                values = many.setdefault(attr, [first[attr]])
                if value not in values:
                    values.append(value)
    claims = []
    for attr in _CLAIMED:
        if attr in first:
            listed = many.get(attr) if many else None
            claims.append((attr, tuple(listed) if listed else (first[attr],)))
    vendor, platform = first.get("vendor"), first.get("platform")
    managed_text = first.get("managed")
    # Positional, in DeviceProfile's field order (a test pins it): keyword arguments cost a
    # quarter of the construction, and this runs once per new User-Agent.
    return DeviceProfile(
        vendor,
        platform,
        first.get("model"),
        first.get("os_version"),
        _KINDS.get(first.get("kind", ""), DeviceKind.UNKNOWN),
        _OWNERSHIPS.get(first.get("ownership", ""), Ownership.UNKNOWN),
        None if managed_text is None else managed_text == "true",
        first.get("device_id"),
        item.trust,
        round(min(item.confidence, 0.99), 3) if (vendor or platform) else 0.0,
        tuple(evidence),
        (),
        tuple(claims),
        tuple(a for a in _CLAIMED if a in many) if many else (),
        _dedupe(keys) if keys else (),
    )


_KINDS = {k.value: k for k in DeviceKind}
_OWNERSHIPS = {o.value: o for o in Ownership}
