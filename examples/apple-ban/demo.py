"""Walk the bundled scenario end to end (`make demo`).

Every step is a real `devicegate` command, printed before it runs, so the output doubles as a
tutorial. Later parts (the web gateway, mail, audit, triage) live in `demo_<part>.py` beside
this file and run after the core walk-through when present.
"""

from __future__ import annotations

import importlib.util
import shlex
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEVICEGATE = str(Path(sys.executable).with_name("devicegate"))
POLICY = str(HERE / "policy.yaml")
DIRECTORY = str(HERE / "directory.csv")
DEVICES = str(HERE / "devices.csv")
COMMON = ["--policy", POLICY, "--directory", DIRECTORY, "--devices", DEVICES]

IPHONE_EAS = "Apple-iPhone14C2/2003.1.1"
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/16.5 Mobile/15E148 Safari/604.1"
)
ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.144 Mobile Safari/537.36"
)
WINDOWS_EDGE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91"
)
IOS_MAIL_ID = '("name" "iPhone Mail" "version" "20F66" "os" "iOS" "os-version" "16.5 (20F66)")'


def step(title: str) -> None:
    print(f"\n\033[1m== {title}\033[0m")


def run(*args: str, check: bool = True) -> int:
    shown = " ".join(
        shlex.quote(a if not a.startswith(str(ROOT)) else str(Path(a).relative_to(ROOT)))
        for a in args
    )
    print(f"$ devicegate {shown}")
    sys.stdout.flush()
    result = subprocess.run([DEVICEGATE, *args], check=False)
    if check and result.returncode not in (0,):
        raise SystemExit(f"demo step failed with exit code {result.returncode}")
    return result.returncode


def check(user: str, resource: str, at: str, *signals: str) -> None:
    run("check", *COMMON, "--quiet", "--user", user, "--resource", resource, "--at", at, *signals)


def core() -> None:
    step("1. The order, written down once: validate the policy (as of 1 July 2023)")
    run("validate", POLICY, "--directory", DIRECTORY, "--at", "2023-07-01")

    step("2. Before the Monday: who in each wave-1 unit still uses a banned device")
    run("impact", *COMMON, "--at", "2023-07-03", "--limit", "5")

    step("3. Identification from what services really see")
    run("identify", "--user-agent", IPHONE_EAS, "--activesync-device-type", "iPhone")
    run("identify", "--user-agent", ANDROID_CHROME, "--activesync-device-type", "iPhone")

    step("4. Decisions on the day (Monday 17 July 2023, Europe/Moscow)")
    check("i.petrov@minpromtorg.example", "email", "2023-07-03T09:00", "--user-agent", IPHONE_EAS)
    check(
        "m.sokolova@minpromtorg.example", "web", "2023-07-17T09:00", "--user-agent", ANDROID_CHROME
    )
    check("a.orlov@rostec.example", "web", "2023-07-17T09:00", "--user-agent", IPHONE_SAFARI)
    check("o.smirnova@mintsifry.example", "web", "2023-07-17T09:00", "--user-agent", IPHONE_SAFARI)
    check("d.kozlov@mintsifry.example", "web", "2023-07-17T09:00", "--user-agent", IPHONE_SAFARI)
    check("e.lebedeva@minfin.example", "email", "2023-08-14T09:00", "--imap-id", IOS_MAIL_ID)
    check("s.volkova@minfin.example", "email", "2023-08-14T09:00", "--imap-id", IOS_MAIL_ID)
    check("n.zaitseva@minzdrav.example", "web", "2023-07-17T09:00", "--user-agent", IPHONE_SAFARI)
    check("k.belov@rostec.example", "web", "2025-01-10T09:00", "--user-agent", WINDOWS_EDGE)

    step("5. Why? `explain` gives the reason chain for any decision")
    run(
        "explain",
        *COMMON,
        "--quiet",
        "--user",
        "i.petrov@minpromtorg.example",
        "--resource",
        "email",
        "--at",
        "2023-07-20T09:00",
        "--activesync-device-id",
        "AB12CD34EF56AB12CD34EF56AB12CD34",
        "--user-agent",
        IPHONE_EAS,
    )


def extensions() -> None:
    for part in ("edge", "mail", "audit", "triage", "console"):
        path = HERE / f"demo_{part}.py"
        if not path.exists():
            continue
        spec = importlib.util.spec_from_file_location(f"demo_{part}", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.run()


if __name__ == "__main__":
    core()
    extensions()
    print("\ndemo complete.")
