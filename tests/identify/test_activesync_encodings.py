"""ActiveSync base64 queries as clients and proxies really send them: percent-encoded
(`%2B`, `%2F`, `%3D`) and in the URL-safe alphabet (`-`, `_`, padding dropped).

Each form must still identify the iPhone — through the identify API and through the
forward-auth adapter's `parse`, which is how `serve` receives it. An encoded query that
fails to decode leaves the device unidentified, which a deny-list rule lets through.
"""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest

from devicegate.adapters.forward_auth import parse
from devicegate.identify import identify, parse_activesync_query
from devicegate.model import Signals

#: Bytes chosen so that standard base64 contains `+` and `/` and ends in `=` padding:
#: 0xFB 0xEF 0xFF at a multiple of three bytes encode as `++//`. Layout per [MS-ASHTTP]
#: 2.2.1.1.1.1: version 14.1, Sync, locale en-US, a 16-byte binary DeviceId, no policy key,
#: DeviceType, User.
DEVICE_ID = bytes([0x00] + [0xFB, 0xEF, 0xFF] * 5)
USER = "i.petrov@minpromtorg.example"


def _raw(device_type: str = "iPhone") -> bytes:
    out = bytes([141, 0]) + (0x0409).to_bytes(2, "little")
    out += bytes([len(DEVICE_ID)]) + DEVICE_ID
    out += bytes([0])
    out += bytes([len(device_type)]) + device_type.encode()
    out += bytes([8, len(USER)]) + USER.encode()
    return out


STANDARD = base64.b64encode(_raw()).decode()
assert "+" in STANDARD and "/" in STANDARD and STANDARD.endswith("=")

FORMS = {
    "percent-encoded (%2B %2F %3D)": quote(STANDARD, safe=""),
    "padding only percent-encoded": STANDARD.replace("=", "%3D"),
    "lower-case percent escapes": quote(STANDARD, safe="")
    .replace("%2B", "%2b")
    .replace("%2F", "%2f")
    .replace("%3D", "%3d"),
    "url-safe alphabet with padding": base64.urlsafe_b64encode(_raw()).decode(),
    "url-safe alphabet, padding dropped": base64.urlsafe_b64encode(_raw()).decode().rstrip("="),
    "url-safe with percent-encoded padding": base64.urlsafe_b64encode(_raw())
    .decode()
    .replace("=", "%3D"),
}


def test_the_forms_differ_from_standard_base64() -> None:
    """Guard for the test itself: every form needs its decoding step."""
    assert "%2B" in FORMS["percent-encoded (%2B %2F %3D)"]
    assert "%2F" in FORMS["percent-encoded (%2B %2F %3D)"]
    assert "%3D" in FORMS["percent-encoded (%2B %2F %3D)"]
    for name in ("url-safe alphabet with padding", "url-safe alphabet, padding dropped"):
        assert "-" in FORMS[name] and "_" in FORMS[name] and "+" not in FORMS[name]


@pytest.mark.parametrize("form", sorted(FORMS))
def test_encoded_query_parses(form: str) -> None:
    query = parse_activesync_query(FORMS[form])
    assert query.encoded and query.device_type == "iPhone" and query.user == USER
    assert query.device_id == DEVICE_ID.hex().upper()


@pytest.mark.parametrize("form", sorted(FORMS))
def test_encoded_query_identifies_the_iphone(form: str) -> None:
    profile = identify(Signals(activesync_query=FORMS[form]))
    assert profile.vendor == "Apple" and profile.platform == "iOS", profile.evidence
    assert profile.device_id == DEVICE_ID.hex().upper()


@pytest.mark.parametrize("form", sorted(FORMS))
def test_encoded_query_through_the_forward_auth_adapter(form: str) -> None:
    """The adapter checks the query as it parses (a query it cannot decode is a 400), and
    passes it on for identification."""
    target = "/Microsoft-Server-ActiveSync?" + FORMS[form]
    headers = {"x-original-uri": target, "user-agent": "ExampleEAS/1.0", "x-devicegate-user": USER}
    request = parse("email", headers)
    assert request.signals.activesync_query == FORMS[form]
    profile = identify(request.signals)
    assert profile.vendor == "Apple" and profile.platform == "iOS", profile.evidence
    assert profile.key("activesync_id") == DEVICE_ID.hex().upper()


def test_envoy_style_path_and_query() -> None:
    """Envoy passes the original path and query separately; the query keeps its escapes."""
    request = parse(
        "email",
        {"x-devicegate-user": USER},
        extra_path="/Microsoft-Server-ActiveSync",
        query=FORMS["percent-encoded (%2B %2F %3D)"],
    )
    assert identify(request.signals).vendor == "Apple"
