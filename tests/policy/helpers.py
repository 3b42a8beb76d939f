"""Build small policies, directories and profiles for engine tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from devicegate.directory import Directory, User
from devicegate.model import Conflict, DeviceKind, DeviceProfile, Ownership, Request, Trust
from devicegate.policy import Snapshot, compile_policy, load_policy

USERS = [
    User("alice", "gov/minfin/budget", frozenset(), "alice@minfin.example"),
    User("bob", "gov/mintsifry/ios-lab", frozenset({"ios-developers"})),
    User("carol", "gov/mintsifry/platforms", frozenset()),
    User("dave", "rostec/cii", frozenset()),
    User("erin", "gov/minzdrav", frozenset()),
]
UNITS = [
    "gov/minfin/budget",
    "gov/mintsifry/ios-lab",
    "gov/mintsifry/platforms",
    "rostec/cii",
    "gov/minzdrav",
]


def write_policy(tmp: Path, data: dict[str, Any], name: str = "policy.yaml") -> Path:
    data = {"timezone": "Europe/Moscow", "units": UNITS, **data}
    path = tmp / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def snapshot(tmp: Path, data: dict[str, Any], users: list[User] | None = None) -> Snapshot:
    path = write_policy(tmp, data)
    return compile_policy(load_policy([path]), Directory(users or USERS))


def rule(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "ban",
        "scope": {"units": ["gov"]},
        "when": {"vendor": ["Apple"]},
        "resources": ["all"],
        "from": "2023-07-17",
        "effect": "block",
        "message": "no Apple devices for work",
    }
    base.update(over)
    return base


def exception(**over: Any) -> dict[str, Any]:
    """An exception for alice lifting `ban` to the end of 1 September 2023, as overridden."""
    base: dict[str, Any] = {
        "user": "alice",
        "rules": ["ban"],
        "until": "2023-09-01",
        "reason": "replacement on order",
    }
    base.update(over)
    return base


def profile(
    vendor: str | None = "Apple",
    platform: str | None = "iOS",
    *,
    more: dict[str, tuple[str, ...]] | None = None,
    trust: Trust = Trust.REPORTED,
    managed: bool | None = None,
    ownership: Ownership = Ownership.UNKNOWN,
    conflicts: tuple[Conflict, ...] = (),
    device_id: str | None = None,
) -> DeviceProfile:
    claims: dict[str, tuple[str, ...]] = {}
    if vendor:
        claims["vendor"] = (vendor,)
    if platform:
        claims["platform"] = (platform,)
    for key, values in (more or {}).items():
        claims[key] = values
    return DeviceProfile(
        vendor=vendor,
        platform=platform,
        kind=DeviceKind.HANDSET if vendor else DeviceKind.UNKNOWN,
        trust=trust if vendor or platform else None,
        managed=managed,
        ownership=ownership,
        claims=tuple(claims.items()),
        conflicts=conflicts,
        device_id=device_id,
        keys=(("device_id", device_id),) if device_id else (),
    )


def at(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        from zoneinfo import ZoneInfo

        value = value.replace(tzinfo=ZoneInfo("Europe/Moscow"))
    return value.astimezone(UTC)


def request(user: str, resource: str, when: str, prof: DeviceProfile) -> Request:
    return Request(user=user, resource=resource, at=at(when), profile=prof)
