"""The decision log: group commit in a writer process, acknowledged only after durable commit.

Requests append a compact record (request counter, two timestamps, template id, sighting
flag; see `rows.Record`) to the *open batch* and get that batch back. While no batch is in
flight, the open batch is sent to the writer process (`log_writer.py`) at the end of the current
event-loop iteration, so every request handled in that iteration joins it; while one is in
flight, the next one fills and goes as soon as the first is acknowledged. The writer inserts
the batch in one transaction (SQLite `synchronous=FULL`, PostgreSQL's default
`synchronous_commit=on`) and only then acknowledges it. The HTTP handler answers only after
`await wait(batch)` returns, so an answered request is on disk.

Templates (the decision and sighting rows a `Prepared` decision produces, minus id and time)
go to the writer once; a replayed decision costs a 5-tuple. The batch, not the request, is the
unit of waiting: every request of one batch awaits the same future.

Two acknowledgement modes (`devicegate serve --log-ack`):

* `durable` (default): as above — an answered request is on disk. This is PostgreSQL's
  `synchronous_commit=on`: the answer waits for a group commit (an fsync per batch), which at
  low concurrency bounds the request rate by the commit round trip.
* `buffered`: the answer does not wait; batches collect for `BUFFER_INTERVAL` (2 ms) and
  the record is committed with the next one (in practice within a few milliseconds).
  `kill -9` can lose the records of requests answered since the last commit — at most the
  open batch and the one in flight, never more than `BUFFER_MAX` records; so can a batch
  that fails to commit, and those are counted (`lost`, `devicegate_log_lost_records_total`).
  Failures still fail closed: after a batch fails, every request waits for its own batch
  again (and gets 503 if that fails too) until a batch commits. Like OPA's buffered decision
  logs, or `synchronous_commit=off`.

Loss bound in `durable` mode: `kill -9` of the server loses only records whose requests had
not been answered — the batch in flight plus the open one, at most the requests in flight
(one per open connection); none that were acknowledged (the writer finishes the batch it
has, then sees its input close and exits). If a batch fails to commit, or the writer dies,
the batch's waiters get `LogUnavailable` and are answered 503 (fail closed), never allowed
unlogged; a new writer is started for the next batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import subprocess
import sys
from collections import deque
from collections.abc import Callable

from devicegate.errors import StoreError
from devicegate.server.log_rows import Record, Template
from devicegate.server.log_writer import HEADER, read_frame, write_frame
from devicegate.store import Store

log = logging.getLogger("devicegate.server")

OPEN, COMMITTED, FAILED = 0, 1, 2
TEMPLATES_MAX = 50_000  # templates the writer keeps; then both sides start over
BUFFER_MAX = 10_000  # `buffered` mode: a batch this full makes requests wait (back-pressure)
# Batches sent before the first is acknowledged. Two let the writer start the next commit the
# moment one ends, but halve the batches; on this 2-core machine, where the writer competes
# with the load for CPU, one (fewer, larger commits) measured no worse, so one it is.
IN_FLIGHT = 1
#: seconds a writer that could not start is given to exit by itself before it is killed
START_FAILED_EXIT = 10.0
#: seconds a writer being stopped is given to commit what it has and exit
STOP_EXIT = 30.0
BUFFER_INTERVAL = 0.002  # `buffered` mode: seconds a batch collects before it is sent
ACK_MODES = ("durable", "buffered")


def _end(proc: subprocess.Popen[bytes], wait: float) -> int | None:
    """End a writer process: its input closed (it commits what it has and exits), then
    `wait` seconds for it, then killed, so that no writer outlives its log. Its exit status,
    None when it had to be killed."""
    assert proc.stdin is not None and proc.stdout is not None
    with contextlib.suppress(OSError):
        proc.stdin.close()
    try:
        status: int | None = proc.wait(wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        status = None
    proc.stdout.close()
    return status


class LogUnavailable(StoreError):
    """The decision log could not commit: the request must not be acknowledged."""


#: what a request whose record could not be written is told (503), on every path
WRITE_FAILED = "the decision log could not be written"
FAILING_CLOSED = "the decision log is unavailable: failing closed"


class Batch:
    """Records committed together; `future` is created by the first waiter (loop thread),
    `callbacks` hold the answers of requests the HTTP protocol replays without a task."""

    __slots__ = ("callbacks", "early", "future", "records", "status", "templates")

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.early = 0  # records answered before the commit (`buffered`, log healthy)
        self.templates: dict[int, Template] = {}
        self.status = OPEN
        self.future: asyncio.Future[None] | None = None
        self.callbacks: list[Callable[[bool], None]] | None = None


class DecisionLog:
    """The server side of the writer process. Every method runs on the event-loop thread."""

    def __init__(
        self,
        store: Store,
        *,
        id_prefix: str,
        ack: str = "durable",
        on_batch: Callable[[int, float], None] | None = None,
        on_failure: Callable[[], None] | None = None,
        on_lost: Callable[[int], None] | None = None,
    ) -> None:
        if ack not in ACK_MODES:
            raise ValueError(f"unknown log acknowledgement mode {ack!r}")
        self.store = store
        self.id_prefix = id_prefix
        self.buffered = ack == "buffered"
        self._failing = False  # the last batch failed: even `buffered` requests wait
        self._on_batch = on_batch
        self._on_failure = on_failure
        self._on_lost = on_lost
        self.lost = 0  # records answered early whose batch then failed (`buffered`)
        self._open = Batch()
        self._latest = self._open  # the batch of the newest record (await it to cover all)
        self._in_flight: deque[Batch] = deque()  # sent, not yet acknowledged (oldest first)
        self._scheduled = False
        self._sent: set[int] = set()  # template ids the writer has
        self._number = 0
        self._buffer = b""
        self.committed = 0  # records committed since start (health endpoint)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the writer process and wait until it has opened the store."""
        self._loop = loop
        self._spawn()

    def _spawn(self) -> None:
        url = self.store.engine.url.render_as_string(hide_password=False)
        proc = subprocess.Popen(
            [sys.executable, "-m", "devicegate.server.log_writer"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert proc.stdin is not None and proc.stdout is not None
        write_frame(proc.stdin, {"store": url, "id_prefix": self.id_prefix})
        reply = read_frame(proc.stdout)
        if reply is None or reply[0] != "ready":
            status = _end(proc, START_FAILED_EXIT)
            if reply is not None:
                reason = str(reply[1])
            elif status is not None:
                reason = f"exited with status {status}"
            else:
                reason = f"gave no answer and had not exited after {START_FAILED_EXIT:g} s: killed"
            raise LogUnavailable(f"the decision-log writer did not start: {reason}")
        os.set_blocking(proc.stdout.fileno(), False)
        assert self._loop is not None
        self._loop.add_reader(proc.stdout.fileno(), self._on_readable)
        self._proc = proc
        self._sent = set()
        self._buffer = b""

    async def close(self) -> None:
        """Write what is queued, wait for it, then end the writer process."""
        while self._in_flight or self._open.records:
            batch = self._in_flight[-1] if self._in_flight else self._open
            self._flush()
            await self._committed(batch)
            if self._proc is None:
                break
        self._stop_process()

    def _stop_process(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        assert proc.stdout is not None
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(proc.stdout.fileno())
        _end(proc, STOP_EXIT)

    # ---- appending and waiting ----------------------------------------------------------------
    def append(self, record: Record, template: Template) -> Batch:
        """Add one record (with the template it refers to) to the open batch."""
        batch = self._open
        batch.records.append(record)
        if self.buffered and not self._failing and len(batch.records) <= BUFFER_MAX:
            batch.early += 1  # `must_wait` is False for it: its request is answered now
        tid = record[3]
        if tid not in batch.templates:
            batch.templates[tid] = template
        if len(self._in_flight) < IN_FLIGHT and not self._scheduled and self._loop is not None:
            self._schedule()
        self._latest = batch
        return batch

    def _schedule(self) -> None:
        """Send the open batch at the end of this loop iteration (`durable`: everything this
        iteration handled joins it) or after `BUFFER_INTERVAL` (`buffered`: nobody waits, so
        fewer, larger commits cost less on both sides)."""
        assert self._loop is not None
        self._scheduled = True
        if self.buffered and not self._failing:
            self._loop.call_later(BUFFER_INTERVAL, self._flush)
        else:
            self._loop.call_soon(self._flush)

    @property
    def pending(self) -> int:
        """Records appended but not yet committed (in `buffered` mode: what a crash loses)."""
        return len(self._open.records) + (sum(len(b.records) for b in self._in_flight))

    @property
    def latest(self) -> Batch:
        """The batch holding the newest record: once it is durable, everything before is."""
        return self._latest

    def must_wait(self, batch: Batch) -> bool:
        """False when `wait(batch)` would return at once (lets hot paths skip the await)."""
        if batch.status == COMMITTED or not batch.records:
            return False  # an empty batch (nothing decided yet) holds nothing to wait for
        return not (
            self.buffered
            and batch.status == OPEN
            and not self._failing
            and len(batch.records) <= BUFFER_MAX
        )

    async def wait(self, batch: Batch) -> None:
        """Return once `batch` committed; raise `LogUnavailable` if it failed. In `buffered`
        mode return at once while the log is healthy and the batch not over `BUFFER_MAX`."""
        if not self.must_wait(batch):
            return
        await self._committed(batch)
        if batch.status == FAILED:
            raise LogUnavailable(WRITE_FAILED)

    def answer_now(self, batch: Batch, callback: Callable[[bool], None]) -> bool:
        """True when a request whose record is in `batch` may be answered at once; otherwise
        False, and `callback(committed)` is called once the writer has answered for the
        batch (already called if it has): the callback form of `wait`, for protocols that
        write their answers without a task."""
        if not self.must_wait(batch):
            return True
        self.when_done(batch, callback)
        return False

    @staticmethod
    def when_done(batch: Batch, callback: Callable[[bool], None]) -> None:
        """Call `callback(committed)` on the loop thread once the writer has answered for
        `batch` (at once if it already has): `wait` without a task to suspend."""
        if batch.status != OPEN:
            callback(batch.status == COMMITTED)
        elif batch.callbacks is None:
            batch.callbacks = [callback]
        else:
            batch.callbacks.append(callback)

    @staticmethod
    async def _committed(batch: Batch) -> None:
        """Until the writer has answered for `batch` (committed or failed), in any mode."""
        if batch.status == OPEN:
            future = batch.future
            if future is None:
                future = batch.future = asyncio.get_running_loop().create_future()
            await future

    # ---- the pipe ---------------------------------------------------------------------------
    def _flush(self) -> None:
        self._scheduled = False
        if len(self._in_flight) >= IN_FLIGHT or not self._open.records:
            return
        if self._proc is None or self._proc.poll() is not None:
            self._writer_lost("the writer process is gone", send_next=False)
            try:
                self._spawn()
            except (OSError, StoreError, subprocess.SubprocessError) as exc:
                log.error("decision-log writer unavailable: %s", exc)
                batch, self._open = self._open, Batch()
                self._in_flight.append(batch)
                self._writer_lost(str(exc), send_next=False)
                return
        batch, self._open = self._open, Batch()
        self._in_flight.append(batch)
        try:
            reset = len(self._sent) > TEMPLATES_MAX
            if reset:
                self._sent = set()
            sent = self._sent
            new = [(tid, t) for tid, t in batch.templates.items() if tid not in sent]
            sent.update(batch.templates)
            self._number += 1
            assert self._proc is not None and self._proc.stdin is not None
            write_frame(self._proc.stdin, (self._number, reset, new, batch.records))
        except OSError as exc:
            self._writer_lost(f"cannot send to the writer: {exc}")

    def _writer_lost(self, reason: str, *, send_next: bool = True) -> None:
        """The writer died or cannot be reached: nothing sent to it will be acknowledged, so
        every batch in flight fails (its requests get 503), oldest first."""
        if self._proc is not None:
            log.error("decision-log writer lost: %s", reason)
        self._stop_process()
        lost = list(self._in_flight)
        self._in_flight.clear()
        for batch in lost:
            self._complete(batch, False, reason, 0.0)
        if send_next:
            self._send_next()

    def _on_readable(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            chunk = os.read(self._proc.stdout.fileno(), 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._writer_lost(f"the writer process exited (status {self._proc.poll()})")
            return
        self._buffer += chunk
        while len(self._buffer) >= HEADER.size:
            (size,) = HEADER.unpack_from(self._buffer)
            if len(self._buffer) < HEADER.size + size:
                break
            frame = self._buffer[HEADER.size : HEADER.size + size]
            self._buffer = self._buffer[HEADER.size + size :]
            _number, ok, error, seconds = pickle.loads(frame)
            self._finish(ok, error, seconds)

    def _finish(self, ok: bool, error: str | None, seconds: float) -> None:
        """The oldest batch in flight committed (or failed): wake its waiters, send the next."""
        if not self._in_flight:
            return
        self._complete(self._in_flight.popleft(), ok, error, seconds)
        self._send_next()

    def _complete(self, batch: Batch, ok: bool, error: str | None, seconds: float) -> None:
        batch.status = COMMITTED if ok else FAILED
        self._failing = not ok
        if ok:
            self.committed += len(batch.records)
            if self._on_batch is not None:
                self._on_batch(len(batch.records), seconds)
        else:
            log.error("decision log write failed (%d records): %s", len(batch.records), error)
            if self._on_failure is not None:
                self._on_failure()
            if batch.early:
                self.lost += batch.early
                log.error(
                    "%d decisions answered before their commit (--log-ack buffered) are lost",
                    batch.early,
                )
                if self._on_lost is not None:
                    self._on_lost(batch.early)
        future = batch.future
        if future is not None and not future.done():
            future.set_result(None)
        callbacks, batch.callbacks = batch.callbacks, None
        for callback in callbacks or ():
            try:
                callback(ok)
            except Exception:  # one broken connection must not keep the others waiting
                log.exception("answering a replayed request failed")

    def _send_next(self) -> None:
        if self._open.records and not self._scheduled:
            if self.buffered and self._loop is not None:
                self._schedule()
            else:
                self._flush()
