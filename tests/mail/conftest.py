"""Fixtures for the mail and network adapters: the bundled policy over the test corpus, an
in-process service, and the helpers the integration tests use to find and stop real servers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from devicegate.adapters.base import LocalService
from devicegate.cli.common import load_snapshot
from devicegate.policy import Snapshot
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "examples" / "apple-ban" / "policy.yaml"
DIRECTORY = ROOT / "tests" / "corpus" / "directory.csv"
DEVICES = ROOT / "tests" / "corpus" / "devices.csv"

IOS_MAIL = '("name" "iPhone Mail" "version" "20C65" "os" "iOS" "os-version" "16.2 (20C65)")'
MACOS_MAIL = (
    '("name" "Mac OS X Mail" "version" "16.0 (3731.500.231)" "os" "macOS" '
    '"os-version" "13.4 (22F66)")'
)
THUNDERBIRD = '("name" "Thunderbird" "version" "115.3.1")'

BANNED = "m.sokolova@minpromtorg.example"  # wave 1 unit, no exception
APPLE_MAC = "3c:22:fb:02:8f:01"  # Apple MA-L prefix, not in the inventory
RANDOM_MAC = "3e:22:fb:02:8f:01"  # locally administered: randomised
OTHER_MAC = "00:e0:4c:12:34:56"  # Realtek: a chip maker, says nothing


@pytest.fixture(scope="session")
def snapshot() -> Snapshot:
    return load_snapshot([POLICY], DIRECTORY, DEVICES, quiet=True)


@pytest.fixture
def service(snapshot: Snapshot) -> LocalService:
    return LocalService(snapshot)


def binary(name: str, *candidates: str) -> str:
    """Path of a server binary; skip (fail under CI=true) when it is not installed."""
    for candidate in (name, *candidates):
        found = shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
        if found:
            return found
    require(False, f"`{name}` is not installed (bash scripts/system-deps.sh installs it)")
    raise AssertionError("unreachable")
