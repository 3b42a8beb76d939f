"""The parsers adapters use directly: they raise SignalError on malformed input."""

from __future__ import annotations

import base64

import pytest

from devicegate.errors import SignalError
from devicegate.identify import (
    ActiveSyncQuery,
    normalise_mac,
    parse_activesync_query,
    parse_imap_id,
)
from devicegate.identify.apple import decode_exchange_build, version_from_build
from devicegate.identify.mac import TABLE

# ActiveSync ---------------------------------------------------------------------------


def test_plain_query() -> None:
    query = parse_activesync_query(
        "Cmd=Sync&User=rmjones%40example.org&DeviceId=v140Device&DeviceType=SmartPhone"
    )
    assert query == ActiveSyncQuery(
        cmd="Sync",
        user="rmjones@example.org",
        device_id="v140Device",
        device_type="SmartPhone",
        protocol_version=None,
        encoded=False,
    )


def test_spec_base64_example() -> None:
    query = parse_activesync_query(
        "/Microsoft-Server-ActiveSync?jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l"
    )
    assert query == ActiveSyncQuery("Sync", None, "v140Device", "SmartPhone", "14.0", True)


def test_base64_with_policy_key_user_and_binary_device_id() -> None:
    raw = (
        bytes([161, 17])
        + (0x0407).to_bytes(2, "little")
        + bytes([16])
        + bytes(range(16))
        + bytes([4])
        + (3942919513).to_bytes(4, "little")
        + bytes([6])
        + b"iPhone"
        + bytes([7, 1, 0x01])
        + bytes([8, 11])
        + b"a@b.example"
    )
    query = parse_activesync_query(base64.b64encode(raw).decode())
    assert query.protocol_version == "16.1" and query.cmd == "Settings"
    assert query.device_id == bytes(range(16)).hex().upper()
    assert query.device_type == "iPhone" and query.user == "a@b.example"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("jAAJBAp2MTQwRGV2", "ends inside"),
        ("!!!notbase64", "neither"),
        ("Cmd", "ends inside"),
        ("foo=bar", "names neither"),
        (base64.b64encode(bytes([140, 0, 9, 4, 0])).decode(), "empty"),
        (base64.b64encode(bytes([140, 0, 9, 4, 1, 65, 3])).decode(), "policy key length"),
        ("x" * 5000, "longer"),
    ],
)
def test_malformed_queries_raise_signal_error(text: str, message: str) -> None:
    with pytest.raises(SignalError, match=message):
        parse_activesync_query(text)


# Exchange build strings ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "build"),
    [("705.018", "7E18"), ("1504.100", "15D100"), ("508.01100001", "5H11a"), ("2003.1.1", "20C")],
)
def test_exchange_build_decoding(text: str, build: str) -> None:
    decoded = decode_exchange_build(text)
    assert decoded is not None and decoded[0] == build


@pytest.mark.parametrize(
    ("build", "platform", "version"),
    [
        ("20F66", "iOS", "16.5"),
        ("21A329", "iOS", "17.0"),
        ("22C161", "iOS", "18.2"),
        ("23B85", "iOS", "26.1"),
        ("15D100", "iOS", "11"),
        ("23A344", "macOS", "14.0"),
        ("22F66", "macOS", "13"),
        ("16A323", "macOS", "10.12"),
        ("20S75", "watchOS", "9"),
    ],
)
def test_build_trains(build: str, platform: str, version: str) -> None:
    assert version_from_build(build, platform) == version


# IMAP ID ------------------------------------------------------------------------------


def test_imap_id_quoted_escapes_literals_nil_and_case() -> None:
    text = '("Name" "a \\"quoted\\" \\\\ name" "os" NIL "x-note" {5}\r\nhe)lo "VERSION" "1")'
    assert parse_imap_id(text) == {"name": 'a "quoted" \\ name', "x-note": "he)lo", "version": "1"}


def test_imap_id_dovecot_form_and_command_line() -> None:
    assert parse_imap_id('"name" "iPhone Mail" "os" "iOS"') == {"name": "iPhone Mail", "os": "iOS"}
    assert parse_imap_id('a2 ID ("name" "Mac OS X Mail")') == {"name": "Mac OS X Mail"}
    assert parse_imap_id("NIL") == {} and parse_imap_id("()") == {}


def test_imap_id_first_value_of_a_repeated_field_wins() -> None:
    assert parse_imap_id('("name" "a" "NAME" "b")') == {"name": "a"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('("name" "unterminated)', "unterminated"),
        ('("name")', "no value"),
        ('("name" "x" "os")', "no value"),
        ('("name" bare)', "not a quoted string"),
        ('(NIL "x")', "field name is NIL"),
        ('("a" "b\\n")', "invalid escape"),
        ('("a" "b\r\nc")', "line break"),
        ('("name" "x"', "does not close"),
        ('("a" {9}\r\nabc)', "shorter"),
        ('("a" {3}abc)', "malformed literal"),
        ('("' + "k" * 31 + '" "v")', "longer than 30"),
        ('("k" "' + "v" * 1025 + '")', "longer than 1024"),
        ("(" + " ".join(f'"k{i}" "v"' for i in range(31)) + ")", "more than 30"),
        ('("a" "b""c" "d")', "junk"),
    ],
)
def test_malformed_imap_id_raises_signal_error(text: str, message: str) -> None:
    with pytest.raises(SignalError, match=message):
        parse_imap_id(text)


# MAC ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "3C:22:FB:12:34:56",
        "3c-22-fb-12-34-56",
        "3c22.fb12.3456",
        "3c22fb123456",
        "3C22FB-123456",
        "0x3c22fb123456",
        " 3c 22 fb 12 34 56 ",
    ],
)
def test_mac_notations(text: str) -> None:
    assert normalise_mac(text) == "3c:22:fb:12:34:56"


def test_mac_dropped_leading_zeros() -> None:
    assert normalise_mac("0:1a:b:c:d:e") == "00:1a:0b:0c:0d:0e"


@pytest.mark.parametrize(
    "text", ["", "3c:22:fb:12:34", "3c:22:fb:12:34:5g", "3c22fb12345", "x" * 40]
)
def test_bad_macs_raise(text: str) -> None:
    with pytest.raises(SignalError):
        normalise_mac(text)


def test_ieee_table_is_loaded_and_says_where_it_came_from() -> None:
    assert len(TABLE) > 40_000
    assert TABLE.error is None
    assert "IEEE" in TABLE.header and "ieee-data" in TABLE.header
    assert TABLE.lookup("3c:22:fb:00:00:00") == ("Apple, Inc.", "MA-L")
