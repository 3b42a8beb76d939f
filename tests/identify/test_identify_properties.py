"""Properties: no identifier raises on hostile input; parsers round-trip what they parse."""

from __future__ import annotations

import base64
import contextlib
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devicegate.errors import SignalError
from devicegate.identify import (
    Identifier,
    default_extractors,
    identify,
    normalise_mac,
    parse_activesync_query,
    parse_imap_id,
)
from devicegate.inventory import Inventory, InventoryDevice
from devicegate.model import Signals

#: Header bytes as a server hands them over: any byte, decoded as Latin-1.
header_text = st.binary(max_size=600).map(lambda b: b.decode("latin-1"))
any_text = st.one_of(header_text, st.text(max_size=300))
signals = st.builds(
    Signals,
    user_agent=st.none() | any_text,
    activesync_query=st.none() | any_text,
    activesync_device_id=st.none() | any_text,
    activesync_device_type=st.none() | any_text,
    activesync_device_model=st.none() | any_text,
    activesync_device_os=st.none() | any_text,
    imap_id=st.none() | any_text,
    mac=st.none() | any_text,
    mdm_id=st.none() | any_text,
    tls_fingerprint=st.none() | any_text,
)
INVENTORY = Inventory(
    [InventoryDevice(device_id="d", vendor="Apple", mdm_id="m", mac="3c:22:fb:00:00:01")]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(signals)
def test_no_extractor_raises_on_arbitrary_signals(value: Signals) -> None:
    for extractor in default_extractors(INVENTORY):
        extractor.run(value, {})
    profile = identify(value, INVENTORY)
    assert 0.0 <= profile.confidence <= 1.0


@settings(max_examples=50)
@given(
    st.integers(min_value=2049, max_value=200_000),
    st.sampled_from(["a", "\x00", "é", "Mozilla/5.0 ("]),
)
def test_huge_user_agents_are_truncated_not_fatal(length: int, filler: str) -> None:
    ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) " + filler * length
    profile = identify(Signals(user_agent=ua))
    assert any("truncated" in e.note for e in profile.evidence)


# Parsers used by adapters raise SignalError and nothing else.


@given(any_text)
def test_parsers_raise_only_signal_error(text: str) -> None:
    for parse in (parse_activesync_query, parse_imap_id, normalise_mac):
        with contextlib.suppress(SignalError):
            parse(text)


# IMAP ID round trip.

keys = st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=30)
values = st.none() | st.text(
    alphabet=st.characters(blacklist_characters="\r\n\x00", min_codepoint=1, max_codepoint=0x2FF),
    max_size=200,
)


def quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal(text: str) -> str:
    return "{" + str(len(text)) + "}\r\n" + text


@given(
    st.lists(st.tuples(keys, values, st.booleans()), max_size=30),
    st.booleans(),
)
def test_imap_id_round_trip(pairs: list[tuple[str, str | None, bool]], parens: bool) -> None:
    parts = []
    for key, value, use_literal in pairs:
        encoded = "NIL" if value is None else (literal(value) if use_literal else quoted(value))
        parts.append(f"{quoted(key)} {encoded}")
    body = " ".join(parts)
    text = f"({body})" if parens else body
    expected: dict[str, str] = {}
    for key, value, _ in pairs:
        if value is not None:
            expected.setdefault(key.lower(), value)
    assert parse_imap_id(text) == expected


# ActiveSync base64 round trip, with an encoder written from [MS-ASHTTP] 2.2.1.1.1.1.

COMMAND_CODES = {
    "Sync": 0,
    "SendMail": 1,
    "FolderSync": 9,
    "Settings": 17,
    "Ping": 18,
    "Provision": 20,
}


