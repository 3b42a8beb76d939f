"""The fuzz campaign's settings, its counts and its corpus of inputs that once failed.

`DEVICEGATE_FUZZ_EXAMPLES` sets the generated inputs per parser (`make fuzz`: 100,000; the
default keeps `make test` short). Every parser's test counts the inputs it was really given
(hypothesis stops early when a strategy has no more to give) and the session prints the
counts; `DEVICEGATE_FUZZ_REPORT` names a JSON file to write them to (benchmarks/soak.py).

An input that fails is written to `tests/fuzz/corpus/<parser>/` before the failure is
reported; every file there is run again by `test_corpus.py` in every run: a failure found
once stays a regression test.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

CORPUS = Path(__file__).parent / "corpus"
EXAMPLES = int(os.environ.get("DEVICEGATE_FUZZ_EXAMPLES", "400"))
REPORT = "DEVICEGATE_FUZZ_REPORT"

#: inputs tried and failures, per parser (this session)
COUNTS: Counter[str] = Counter()
FAILURES: Counter[str] = Counter()

#: seconds one input may take: more is a hang (the machine is shared, so not milliseconds)
HANG = 10.0
#: seconds one parser's test may take in all (pytest-timeout): a budget of 50 ms an input,
#: ten times what the slowest parser needs on a loaded 2-core machine
BUDGET = max(600.0, EXAMPLES * 0.05)

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=HANG),
    suppress_health_check=list(HealthCheck),
    database=None,  # the corpus below keeps what failed, in the repository
    derandomize=False,
)


@contextmanager
def fuzzing(name: str, data: bytes | str) -> Iterator[None]:
    """Count one input to parser `name`; keep it in the corpus when it fails or takes more
    than `HANG` seconds. An interruption (Ctrl-C, the test's own timeout) keeps the input it
    caught only when that one had already run for `HANG` seconds: it is a hang, not chance."""
    COUNTS[name] += 1
    started = time.monotonic()
    try:
        yield
    except BaseException as exc:
        if isinstance(exc, Exception) or time.monotonic() - started > HANG:
            keep(name, data)
        raise
    took = time.monotonic() - started
    if took > HANG:
        keep(name, data)
        raise AssertionError(f"{name}: one input took {took:.1f} s (a hang: more than {HANG} s)")


def keep(name: str, data: bytes | str) -> None:
    """Count a failure of parser `name` and write its input to the corpus."""
    FAILURES[name] += 1
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    folder = CORPUS / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha256(raw).hexdigest()[:16]).write_bytes(raw)


Checker = Callable[[bytes], None]


@pytest.fixture(autouse=True)
def quiet() -> Iterator[None]:
    """Adapters log every malformed request they refuse: a million lines of that would
    cost more than the parsing."""
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not COUNTS:
        return
    terminalreporter.section("fuzz: generated inputs per parser")
    for name, count in sorted(COUNTS.items()):
        terminalreporter.write_line(f"{name:24} {count:>9,}  failures {FAILURES[name]}")
    total = sum(COUNTS.values())
    terminalreporter.write_line(f"{'total':24} {total:>9,}  failures {sum(FAILURES.values())}")
    path = os.environ.get(REPORT)
    if path:
        Path(path).write_text(
            json.dumps({"inputs": dict(COUNTS), "failures": dict(FAILURES)}), encoding="utf-8"
        )
