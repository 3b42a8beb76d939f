"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os

import pytest


def require(condition: bool, reason: str) -> None:
    """Skip when a real part (server, data file) is missing — but fail under CI=true, where the
    project's scripts must have installed it."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)
