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


#: set by `make mutate` (scripts/mutate.py): property tests are left out of mutation runs
MUTATION_ENV = "DEVICEGATE_MUTATION"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under mutation testing, deselect the property tests (hypothesis): their examples are
    drawn at random, so whether one kills a mutant would not repeat from run to run, and
    they cost seconds per mutant. `make test` runs them as always."""
    if not os.environ.get(MUTATION_ENV):
        return
    kept, dropped = [], []
    for item in items:
        function = getattr(item, "obj", None)
        (dropped if getattr(function, "is_hypothesis_test", False) else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
