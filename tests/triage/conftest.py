"""Fixtures for triage tests: the bundled indicator sets and scenario backups."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from devicegate.triage import IndicatorIndex, ScanReport, load_indicators, scan_backup
from devicegate.triage.artefacts import Options

from .scenarios import PASSWORD, build


@pytest.fixture(scope="session")
def indicators() -> IndicatorIndex:
    return load_indicators()


@pytest.fixture
def make(tmp_path: Path) -> Callable[[str], Path]:
    """Build a named scenario under tmp_path and return its folder."""

    def factory(kind: str) -> Path:
        return build(kind, tmp_path / kind)

    return factory


@pytest.fixture
def scan(indicators: IndicatorIndex) -> Callable[..., ScanReport]:
    """Scan a folder with the bundled indicators and the scenarios' password."""

    def run(path: Path, *, options: Options | None = None, password: str = PASSWORD) -> ScanReport:
        return scan_backup(path, indicators, password=lambda: password, options=options)

    return run
