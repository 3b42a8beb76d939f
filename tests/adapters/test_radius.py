"""The FreeRADIUS rlm_rest adapter with the in-process service."""

from __future__ import annotations

import json
import logging

import pytest

from devicegate.adapters import radius
from devicegate.adapters.base import LocalService
from devicegate.errors import SignalError
from devicegate.model import DeviceState
from tests.mail.conftest import APPLE_MAC, BANNED, OTHER_MAC, RANDOM_MAC

SECRET = "s3cret-Passw0rd"


def body(user: str = BANNED, mac: str | None = None, port: str = "Wireless-802.11") -> bytes:
    attrs: dict[str, object] = {
        "User-Name": {"type": "string", "value": [user]},
        "User-Password": {"type": "string", "value": [SECRET]},
        "NAS-IP-Address": {"type": "ipaddr", "value": ["127.0.0.1"]},
        "NAS-Port-Type": {"type": "integer", "value": [port]},
    }
    if mac is not None:
        attrs["Calling-Station-Id"] = {"type": "string", "value": [mac]}
    return json.dumps(attrs).encode()


def test_apple_mac_is_rejected_with_reply_message(service: LocalService) -> None:
    status, reply = radius.answer(service, body(mac=APPLE_MAC.upper().replace(":", "-")))
    assert status == 401
    assert "Apple devices" in str(reply["reply:Reply-Message"])
    (entry,) = service.log
    assert entry[2] == "wifi"


def test_randomised_and_other_macs_are_not_taken_for_apple(service: LocalService) -> None:
    for mac in (RANDOM_MAC, OTHER_MAC):
        status, reply = radius.answer(service, body(mac=mac))
        assert (status, reply) == (200, {}), mac
        assert service.log[-1][3].device.vendor is None
    notes = " ".join(e.note for e in service.log[0][3].device.evidence)
    assert "randomised" in notes


def test_inventory_mac_of_an_excepted_device_and_vpn(service: LocalService) -> None:
    # the corpus inventory's Aurora phone: a domestic platform, allowed everywhere
    status, _ = radius.answer(service, body("k.belov@rostec.example", "00:e0:4c:11:22:33"))
    assert status == 200
    radius.answer(service, body(port="Virtual", mac="198.51.100.9"))
    assert service.log[-1][2] == "vpn"
    assert service.log[-1][3].device.vendor is None


def test_unidentified_device_in_cii_is_rejected(service: LocalService) -> None:
    status, reply = radius.answer(service, body("k.belov@rostec.example", RANDOM_MAC))
    assert status == 401 and "domestic platforms" in str(reply["reply:Reply-Message"])


def test_quarantine_goes_to_the_quarantine_vlan(service: LocalService) -> None:
    service.states["mac:" + APPLE_MAC] = DeviceState(compromised=True, verdict="compromised")
    status, reply = radius.answer(service, body(mac=APPLE_MAC), quarantine_vlan="666")
    assert status == 200
    assert reply["reply:Tunnel-Private-Group-Id"] == "666"
    assert reply["reply:Tunnel-Type"] == "VLAN"
    assert "Reply-Message" in " ".join(reply)


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"nope",
        b"[]",
        b"{}",
        b'{"User-Name": {"value": []}}',
        b'{"User-Name": {"value": [{}]}}',
    ],
)
def test_malformed_requests_are_rejected(service: LocalService, bad: bytes) -> None:
    status, reply = radius.answer(service, bad)
    assert status == 401 and reply["reply:Reply-Message"] == radius.MALFORMED_MESSAGE
    assert service.log == []


def test_the_password_is_never_logged_or_returned(
    service: LocalService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    replies = [radius.answer(service, body(mac=m)) for m in (APPLE_MAC, RANDOM_MAC)]
    replies.append(radius.answer(service, body()[:-3]))
    assert SECRET not in caplog.text
    assert SECRET not in json.dumps(replies)
    assert all(SECRET not in repr(entry) for entry in service.log)


def test_a_body_of_exactly_the_limit_is_read() -> None:
    """`MAX_BODY` octets are read (and judged as JSON); one more is refused unread."""

    def refusal(size: int) -> str:
        with pytest.raises(SignalError) as refused:
            radius.parse_request(b" " * (size - 2) + b"[]")
        return refused.value.message

    assert refusal(radius.MAX_BODY) != refusal(radius.MAX_BODY + 1)
    assert refusal(radius.MAX_BODY + 1) == f"radius request is longer than {radius.MAX_BODY} bytes"
