"""A load generator for `devicegate serve` over loopback: HTTP/1.1 keep-alive and Postfix
policy connections, each a closed loop, every answer classified and checked.

Written on asyncio streams rather than with an HTTP client library: the soak needs a million
requests from the same two cores the server uses, and a client that parses every header
through a general library costs more CPU a request than the server does. The requests are
prebuilt bytes (`population.Template`); an answer is read as the status line, the
`Content-Length` and the body — all the server's answers carry a length.

Each answer is classified as `allow`, `deny` or `closed` (the server failing closed: 503, a
Postfix DEFER) and compared with its template's expectation; a `closed` answer is
"unexpected" unless the run says failing closed is acceptable at that moment (`closed_ok`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from tests.faults.population import ALLOW, CLOSED, DENY, Template

#: the load's shares of the requests: forward-auth 70 %, Dovecot 15 %, Postfix 10 %, RADIUS 5 %
MIX = {"forward-auth": 0.70, "dovecot": 0.15, "postfix": 0.10, "radius": 0.05}
#: connections per protocol (about the share of the requests each one carries)
#: (durable answers wait for a group commit: more connections, larger batches)
CONNECTIONS = {"forward-auth": 40, "dovecot": 10, "postfix": 6, "radius": 4}


def classify(kind: str, status: int, body: bytes) -> str | None:
    """What an answer means (ALLOW, DENY, CLOSED), or None when it is none of them."""
    if kind == "postfix":
        action = body.decode(errors="replace").removeprefix("action=").strip()
        if action == "DUNNO" or action.startswith("PREPEND"):
            return ALLOW
        if action.startswith(("REJECT", "HOLD")):
            return DENY
        if action.startswith(("DEFER", "451")):
            return CLOSED
        return None
    if status == 503:
        return CLOSED
    if kind == "forward-auth":
        return {200: ALLOW, 403: DENY}.get(status)
    if kind == "radius":
        return {200: ALLOW, 401: DENY}.get(status)
    if kind == "dovecot" and status == 200:
        try:
            answer = json.loads(body)
        except ValueError:
            return None
        return ALLOW if answer.get("status") == 0 else DENY if answer.get("status") == -1 else None
    return None


@dataclass
class Stats:
    """What one run saw. `acknowledged` counts answers that carried a decision."""

    requests: int = 0
    acknowledged: int = 0
    unexpected: int = 0
    closed: int = 0
    errors: int = 0  # connection errors (reset, refused): no answer at all
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    #: (monotonic time, kind, outcome) of every answer when `timeline` is on
    timeline: list[tuple[float, str, str]] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.examples) < 20:
            self.examples.append(text)


@dataclass
class Plan:
    """How a run goes: the request budget (None: until `stop`), a deadline, what may fail
    closed, whether to keep a timeline."""

    budget: int | None
    seconds: float
    stop: threading.Event = field(default_factory=threading.Event)
    closed_ok: Callable[[], bool] = lambda: False
    timeline: bool = False


class _Budget:
    def __init__(self, plan: Plan, kind: str) -> None:
        self.left = None if plan.budget is None else round(plan.budget * MIX[kind])
        self.deadline = time.monotonic() + plan.seconds
        self.stop = plan.stop

    def take(self) -> bool:
        if self.stop.is_set() or time.monotonic() > self.deadline:
            return False
        if self.left is None:
            return True
        if self.left <= 0:
            return False
        self.left -= 1
        return True


def _cycle(items: list[Template], start: int) -> Iterator[Template]:
    """Every template in turn, each connection from its own offset (a stride through the
    population, not one user hammered)."""
    i = start
    n = len(items)
    while True:
        yield items[i % n]
        i += 7919  # a prime: visits every template when n is not a multiple of it


async def _read_http(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    lower = head.lower()
    at = lower.find(b"content-length:")
    if at >= 0:
        end = lower.find(b"\r\n", at)
        length = int(lower[at + 15 : end])
    body = await reader.readexactly(length) if length else b""
    return status, body


async def _read_postfix(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    return 0, (await reader.readuntil(b"\n\n"))


async def _connection(
    port: int, kind: str, items: Iterator[Template], budget: _Budget, plan: Plan, stats: Stats
) -> None:
    read = _read_postfix if kind == "postfix" else _read_http
    reader = writer = None
    while budget.take():
        template = next(items)
        stats.requests += 1
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert reader is not None
            writer.write(template.raw)
            status, body = await asyncio.wait_for(read(reader), 30)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            stats.errors += 1
            if writer is not None:
                writer.close()
            reader = writer = None
            await asyncio.sleep(0.01)
            continue
        outcome = classify(kind, status, body)
        if outcome is None:
            stats.unexpected += 1
            stats.note(f"{kind}: unclassified answer {status} {body[:200]!r}")
            continue
        stats.outcomes[(kind, outcome)] += 1
        if plan.timeline:
            stats.timeline.append((time.monotonic(), kind, outcome))
        if outcome == CLOSED:
            stats.closed += 1
            if not plan.closed_ok():
                stats.unexpected += 1
                stats.note(f"{kind}: failed closed unexpectedly: {status} {body[:200]!r}")
            if kind == "postfix":  # Postfix may close the connection after a DEFER
                writer.close()  # type: ignore[union-attr]
                reader = writer = None
            continue
        stats.acknowledged += 1
        if outcome != template.expect:
            stats.unexpected += 1
            stats.note(f"{kind}: {outcome}, expected {template.expect}: {template.raw[:160]!r}")
    if writer is not None:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _run(
    http_port: int,
    postfix_port: int,
    population: dict[str, list[Template]],
    plan: Plan,
    stats: Stats,
) -> Stats:
    tasks = []
    for kind, count in CONNECTIONS.items():
        budget = _Budget(plan, kind)
        port = postfix_port if kind == "postfix" else http_port
        for n in range(count):
            items = _cycle(population[kind], n * 131)
            tasks.append(_connection(port, kind, items, budget, plan, stats))
    await asyncio.gather(*tasks)
    return stats


def run(
    http_port: int,
    postfix_port: int,
    population: dict[str, list[Template]],
    plan: Plan,
    stats: Stats | None = None,
) -> Stats:
    """Run the load to its budget, deadline or `plan.stop` (blocking), counting into `stats`
    (a fresh one unless given: a caller may read the counts while it runs)."""
    import uvloop

    return uvloop.run(_run(http_port, postfix_port, population, plan, stats or Stats()))


class Background:
    """The load in a thread, for fault tests that act while it runs."""

    def __init__(
        self,
        http_port: int,
        postfix_port: int,
        population: dict[str, list[Template]],
        plan: Plan,
    ) -> None:
        self.plan = plan
        #: filled while the load runs: read `requests` for progress, the rest after `finish`
        self.live = Stats()
        self.stats: Stats | None = None
        self._thread = threading.Thread(
            target=self._main, args=(http_port, postfix_port, population), daemon=True
        )

    def _main(
        self, http_port: int, postfix_port: int, population: dict[str, list[Template]]
    ) -> None:
        self.stats = run(http_port, postfix_port, population, self.plan, self.live)

    def __enter__(self) -> Background:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.plan.stop.set()
        self._thread.join(60)

    def finish(self) -> Stats:
        self.plan.stop.set()
        self._thread.join(60)
        assert self.stats is not None, "the load thread did not finish"
        return self.stats


async def _warm(http_port: int, postfix_port: int, population: dict[str, list[Template]]) -> Stats:
    stats = Stats()
    plan = Plan(budget=None, seconds=600)

    async def once(kind: str, items: list[Template]) -> None:
        budget = _Budget(plan, kind)
        budget.left = len(items)
        port = postfix_port if kind == "postfix" else http_port
        await _connection(port, kind, iter(items), budget, plan, stats)

    # the protocols that record sightings first, eight connections each; SMTP after them
    await asyncio.gather(
        *(
            once(kind, population[kind][n::8])
            for kind in ("forward-auth", "dovecot", "radius")
            for n in range(8)
        )
    )
    await asyncio.gather(*(once("postfix", population["postfix"][n::8]) for n in range(8)))
    return stats


def warm(http_port: int, postfix_port: int, population: dict[str, list[Template]]) -> Stats:
    """Every template once, one connection a protocol, SMTP last (so the sightings it is
    decided from exist): the first decision of each request is made before the timed run."""
    import uvloop

    return uvloop.run(_warm(http_port, postfix_port, population))
