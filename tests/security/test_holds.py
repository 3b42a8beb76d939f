"""A user could quarantine someone else's phone by sending its ActiveSync DeviceId with
contradictory signals: the hold landed on the colleague's inventory device. A hold now lands
on an inventory device only when the request's link to it is attested or the inventory says
the device is the requesting user's; otherwise it holds what was actually seen — this user
presenting these identifiers (docs/security.md, "Holds")."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.server import procs
from tests.server.scenario import ANDROID_EAS, LAB, OPS, write_scenario

pytestmark = [pytest.mark.integration]


def eas(client: httpx.Client, user: str, device_id: str, device_type: str) -> int:
    uri = f"/Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId={device_id}&DeviceType={device_type}"
    headers = {"X-Devicegate-User": user, "User-Agent": ANDROID_EAS, "X-Original-URI": uri}
    return client.get("/v1/forward-auth/email", headers=headers).status_code


def test_a_colleagues_device_id_holds_only_the_one_who_sent_it(tmp_path: Path) -> None:
    policy, directory = write_scenario(tmp_path / "s")
    devices = tmp_path / "devices.csv"
    devices.write_text(
        "device_id,user,vendor,platform,model,activesync_id,mac\n"
        f"phone-bob,{LAB},Samsung,Android,SM-S911B,BOBDEV,00:11:22:33:44:55\n"
        f"phone-alice,{OPS},Samsung,Android,SM-A546B,ALICEDEV,00:11:22:33:44:66\n"
        "phone-pool,,Samsung,Android,SM-A146B,POOLDEV,00:11:22:33:44:77\n"
    )
    url = f"sqlite:///{tmp_path}/dg.db"
    extra = ("--devices", str(devices))
    with procs.devicegate(tmp_path, policy, directory, url, extra=extra) as dg, dg.client() as c:
        assert eas(c, LAB, "BOBDEV", "Android") == 200
        # alice (under `spoof-hold`) sends bob's DeviceId claiming an iPhone: quarantined...
        assert eas(c, OPS, "BOBDEV", "iPhone") == 403
        assert eas(c, OPS, "BOBDEV", "Android") == 403  # ...and held, for her
        # ...but bob's own, unchanged requests still connect
        assert eas(c, LAB, "BOBDEV", "Android") == 200
        # a shared pool device nobody owns is held only for the one it was seen with too
        assert eas(c, OPS, "POOLDEV", "iPhone") == 403
        assert eas(c, LAB, "POOLDEV", "Android") == 200
        # alice's own device: the inventory says it is hers, so the whole device is held,
        # whoever presents it
        assert eas(c, OPS, "ALICEDEV", "iPhone") == 403
        assert eas(c, LAB, "ALICEDEV", "Android") == 403
        devices_held = c.get("/v1/admin/devices?restricted=1", headers=dg.admin()).json()
    holds = {d["device_ref"]: d for d in devices_held["devices"]}
    assert len(holds) == 3
    kinds = sorted(sorted({k["kind"] for k in d["keys"]}) for d in holds.values())
    assert ["activesync_id", "device_id", "mac"] in kinds  # phone-alice, by every identifier
    assert kinds.count(["user+activesync_id"]) == 2  # what alice was seen presenting


def test_no_device_in_the_inventory_is_held_for_its_user_alone(tmp_path: Path) -> None:
    """Without an inventory, a DeviceId someone else also uses is never held for them."""
    policy, directory = write_scenario(tmp_path / "s")
    url = f"sqlite:///{tmp_path}/dg.db"
    with procs.devicegate(tmp_path, policy, directory, url) as dg, dg.client() as c:
        assert eas(c, OPS, "SHARED1", "iPhone") == 403
        assert eas(c, OPS, "SHARED1", "Android") == 403
        assert eas(c, LAB, "SHARED1", "Android") == 200