def encode_query(
    version: int,
    cmd: str,
    locale: int,
    device_id: bytes,
    policy_key: int | None,
    device_type: str,
    user: str | None,
) -> str:
    out = bytes([version, COMMAND_CODES[cmd]]) + locale.to_bytes(2, "little")
    out += bytes([len(device_id)]) + device_id
    if policy_key is None:
        out += bytes([0])
    else:
        out += bytes([4]) + policy_key.to_bytes(4, "little")
    typed = device_type.encode()
    out += bytes([len(typed)]) + typed
    out += bytes([7, 1, 1])  # Options: SaveInSent
    if user is not None:
        encoded_user = user.encode()
        out += bytes([8, len(encoded_user)]) + encoded_user
    return base64.b64encode(out).decode()


printable_id = st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=32)


@given(
    st.sampled_from([121, 140, 141, 160, 161]),
    st.sampled_from(sorted(COMMAND_CODES)),
    st.integers(min_value=0, max_value=0xFFFF),
    st.one_of(printable_id.map(str.encode), st.binary(min_size=16, max_size=16)),
    st.none() | st.integers(min_value=0, max_value=2**32 - 1),
    st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=40),
    st.none() | st.emails().filter(lambda e: len(e) < 200),
)
def test_activesync_base64_round_trip(
    version: int,
    cmd: str,
    locale: int,
    device_id: bytes,
    policy_key: int | None,
    device_type: str,
    user: str | None,
) -> None:
    query = parse_activesync_query(
        encode_query(version, cmd, locale, device_id, policy_key, device_type, user)
    )
    assert query.encoded and query.cmd == cmd and query.device_type == device_type
    assert query.protocol_version == f"{version // 10}.{version % 10}"
    assert query.user == user
    printable = all(0x21 <= b <= 0x7E for b in device_id)
    assert query.device_id == (device_id.decode() if printable else device_id.hex().upper())


@given(signals)
def test_cache_returns_the_same_profile_as_identify(value: Signals) -> None:
    identifier = Identifier(cache_size=4)
    first = identifier.profile(value)
    assert identifier.profile(value) is first
    assert first == identify(value)


# Precision: Apple names inside an agent that names a non-Apple platform are mentioned in
# passing. Fragments are the tokens the User-Agent rules look for, in any order and mix.

APPLE_FRAGMENTS = [
    "iPhone",
    "iPad",
    "iPhone14,2",
    "iPad13,1",
    "Watch6,1",
    "Mac14,2",
    "iPh6,2",
    "iPhone15%2C3",
    "iOS 17.2",
    "iOS",
    "macOS/14.2",
    "Example.iOS/5.1",
    "watchOS 10",
    "tvOS",
    "Mac Catalyst",
    "Darwin/22.6.0",
    "Darwin 23.2.0 arm64",
    "darwin/arm64",
    "aarch64-apple-darwin",
    "arm64-apple-ios17.0",
    "AppleCoreMedia/1.0.0.21C66 (iPhone; U; CPU OS 17_2 like Mac OS X)",
    "AirPlay/710.78",
    "QuickTime/7.7.3 (qtver=7.7.3;os=Mac 10.8.5)",
    "dv(iPh9,3);ov(12_5_7)",
    "iPh OS 7_1_2",
    "CFNetwork/1410.0.3",
    "Macintosh",
]
NON_APPLE_PREFIXES = [
    "Mozilla/5.0 (Linux; Android 13; {}) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36",
    "Dalvik/2.1.0 (Linux; U; Android 13; {} Build/TP1A.220624.014)",
    "ExampleSync/3.0 (Windows NT 10.0; Win64; x64) {}",
    "ExampleApp/1.0 (HarmonyOS 4.0; {})",
]


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(NON_APPLE_PREFIXES),
    st.lists(st.sampled_from(APPLE_FRAGMENTS), min_size=1, max_size=4),
    st.sampled_from(["; ", " ", "/", "-", ""]),
)
def test_an_agent_naming_another_platform_is_never_apple(
    template: str, fragments: list[str], separator: str
) -> None:
    ua = template.format(separator.join(fragments))
    profile = identify(Signals(user_agent=ua))
    assert "Apple" not in profile.claimed("vendor"), (ua, profile.evidence)
