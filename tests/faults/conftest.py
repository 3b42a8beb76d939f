"""Fixtures of the fault tests: the figures they report to `benchmarks/soak.py`."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

#: set by `benchmarks/soak.py`: each fault test adds its figures to this JSON-lines file
REPORT = "DEVICEGATE_FAULTS_REPORT"

Record = Callable[..., None]


@pytest.fixture
def record() -> Record:
    """`record(name, **figures)`: one JSON line to the report file, when one is asked for."""

    def write(name: str, **figures: object) -> None:
        path = os.environ.get(REPORT)
        if path:
            with Path(path).open("a", encoding="utf-8") as out:
                out.write(json.dumps({"fault": name, **figures}) + "\n")

    return write
