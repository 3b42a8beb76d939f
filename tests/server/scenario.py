"""A small policy and directory for the server tests, dated relative to today so that every
effect is live: block (Apple on web), warn (Windows on web from next week), quarantine
(conflicting ActiveSync signals on email)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

OPS = "alice@ops.example"
LAB = "bob@lab.example"

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
IPHONE_EAS = "Apple-iPhone14C2/2003.1.1"
ANDROID_EAS = "Android-Mail/2023.10.29.584035470.Release"

BLOCK_MESSAGE = "Apple devices may no longer be used for work. Personal use: «not affected»."


def policy_text(*, block_effect: str = "block") -> str:
    soon = (datetime.now(UTC) + timedelta(days=7)).date().isoformat()
    return f"""version: 1
name: edge-test
timezone: UTC
units: [corp/ops, corp/lab]
resources:
  web: {{description: intranet}}
  email: {{description: ActiveSync}}
rules:
  - id: no-apple-web
    scope: {{units: [corp/ops]}}
    when: {{vendor: [Apple]}}
    resources: [web]
    from: 2020-01-01
    effect: {block_effect}
    message: "{BLOCK_MESSAGE}"
  - id: windows-soon
    scope: {{units: [corp/ops]}}
    when: {{platform: [Windows]}}
    resources: [web]
    from: {soon}
    notice: 30d
    effect: block
    message: Windows laptops leave work use on {soon}.
  - id: spoof-hold
    scope: {{units: [corp/ops]}}
    when: {{spoofing_suspected: true}}
    resources: [email]
    from: 2020-01-01
    effect: quarantine
    message: Conflicting device signals; the device is held for review.
"""


DIRECTORY = f"""user,unit,groups,email,name
alice,corp/ops,,{OPS},Alice
bob,corp/lab,,{LAB},Bob
"""


def write_scenario(root: Path) -> tuple[Path, Path]:
    root.mkdir(parents=True, exist_ok=True)
    policy = root / "policy.yaml"
    policy.write_text(policy_text(), encoding="utf-8")
    directory = root / "directory.csv"
    directory.write_text(DIRECTORY, encoding="utf-8")
    return policy, directory


def plain_eas(device_id: str, device_type: str, user: str = "alice") -> str:
    return (
        f"/Microsoft-Server-ActiveSync?Cmd=Sync&User={user}&DeviceId={device_id}"
        f"&DeviceType={device_type}"
    )


def base64_eas(device_id: str, device_type: str) -> str:
    """[MS-ASHTTP] base64 query: version 14.1, Sync, en-US, no policy key."""
    import base64

    raw = bytes([141, 0]) + (0x0409).to_bytes(2, "little")
    raw += bytes([len(device_id)]) + device_id.encode() + bytes([0])
    raw += bytes([len(device_type)]) + device_type.encode()
    return "/Microsoft-Server-ActiveSync?" + base64.b64encode(raw).decode()
