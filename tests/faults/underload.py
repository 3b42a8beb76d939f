"""One `serve` under the mixed load while a fault happens: the shared frame of the fault
tests. The load runs in a thread with a timeline of every answer (when, protocol, outcome),
so a test can say which answers fell inside the fault and which after it."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.faults import load
from tests.faults.population import CLOSED, templates, write_world
from tests.server import procs

USERS = 100


@dataclass
class Run:
    server: procs.Devicegate
    postfix_port: int
    running: load.Background
    warm: load.Stats
    #: (start, end) monotonic times during which failing closed is the right answer
    windows: list[tuple[float, float]] = field(default_factory=list)

    def closed_ok(self) -> bool:
        now = time.monotonic()
        return any(start <= now <= end for start, end in self.windows)

    def answers(self) -> list[tuple[float, str, str]]:
        stats = self.running.stats
        assert stats is not None
        return stats.timeline


@contextmanager
def under_load(
    tmp: Path,
    store_url: str,
    *,
    extra: tuple[str, ...] = (),
    seconds: float = 120,
    env: dict[str, str] | None = None,
) -> Iterator[Run]:
    """`serve` on `store_url` (`env` added to its environment), warmed up, with the mixed load
    running for the body."""
    policy, directory = write_world(tmp / "world", USERS)
    population = templates(USERS)
    postfix_port = procs.free_port()
    server = procs.start_devicegate(
        tmp,
        policy,
        directory,
        store_url,
        extra=("--postfix-port", str(postfix_port), *extra),
        env=env,
    )
    try:
        warm = load.warm(server.port, postfix_port, population)
        assert warm.unexpected == 0, warm.examples
        plan = load.Plan(budget=None, seconds=seconds, timeline=True)
        running = load.Background(server.port, postfix_port, population, plan)
        run = Run(server, postfix_port, running, warm)
        plan.closed_ok = run.closed_ok
        with running:
            yield run
        running.finish()
    finally:
        procs.stop(server.proc, timeout=60)


def outcomes_between(
    answers: list[tuple[float, str, str]], start: float, end: float
) -> Counter[str]:
    """Outcomes of the answers given between `start` and `end` (monotonic)."""
    return Counter(outcome for at, _, outcome in answers if start <= at <= end)


def last_closed(answers: list[tuple[float, str, str]]) -> float | None:
    """When the last answer that failed closed was given (monotonic), if any was."""
    return max((at for at, _, outcome in answers if outcome == CLOSED), default=None)


def lost_metric(url: str) -> float:
    """`devicegate_log_lost_records_total` of the server at `url`."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    found = re.search(r"^devicegate_log_lost_records_total ([0-9.e+]+)$", text, re.M)
    assert found is not None, "devicegate_log_lost_records_total is not exported"
    return float(found.group(1))
