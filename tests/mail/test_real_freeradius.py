"""Real FreeRADIUS 3.2 with rlm_rest and the shipped deploy/freeradius configuration: Wi-Fi
requests from Apple, other and randomised MACs, a quarantined device and devicegate down."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from devicegate.adapters.base import LocalService
from devicegate.model import DeviceState
from tests.mail.conftest import APPLE_MAC, BANNED, OTHER_MAC, RANDOM_MAC, binary
from tests.mail.harness import endpoints, free_port, workdir
from tests.mail.servers import PASSWORD, Radius, real_freeradius

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def radius(service: LocalService) -> Iterator[Radius]:
    with (
        workdir("dg-radius-") as base,
        endpoints(service) as ep,
        real_freeradius(base, ep.url) as server,
    ):
        yield server


def access(server: Radius, user: str, station: str, port_type: str = "Wireless-802.11") -> str:
    """One Access-Request through radclient; its output (the reply's attributes)."""
    request = (
        f'User-Name = "{user}"\nUser-Password = "{PASSWORD}"\n'
        f'Calling-Station-Id = "{station}"\nNAS-Port-Type = {port_type}\n'
        'NAS-Identifier = "ap-3rd-floor"\n'
    )
    out = subprocess.run(
        [
            binary("radclient"),
            "-x",
            "-r",
            "1",
            "-t",
            "5",
            f"127.0.0.1:{server.port}",
            "auth",
            server.secret,
        ],
        input=request,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return out.stdout + out.stderr


def test_macs_decide_wifi_access(radius: Radius, service: LocalService) -> None:
    out = access(radius, BANNED, APPLE_MAC.upper().replace(":", "-"))
    assert "Received Access-Reject" in out
    assert 'Reply-Message = "Apple devices may no longer be used for work' in out
    for mac in (RANDOM_MAC, OTHER_MAC):
        assert "Received Access-Accept" in access(radius, BANNED, mac), mac
    # an unidentified device where only approved platforms may connect
    out = access(radius, "k.belov@rostec.example", RANDOM_MAC)
    assert "Received Access-Reject" in out and "domestic platforms" in out
    # only the MAC that identified a device is a sighting (a randomised address and a chip
    # maker's prefix say nothing, and must not hide one that did)
    (seen,) = service.sightings["m.sokolova"]
    assert seen.profile.vendor == "Apple"
    assert {entry[2] for entry in service.log} == {"wifi"}


def test_compromised_device_goes_to_the_quarantine_vlan(
    radius: Radius, service: LocalService
) -> None:
    service.states["mac:" + OTHER_MAC] = DeviceState(compromised=True, verdict="compromised")
    out = access(radius, BANNED, OTHER_MAC)
    assert "Received Access-Accept" in out
    assert 'Tunnel-Private-Group-Id:0 = "999"' in out or 'Tunnel-Private-Group-Id = "999"' in out
    assert "Tunnel-Type" in out and "Reply-Message" in out


def test_vpn_request_without_a_mac(radius: Radius, service: LocalService) -> None:
    assert "Received Access-Accept" in access(radius, BANNED, "198.51.100.20", "Virtual")
    assert service.log[-1][2] == "vpn"


def test_devicegate_down_rejects() -> None:
    with (
        workdir("dg-radius-") as base,
        real_freeradius(base, f"http://127.0.0.1:{free_port()}") as server,
    ):
        assert "Received Access-Reject" in access(server, BANNED, OTHER_MAC)
