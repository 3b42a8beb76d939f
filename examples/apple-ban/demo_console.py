"""A fortnight of the scenario's traffic in a store, for the console (`make demo`).

Every decision is made by the same service `devicegate serve` runs (`decide` on the bundled
policy, with the state cache and quarantine holds) and written by its decision-log writer
process, with simulated times from Monday 10 to Sunday 23 July 2023 — the week before the
first wave's Monday and the week after. People use their inventory devices for mail and the
intranet on working days; Apple users move to their other device as the date comes closer,
a few keep trying after it, two mail clients lie about what they are (held for review), one
iPhone is found compromised by triage. The store is left in `out/console-demo.db` and the
command that opens the console on it is printed last.
"""

from __future__ import annotations

import asyncio
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUT = ROOT / "out"
STORE = OUT / "console-demo.db"
MOSCOW = ZoneInfo("Europe/Moscow")
FIRST_DAY = datetime(2023, 7, 10, tzinfo=MOSCOW)
DAYS = 14
REQUESTS_A_DAY = 3
#: the console's "now": Friday of the first week of the ban, end of the working day
CONSOLE_AT = "2023-07-21T18:00"

sys.path.insert(0, str(HERE))
from demo import ANDROID_CHROME, IPHONE_EAS, WINDOWS_EDGE  # noqa: E402

IPAD_SAFARI = (
    "Mozilla/5.0 (iPad; CPU OS 16_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/16.5 Mobile/15E148 Safari/604.1"
)
MAC_SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 13_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/16.5 Safari/605.1.15"
)
LINUX_FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0"


def _signals(device: object, resource: str) -> object:
    """What a service would see of this inventory device for `resource`."""
    from devicegate.model import Signals

    vendor = getattr(device, "vendor", None)
    platform = getattr(device, "platform", None)
    easid = getattr(device, "activesync_id", None)
    if vendor == "Apple" and platform == "iOS":
        if resource == "email" and easid:
            return Signals(
                user_agent=IPHONE_EAS, activesync_device_id=easid, activesync_device_type="iPhone"
            )
        return Signals(user_agent=IPHONE_EAS)
    agent = {
        ("Apple", "iPadOS"): IPAD_SAFARI,
        ("Apple", "macOS"): MAC_SAFARI,
        ("Lenovo", "Windows"): WINDOWS_EDGE,
        ("Lenovo", "Linux"): LINUX_FIREFOX,
    }.get((vendor, platform), ANDROID_CHROME)
    return Signals(user_agent=agent)


def _spoofed(easid: str) -> object:
    """A mail client that claims Android in its User-Agent and iPhone in ActiveSync."""
    from devicegate.model import Signals

    return Signals(
        user_agent=ANDROID_CHROME, activesync_device_id=easid, activesync_device_type="iPhone"
    )


async def _simulate(service: object, snapshot: object, rng: random.Random) -> int:
    from devicegate.adapters.forward_auth import ADAPTER
    from devicegate.server.service import ServerService

    assert isinstance(service, ServerService)
    by_user: dict[str, list[object]] = {}
    for device in snapshot.inventory:  # type: ignore[attr-defined]
        user = snapshot.directory.get(device.user) if device.user else None  # type: ignore[attr-defined]
        if user is not None:
            by_user.setdefault(user.id, []).append(device)
    # each Apple user switches on a day drawn around the wave's Monday; some never do
    switch_day = {user: rng.choice([2, 4, 5, 6, 7, 7, 8, 9, 10, 99]) for user in by_user}
    spoofers = sorted(by_user)[:2]
    made = 0
    service.log.start(asyncio.get_running_loop())
    for day in range(DAYS):
        date = FIRST_DAY + timedelta(days=day)
        if date.weekday() >= 5 and day % 7 != 5:  # weekends are quiet (a little on Saturday)
            continue
        for user, devices in by_user.items():
            apple = [d for d in devices if d.vendor == "Apple"]  # type: ignore[attr-defined]
            other = [d for d in devices if d.vendor != "Apple"]  # type: ignore[attr-defined]
            moved = day >= switch_day[user] and other
            pool = other if moved else (apple or other)
            for _ in range(REQUESTS_A_DAY):
                resource = rng.choice(["email", "email", "web"])
                at = date + timedelta(hours=rng.uniform(8, 19))
                device = rng.choice(pool)
                signals = _signals(device, resource)
                if user in spoofers and resource == "email" and day >= 7:
                    signals = _spoofed(f"SPOOF{user.upper().replace('.', '')[:20]}")
                service.prepare(user, resource, signals, adapter=ADAPTER, at=at.astimezone(UTC))
                made += 1
        await service.durable()
        print(f"   {date.date()}: {made} decisions so far", flush=True)
    await service.log.close()
    return made


def run() -> None:
    print("\n\033[1m== The console: a simulated fortnight around the first Monday\033[0m")
    sys.path.insert(0, str(ROOT / "src"))
    from devicegate.server.config import ServerConfig
    from devicegate.server.metrics import Metrics
    from devicegate.server.service import ServerService
    from devicegate.sources.inputs import Inputs
    from devicegate.store import open_store
    from devicegate.store.heartbeats import record_heartbeat
    from devicegate.store.rollups import RollupUpdater

    OUT.mkdir(exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{STORE}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{STORE}"
    policy, directory, devices = HERE / "policy.yaml", HERE / "directory.csv", HERE / "devices.csv"
    store = open_store(url)
    config = ServerConfig(policy=(policy,), directory=directory, devices=devices, store_url=url)
    service = ServerService(
        config, Inputs((policy,), directory, devices, store=store), store, Metrics()
    )
    snapshot = service.snapshot
    made = asyncio.run(_simulate(service, snapshot, random.Random(17)))
    # triage found one iPhone compromised (as `devicegate triage scan --quarantine` records it)
    phone = next(d for d in snapshot.inventory if d.vendor == "Apple" and d.serial)
    store.record_verdict(
        keys=[("serial", phone.serial or ""), ("device_id", phone.device_id)],
        verdict="compromised",
        evidence=[
            {"indicator": "process", "summary": "known spyware process name in DataUsage.sqlite"}
        ],
        scan_id="demo-scan-1",
        source="backup of 2023-07-18",
    )
    started = datetime(2023, 7, 10, 7, tzinfo=UTC)
    record_heartbeat(
        store,
        "gateway-1",
        policy_version=snapshot.version,
        started_at=started,
        software="devicegate demo",
        now=datetime(2023, 7, 21, 14, 59, tzinfo=UTC),
    )
    record_heartbeat(
        store,
        "mail-1",
        policy_version="0123456789ab",
        started_at=started,
        software="devicegate demo",
        now=datetime(2023, 7, 20, 9, 0, tzinfo=UTC),
    )
    rolled = RollupUpdater(
        store,
        lambda u: (snapshot.directory.get(u) or _Nobody).unit,
        str(snapshot.timezone),
        batch=10_000,
    ).catch_up()
    store.engine.dispose()
    shown = STORE.relative_to(ROOT)
    print(f"   {made} decisions by the serve service's writer, {rolled} rolled up, in {shown}")
    print("   open the console on it (then http://127.0.0.1:8282):")
    print(
        f"$ devicegate console --policy {policy.relative_to(ROOT)} "
        f"--directory {directory.relative_to(ROOT)} --devices {devices.relative_to(ROOT)} "
        f"--store sqlite:///{shown} --candidates {(HERE / 'candidates').relative_to(ROOT)} "
        f"--at {CONSOLE_AT} --dev-login operator"
    )


class _Nobody:
    unit = ""


if __name__ == "__main__":
    run()
