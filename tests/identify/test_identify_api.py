"""The public surface of devicegate.identify, and the cache's contract."""

from __future__ import annotations

import devicegate.identify as identify_pkg
from devicegate.identify import Extracted, Extractor, Identifier, identify
from devicegate.model import Evidence, Signals, Trust


def test_public_surface_is_pinned() -> None:
    assert sorted(identify_pkg.__all__) == [
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
    for name in identify_pkg.__all__:
        assert getattr(identify_pkg, name).__doc__, f"{name} needs a docstring"


def test_extractors_are_ordered_and_named() -> None:
    names = [e.name for e in identify_pkg.default_extractors()]
    assert names == ["activesync", "imap_id", "user_agent", "mac"]


def test_cache_hits_return_the_same_object_and_stay_bounded() -> None:
    identifier = Identifier(cache_size=3)
    a = Signals(user_agent="iOS/16.5 (20F66) dataaccessd/1.0")
    first = identifier.profile(a)
    assert identifier.profile(Signals(user_agent="iOS/16.5 (20F66) dataaccessd/1.0")) is first
    for i in range(5):
        identifier.profile(Signals(user_agent=f"agent/{i}"))
    assert identifier.cache_len() <= 3


def test_cache_size_zero_disables_caching() -> None:
    identifier = Identifier(cache_size=0)
    identifier.profile(Signals(user_agent="x"))
    assert identifier.cache_len() == 0


def test_a_failing_extractor_is_a_note_not_an_exception() -> None:
    def broken(signals: Signals, keys: object) -> Extracted:
        raise RuntimeError("boom")

    def fine(signals: Signals, keys: object) -> Extracted:
        return Extracted((Evidence("x", Trust.REPORTED, "t", (("vendor", "Apple"),)),))

    identifier = Identifier(extractors=(Extractor("broken", broken), Extractor("fine", fine)))
    profile = identifier.profile(Signals(user_agent="anything"))
    assert profile.vendor == "Apple"
    assert any("broken" in e.note and "not checked" in e.note for e in profile.evidence)


def test_identify_is_pure() -> None:
    signals = Signals(user_agent="Apple-iPhone14C2/2006.66", mac="3c:22:fb:12:34:56")
    assert identify(signals) == identify(signals)
