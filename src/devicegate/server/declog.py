"""The batching decision-log writer: group commit, acknowledged only after durable commit.

Requests append their decision (and, when new, a sighting) to a queue and get a sequence
number; one writer thread takes everything queued, writes it in one transaction
(`RowWriter.write`, which commits with SQLite `synchronous=FULL` or PostgreSQL's default
`synchronous_commit=on`), and then marks that sequence number committed. The HTTP handler
answers only after `await wait(seq)` returns, so an answered request is on disk.

Loss bound: `kill -9` loses only records whose requests had not been answered yet — at most
the requests in flight (one batch being written plus those queued behind it, bounded by the
number of open connections); none that were acknowledged. If a batch fails to commit, its
waiters get `LogUnavailable` and the request is answered 503 (fail closed), never allowed
unlogged.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import queue
import threading
from collections.abc import Callable

from devicegate.errors import StoreError
from devicegate.server.rows import Row, RowWriter
from devicegate.store import Store

log = logging.getLogger("devicegate.server")

Record = tuple[Row | None, Row | None]  # (sighting, decision): see server/rows.py


class LogUnavailable(StoreError):
    """The decision log could not commit: the request must not be acknowledged."""


class DecisionLog:
    def __init__(
        self,
        store: Store,
        *,
        batch_max: int = 512,
        on_batch: Callable[[int, float], None] | None = None,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.writer = RowWriter(store)
        self.batch_max = batch_max
        self._on_batch = on_batch
        self._on_failure = on_failure
        self._queue: queue.SimpleQueue[tuple[int, Record] | None] = queue.SimpleQueue()
        self._seq = 0
        self.committed = 0
        self._failed: set[int] = set()
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def last_seq(self) -> int:
        """The newest sequence number handed out (await it to cover everything before)."""
        return self._seq

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="devicegate-log", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued, then end the writer thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None

    def append(self, sighting: Row | None, decision: Row | None) -> int:
        """Queue one record; returns its sequence number. Called on the event-loop thread."""
        self._seq += 1
        self._queue.put((self._seq, (sighting, decision)))
        return self._seq

    async def wait(self, seq: int) -> None:
        """Return once record `seq` (and all before it) committed; raise if its batch failed."""
        if seq <= self.committed:
            self._raise_if_failed(seq)
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._waiters, (seq, id(future), future))
        await future

    def _raise_if_failed(self, seq: int) -> None:
        if seq in self._failed:
            self._failed.discard(seq)
            raise LogUnavailable("the decision log could not be written")

    def _run(self) -> None:
        import time

        stopping = False
        while not stopping:
            item = self._queue.get()
            batch: list[tuple[int, Record]] = []
            if item is None:
                stopping = True
            else:
                batch.append(item)
            while len(batch) < self.batch_max:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                batch.append(more)
            if not batch:
                continue
            sightings = [rec[0] for _, rec in batch if rec[0] is not None]
            decisions = [rec[1] for _, rec in batch if rec[1] is not None]
            started = time.perf_counter()
            ok = True
            try:
                self.writer.write(sightings, decisions)
            except Exception as exc:
                ok = False
                log.error("decision log write failed (%d records): %s", len(batch), exc)
                if self._on_failure is not None:
                    self._on_failure()
            elapsed = time.perf_counter() - started
            if ok and self._on_batch is not None:
                self._on_batch(len(batch), elapsed)
            first, last = batch[0][0], batch[-1][0]
            if self._loop is not None and not self._loop.is_closed():
                with contextlib.suppress(RuntimeError):  # loop closed while we wrote
                    self._loop.call_soon_threadsafe(self._done, first, last, ok)

    def _done(self, first: int, last: int, ok: bool) -> None:
        """On the loop thread: mark [first, last] committed (or failed) and wake waiters."""
        if not ok:
            self._failed.update(range(first, last + 1))
        self.committed = max(self.committed, last)
        while self._waiters and self._waiters[0][0] <= self.committed:
            seq, _, future = heapq.heappop(self._waiters)
            if future.done():
                continue
            if seq in self._failed:
                self._failed.discard(seq)
                future.set_exception(LogUnavailable("the decision log could not be written"))
            else:
                future.set_result(None)
        # Waiters register before the writer can finish their batch (no await between
        # `append` and `wait`), so no later waiter can need these failure marks.
        self._failed.clear()
