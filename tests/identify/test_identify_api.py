"""The public surface of devicegate.identify, and the cache's contract."""

from __future__ import annotations

import pytest

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


def test_a_lone_user_agent_takes_the_short_path_to_the_same_profile() -> None:
    """`Identifier` skips the other extractors for a User-Agent alone; the profile must be
    the one the whole pipeline gives (a custom extractor list never takes the short path)."""
    agents = [
        "Apple-iPhone14C2/2006.66",
        "ExampleChat/10.5.2 (iOS 17.2.1; iPhone14,2)",
        "Mozilla/5.0 (Mobile; rv:78.0) Gecko/78.0 Firefox/78.0",
        "Mozilla/5.0 (X11; Astra Linux; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0",
        "curl/8.4.0",
    ]
    short = Identifier(cache_size=0)
    full = Identifier(cache_size=0, extractors=identify_pkg.default_extractors())
    for ua in agents:
        assert short.identify(Signals(user_agent=ua)) == full.identify(Signals(user_agent=ua))
    both = Signals(user_agent=agents[0], mac="3c:22:fb:11:08:ee")
    assert [e.signal for e in short.identify(both).evidence] == ["user_agent", "mac"]


def test_profile_fields_keep_the_order_combine_builds_them_in() -> None:
    """combine's single-evidence path builds DeviceProfile positionally, for speed."""
    from dataclasses import fields

    from devicegate.model import DeviceProfile

    assert [f.name for f in fields(DeviceProfile)] == [
        "vendor",
        "platform",
        "model",
        "os_version",
        "kind",
        "ownership",
        "managed",
        "device_id",
        "trust",
        "confidence",
        "evidence",
        "conflicts",
        "claims",
        "ambiguous",
        "keys",
    ]


def test_a_failing_user_agent_step_on_the_short_path_is_a_note(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def boom(ua: str) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("devicegate.identify.useragent.identify_user_agent", boom)
    profile = Identifier(cache_size=0).identify(Signals(user_agent="Apple-iPhone14C2/2006.66"))
    assert not profile.identified
    assert [e.note for e in profile.evidence] == [
        "extractor `user_agent` failed (RuntimeError); its signal was not checked"
    ]
