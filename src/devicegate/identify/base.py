"""What every extractor shares: its result type, its signature and hostile-input hygiene.

An extractor is a named function of the `Signals` (and the stable keys earlier extractors
found) to an `Extracted`: evidence plus keys. Extractors never raise on input a client
chose; the worst a hostile value earns is evidence with a note and no claims. Values that
end up in evidence are cut short and stripped of control characters first, because they
travel on into logs, decisions and dashboards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from devicegate.model import Evidence, Signals, Trust


@dataclass(frozen=True, slots=True)
class Extracted:
    """One extractor's output: what it claims and which stable keys it saw."""

    evidence: tuple[Evidence, ...] = ()
    keys: tuple[tuple[str, str], ...] = ()


NOTHING = Extracted()

#: `(signals, keys found by earlier extractors) -> Extracted`.
ExtractFn = Callable[[Signals, Mapping[str, str]], Extracted]


@dataclass(frozen=True, slots=True)
class Extractor:
    """A named step of identification, run in order by `Identifier`."""

    name: str
    run: ExtractFn


_CONTROL = {i: None for i in range(32)} | {127: None}


def clean(value: str, limit: int = 128) -> str:
    """`value` cut to `limit` characters with control characters (NUL, CR, LF…) removed."""
    if len(value) > limit:
        value = value[:limit]
    if value.isprintable():
        return value.strip()
    return value.translate(_CONTROL).strip()


def clip(value: str, limit: int) -> tuple[str, bool]:
    """(`value` cut to `limit` characters, whether it was cut)."""
    if len(value) > limit:
        return value[:limit], True
    return value, False


def make_evidence(
    signal: str,
    trust: Trust,
    source: str,
    says: Iterable[tuple[str, str | None]],
    *,
    note: str = "",
    confidence: float = 0.5,
) -> Evidence:
    """Evidence with empty claims dropped, so `says` never carries a None or a blank."""
    kept = tuple((key, value) for key, value in says if value)
    return Evidence(
        signal=signal,
        trust=trust,
        source=source,
        says=kept,
        note=note,
        confidence=max(0.0, min(1.0, confidence)),
    )


def agent_evidence(
    rule: str,
    says: Iterable[tuple[str, str | None]],
    confidence: float,
    note: str = "",
) -> Evidence:
    """Evidence from one User-Agent rule: always `reported` (the client chose the agent), its
    source `useragent/<rule>` so a reader can tell which rule decided."""
    return make_evidence(
        "user_agent", Trust.REPORTED, f"useragent/{rule}", says, note=note, confidence=confidence
    )


def note_only(signal: str, trust: Trust, source: str, note: str) -> Extracted:
    """A finding that claims nothing but must be seen (malformed input, randomised MAC…)."""
    return Extracted(
        evidence=(make_evidence(signal, trust, source, (), note=note, confidence=0.0),)
    )
