"""Identification: the raw `Signals` of one access → a `DeviceProfile` with its evidence.

Identification is an ordered list of named extractors, each reporting `Evidence` (which
signal said what, at which trust), and one combining rule (combine.py):

    activesync   query string (plain / base64), DeviceType, DeviceModel, DeviceOS  reported
    imap_id      RFC 2971 ID list (raw or Dovecot's retained form)                  reported
    user_agent   our rules for Apple's clients, ua-parser, then the rules for        reported
                 third-party agents and the domestic platforms (docs/identification.md)
    mac          IEEE registries; randomised addresses claim nothing                 inferred
    inventory    MDM records by mdm id / certificate (attested), DeviceId, MAC      per key

Later extractors see the stable keys earlier ones found (the inventory looks up the
DeviceId decoded from a base64 query). No extractor raises on what a client sent: hostile
or malformed values end as evidence with a note. The parsers adapters need on their own —
`parse_activesync_query`, `parse_imap_id`, `normalise_mac` — raise `SignalError` instead.

The online path identifies each distinct `Signals` value once: `Identifier.profile` is a
dict look-up on a hit; on a miss, a User-Agent that comes alone (most new web requests)
skips the extractors that would find nothing. Public surface: see `__all__` (pinned by a test).
"""

from __future__ import annotations

from devicegate.boundedcache import BoundedCache
from devicegate.identify.activesync import (
    ActiveSyncQuery,
    extract_activesync,
    parse_activesync_query,
)
from devicegate.identify.base import Extracted, Extractor
from devicegate.identify.combine import combine
from devicegate.identify.imapid import extract_imap_id, parse_imap_id
from devicegate.identify.mac import extract_mac, normalise_mac
from devicegate.identify.mdm import inventory_extractor
from devicegate.identify.useragent import extract_user_agent, user_agent_evidence
from devicegate.inventory import EMPTY_INVENTORY, Inventory
from devicegate.model import DeviceProfile, Evidence, Signals, Trust

__all__ = [
    "ActiveSyncQuery",
    "Extracted",
    "Extractor",
    "Identifier",
    "combine",
    "default_extractors",
    "identify",
    "normalise_mac",
    "parse_activesync_query",
    "parse_imap_id",
]


def default_extractors(inventory: Inventory = EMPTY_INVENTORY) -> tuple[Extractor, ...]:
    """The standard pipeline, in order; the inventory step only when there is one."""
    steps = [
        Extractor("activesync", extract_activesync),
        Extractor("imap_id", extract_imap_id),
        Extractor("user_agent", extract_user_agent),
        Extractor("mac", extract_mac),
    ]
    if len(inventory):
        steps.append(Extractor("inventory", inventory_extractor(inventory)))
    return tuple(steps)


class Identifier:
    """Identification bound to one inventory snapshot, with a bounded cache of profiles.

    `Signals` is a frozen, hashable value, so equal signals share one profile. The cache is
    a `BoundedCache` of `cache_size` entries (0 disables it): a hit stays a single
    `dict.get`, which is what millions of repeated requests need.
    """

    __slots__ = ("_cache", "_user_agent_step", "cache_size", "extractors", "inventory")

    def __init__(
        self,
        inventory: Inventory = EMPTY_INVENTORY,
        cache_size: int = 200_000,
        *,
        extractors: tuple[Extractor, ...] | None = None,
    ) -> None:
        self.inventory = inventory
        self.cache_size = cache_size
        self.extractors = extractors if extractors is not None else default_extractors(inventory)
        self._cache: BoundedCache[Signals, DeviceProfile] | None = (
            BoundedCache(cache_size) if cache_size > 0 else None
        )
        # With the standard pipeline, signals that carry a User-Agent and nothing else (most
        # new web requests) need only its extractor: every other step would find nothing.
        self._user_agent_step = (
            next(step for step in self.extractors if step.name == "user_agent")
            if extractors is None
            else None
        )

    def profile(self, signals: Signals) -> DeviceProfile:
        """The profile for `signals`, from the cache when these signals were seen before."""
        cache = self._cache
        if cache is None:
            return self.identify(signals)
        cached = cache.get(signals)
        if cached is not None:
            return cached
        return cache.put(signals, self.identify(signals))

    def identify(self, signals: Signals) -> DeviceProfile:
        """Run every extractor and combine (no cache)."""
        step, ua = self._user_agent_step, signals.user_agent
        if step is not None and ua and not ua.isspace():
            present = signals.cache_key
            if present.count(None) == len(present) - 1:
                try:
                    return combine((user_agent_evidence(ua),))
                except Exception as exc:  # the same safety net as below
                    return combine((_failed(step, exc),))
        evidence: list[Evidence] = []
        keys: list[tuple[str, str]] = []
        seen: dict[str, str] = {}
        for step in self.extractors:
            try:
                found = step.run(signals, seen)
            except Exception as exc:  # the safety net: one broken step never stops the rest
                evidence.append(_failed(step, exc))
                continue
            evidence.extend(found.evidence)
            for kind, value in found.keys:
                keys.append((kind, value))
                seen.setdefault(kind, value)
        return combine(evidence, keys)

    def cache_len(self) -> int:
        return len(self._cache) if self._cache is not None else 0

    def clear(self) -> None:
        if self._cache is not None:
            self._cache.clear()


def _failed(step: Extractor, exc: Exception) -> Evidence:
    """What a step that raised leaves behind: a note, never a claim."""
    return Evidence(
        signal=step.name,
        trust=Trust.INFERRED,
        source=step.name,
        note=f"extractor `{step.name}` failed ({type(exc).__name__}); its signal was not checked",
        confidence=0.0,
    )


_DEFAULT = Identifier(EMPTY_INVENTORY, cache_size=0)


def identify(signals: Signals, inventory: Inventory = EMPTY_INVENTORY) -> DeviceProfile:
    """Identify one access without caching (use `Identifier` on hot paths)."""
    if inventory is EMPTY_INVENTORY or not len(inventory):
        return _DEFAULT.identify(signals)
    return Identifier(inventory, cache_size=0).identify(signals)
