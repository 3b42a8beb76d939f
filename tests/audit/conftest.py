"""Fixtures for the audit tests: a small policy and directory, and the binary helper."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from devicegate.directory import Directory, User
from devicegate.policy import Snapshot, compile_policy, load_policy
from tests.conftest import require

POLICY = {
    "timezone": "Europe/Moscow",
    "units": ["gov/minpromtorg", "gov/minfin", "gov/mincult", "gov/mintsifry/ios-lab"],
    "rules": [
        {
            "id": "wave-1",
            "scope": {"units": ["gov/minpromtorg", "gov/mintsifry"]},
            "when": {"vendor": ["Apple"]},
            "resources": ["all"],
            "from": "2023-07-17",
            "notice": "14d",
            "effect": "block",
            "message": "no Apple devices for work",
        },
        {
            "id": "lab",
            "scope": {"units": ["gov/mintsifry/ios-lab"]},
            "when": {"vendor": ["Apple"]},
            "resources": ["all"],
            "from": "2023-07-17",
            "effect": "allow",
        },
        {
            "id": "wave-2-mail",
            "scope": {"units": ["gov/minfin"]},
            "when": {"vendor": ["Apple"]},
            "resources": ["email"],
            "from": "2023-07-24",
            "effect": "block",
        },
        {
            "id": "preview",
            "scope": {"units": ["gov/mincult"]},
            "when": {"vendor": ["Apple"]},
            "resources": ["all"],
            "from": "2023-07-17",
            "effect": "block",
            "mode": "report-only",
        },
    ],
    "exceptions": [
        {
            "user": "petrov@minfin.example",
            "rules": ["wave-2-mail"],
            "until": "2023-07-27",
            "notice": "3d",  # its last days (25-27 July) warn: the audit must agree
            "reason": "replacement on order",
        }
    ],
}

USERS = [
    User("ivanov", "gov/minpromtorg", frozenset(), "ivanov@minpromtorg.example"),
    User("petrov", "gov/minfin", frozenset(), "petrov@minfin.example"),
    User("sidorova", "gov/minfin", frozenset(), "sidorova@minfin.example"),
    User("kuznetsova", "gov/mincult", frozenset(), "kuznetsova@mincult.example"),
    User("labrat", "gov/mintsifry/ios-lab", frozenset(), "labrat@mintsifry.example"),
]

IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/16.5 Mobile/15E148 Safari/604.1"
)
ANDROID_UA = (
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/114.0.0.0 Mobile Safari/537.36"
)
WINDOWS_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/114.0.0.0 Safari/537.36"
)


def write_world(tmp: Path) -> tuple[Path, Path]:
    """The policy and directory files (for CLI tests)."""
    policy = tmp / "policy.yaml"
    policy.write_text(yaml.safe_dump(POLICY, sort_keys=False), encoding="utf-8")
    directory = tmp / "directory.csv"
    lines = ["user,unit,groups,email,name"]
    lines += [f"{u.id},{u.unit},,{u.email},{u.id}" for u in USERS]
    directory.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return policy, directory


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path]:
    return write_world(tmp_path)


@pytest.fixture
def snapshot(world: tuple[Path, Path]) -> Snapshot:
    return compile_policy(load_policy([world[0]]), Directory(USERS))


def require_binary(name: str) -> str:
    """The path of a program the test needs: skip without it, fail under CI=true."""
    found = shutil.which(name)
    require(found is not None, f"`{name}` is not installed (scripts/deps/audit.txt)")
    assert found is not None
    return found
