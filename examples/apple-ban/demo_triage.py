"""Demo, part 4: triage two iPhone backups and cut the compromised phone off everywhere.

The backups are synthetic (built by the test suite's documented-format builder): one clean,
one with Operation Triangulation's exact trace (BackupAgent network use). The compromised
phone is i.petrov's `EXDEV-MPT-0001`, which holds an exception from the wave-1 ban: the
compromise verdict overrides it on every resource.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEVICEGATE = str(Path(sys.executable).with_name("devicegate"))


def run() -> None:
    sys.path.insert(0, str(ROOT))
    from tests.triage.scenarios import PASSWORD, build

    from devicegate.directory import load_directory
    from devicegate.inventory import load_inventory
    from devicegate.model import Request, Signals
    from devicegate.policy import compile_policy, decide, load_policy
    from devicegate.store import open_store

    print(
        "\n\033[1m== 9. Triage: two iPhone backups against Triangulation and published IOCs\033[0m"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store_url = f"sqlite:///{work / 'devicegate.db'}"
        env = {**os.environ, "BACKUP_PW": PASSWORD}
        for name, device in (("clean", "DEV-ORLOV-1"), ("triangulation", "EXDEV-MPT-0001")):
            backup = build(name, work / name)
            args = [
                "triage",
                "scan",
                str(backup),
                "--password-env",
                "BACKUP_PW",
                "--store",
                store_url,
                "--quarantine",
                "--device",
                device,
            ]
            print(
                f"$ devicegate {' '.join(args[:2])} <{name} backup> --password-env BACKUP_PW "
                f"--store … --quarantine --device {device}"
            )
            result = subprocess.run(
                [DEVICEGATE, *args], env=env, capture_output=True, text=True, check=False
            )
            print(
                f"  exit {result.returncode}: "
                + (result.stdout.strip().splitlines() or [result.stderr.strip()])[0]
            )

        print("\nThe compromised phone (which had an exception) is now refused on every resource:")
        snapshot = compile_policy(
            load_policy([HERE / "policy.yaml"]),
            load_directory(HERE / "directory.csv"),
            load_inventory(HERE / "devices.csv"),
        )
        store = open_store(store_url)
        signals = Signals(
            user_agent="Apple-iPhone14C2/2003.1.1",
            activesync_device_id="AB12CD34EF56AB12CD34EF56AB12CD34",
        )
        profile = snapshot.identifier.profile(signals)
        state = store.device_state(profile.keys)
        when = datetime(2023, 7, 20, 9, tzinfo=ZoneInfo("Europe/Moscow"))
        for resource in ("email", "web", "vpn", "wifi", "messaging", "files"):
            decision = decide(
                snapshot, Request("i.petrov@minpromtorg.example", resource, when, signals), state
            )
            print(f"  {resource:<10} {decision.action.value:<11} {decision.rule}")
        plain = decide(snapshot, Request("i.petrov@minpromtorg.example", "email", when, signals))
        ending = (
            f" until {plain.effective_from.date()}, when the ban resumes"
            if plain.effective_from
            else ""
        )
        print(
            f"  (the same phone without the verdict: {plain.action.value} — its exception "
            f"applies{ending})"
        )
