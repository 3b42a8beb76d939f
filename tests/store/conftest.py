"""The store every rollup, retention and raw-row test runs on: SQLite, and PostgreSQL (a
throw-away cluster; under CI=true it must be installed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devicegate.store import Store, open_store
from tests.server import procs


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        yield open_store(f"sqlite:///{tmp_path}/store.db")
        return
    with procs.postgres(tmp_path / "pg") as url:
        opened = open_store(url)
        try:
            yield opened
        finally:
            opened.engine.dispose()
