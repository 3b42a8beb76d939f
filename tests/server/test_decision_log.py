"""`DecisionLog` with its real writer process, driven step by step on one event loop: which
batch a record joins, when a batch is sent, what an answer waits for, what a failed commit
or a lost writer does to every waiter — the acknowledgement rules of server/decision_log.py, each
checked on the log itself rather than through a protocol."""

from __future__ import annotations

import asyncio
import errno
import io
import logging
import os
import select
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO

import pytest

from devicegate.adapters.forward_auth import ADAPTER as FORWARD_AUTH
from devicegate.model import Signals
from devicegate.server import DevicegateApp, decision_log
from devicegate.server.decision_log import (
    COMMITTED,
    FAILED,
    OPEN,
    Batch,
    DecisionLog,
    LogUnavailable,
)
from tests.server.conftest import make_app
from tests.server.hold import WriterHold
from tests.server.scenario import ANDROID_CHROME, IPHONE_SAFARI, OPS

Scenario = Callable[[DevicegateApp], Awaitable[None]]


def run(tmp_path: Path, scenario: tuple[Path, Path], body: Scenario, **settings: object) -> None:
    run_app(make_app(tmp_path, *scenario, **settings), body)


def run_app(app: DevicegateApp, body: Scenario) -> None:
    """`body` on a loop of its own, between the app's startup and shutdown. The shutdown is
    bounded: a log that never answers for a batch (the fault under test, or a broken log)
    fails the test instead of hanging it."""

    async def main() -> None:
        await app.startup()
        try:
            await body(app)
        finally:
            await asyncio.wait_for(app.shutdown(), 20)

    asyncio.run(main())


def decide(app: DevicegateApp, agent: str = ANDROID_CHROME) -> Batch:
    """One decision appended to the log: the batch it joined."""
    return app.service.prepare(OPS, "web", Signals(user_agent=agent), adapter=FORWARD_AUTH)[1]


def rename(app: DevicegateApp, old: str, new: str) -> None:
    database = app.service.store.engine.url.database
    assert database is not None
    with sqlite3.connect(database) as other:
        other.execute(f"ALTER TABLE {old} RENAME TO {new}")


def logged(caplog: pytest.LogCaptureFixture, start: str) -> list[str]:
    """The messages logged that begin with `start` (the whole message, not a part of it)."""
    return [m for m in (r.getMessage() for r in caplog.records) if m.startswith(start)]


async def turn() -> None:
    """Let the loop run the callbacks scheduled so far (the batch flush among them)."""
    await asyncio.sleep(0)


def test_records_of_one_iteration_share_a_batch_committed_before_anyone_answers(
    tmp_path: Path, scenario: tuple[Path, Path]
) -> None:
    async def body(app: DevicegateApp) -> None:
        log = app.service.log
        batches: list[tuple[int, float]] = []
        log._on_batch = lambda size, seconds: batches.append((size, seconds))
        first, second = decide(app), decide(app, IPHONE_SAFARI)
        assert first is second and first.status == OPEN and log.latest is first
        assert log.pending == 2 and log.must_wait(first)
        assert not log.answer_now(first, lambda ok: None)
        await turn()  # sent at the end of the iteration: now in flight, the open one empty
        assert log._in_flight[0] is first and not log._open.records
        third = decide(app)  # while one is in flight the next batch fills
        assert third is not first and log.latest is third and log.pending == 3
        log._flush()  # a flush while IN_FLIGHT batches are in flight sends nothing
        assert list(log._in_flight) == [first] and log._open is third
        # every waiter of a batch is woken by its one future (a second must not orphan it)
        await asyncio.wait_for(asyncio.gather(log.wait(third), log.wait(third)), 20)
        assert first.status == third.status == COMMITTED and log.pending == 0
        assert not log.must_wait(first) and log.answer_now(first, lambda ok: None)
        assert [size for size, _ in batches] == [2, 1] and all(s > 0 for _, s in batches)
        assert log.committed == 3 and app.service.store.count("decisions") == 3
        log._flush()  # nothing open: no (empty) batch is sent
        assert not log._in_flight and [size for size, _ in batches] == [2, 1]
        called: list[bool] = []
        log.when_done(first, called.append)  # already answered for: called at once
        assert called == [True]
        assert not log.must_wait(Batch())  # an empty batch holds nothing to wait for

    run(tmp_path, scenario, body)


def test_a_failed_commit_fails_every_waiter_then_the_log_recovers(
    tmp_path: Path, scenario: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    async def body(app: DevicegateApp) -> None:
        log = app.service.log
        failures: list[int] = []
        log._on_failure = lambda: failures.append(1)
        rename(app, "decisions", "decisions_gone")
        batch = decide(app)
        answered: list[bool] = []
        assert not log.answer_now(batch, answered.append)
        log.when_done(batch, answered.append)
        log.when_done(batch, lambda ok: 1 / 0)  # a broken callback must not stop the others
        log.when_done(batch, answered.append)
        with pytest.raises(LogUnavailable) as refused:
            await log.wait(batch)
        assert refused.value.message == decision_log.WRITE_FAILED
        assert batch.status == FAILED and answered == [False, False, False]
        assert failures == [1] and log._failing and log.committed == 0
        assert batch.early == 0 and log.lost == 0  # `durable` answers nothing early
        assert log.must_wait(batch) and not log.answer_now(batch, answered.append)
        assert answered == [False, False, False, False]  # called at once: already failed
        rename(app, "decisions_gone", "decisions")
        healed = decide(app)
        await log.wait(healed)
        assert healed.status == COMMITTED and not log._failing and log.committed == 1

    caplog.set_level(logging.ERROR)
    run(tmp_path, scenario, body)
    assert logged(caplog, "decision log write failed (1 records): OperationalError")
    replayed = "answering a replayed request failed"
    assert logged(caplog, replayed) == [replayed]


def test_a_writer_that_dies_holding_a_batch_fails_it_and_a_new_one_takes_the_next(
    tmp_path: Path,
    scenario: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hold = WriterHold(tmp_path / "hold")
    for name, value in hold.env().items():
        monkeypatch.setenv(name, value)

    async def body(app: DevicegateApp) -> None:
        log = app.service.log
        hold.engage()
        held = decide(app)
        await turn()
        waiting = decide(app)  # queued behind the one in flight
        await asyncio.to_thread(hold.wait)
        answered: list[object] = []
        log.when_done(held, answered.append)
        writer = log._proc
        assert writer is not None
        writer.send_signal(signal.SIGKILL)
        try:
            with pytest.raises(LogUnavailable):
                await log.wait(held)
            assert held.status == FAILED and answered == [False] and log._failing
        finally:  # a failed check must not leave the next writer holding (shutdown waits)
            hold.release()
        await log.wait(waiting)  # sent to a new writer once the old one was found dead
        assert waiting.status == COMMITTED and log._proc is not None
        assert log._proc.pid != writer.pid and app.service.store.count("decisions") == 1

    caplog.set_level(logging.ERROR)
    run(tmp_path, scenario, body)
    assert logged(caplog, "decision-log writer lost: the writer process exited (status ")
    failed = "decision log write failed (1 records): the writer process exited (status "
    assert logged(caplog, failed)


def test_a_writer_found_dead_between_batches_is_replaced_before_sending(
    tmp_path: Path, scenario: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    async def body(app: DevicegateApp) -> None:
        log = app.service.log
        await log.wait(decide(app))
        writer = log._proc
        assert writer is not None
        log._loop.remove_reader(writer.stdout.fileno())  # type: ignore[union-attr]
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)
        batch = decide(app)
        await log.wait(batch)
        assert batch.status == COMMITTED and log._proc is not writer and log.committed == 2

    caplog.set_level(logging.ERROR)
    run(tmp_path, scenario, body)
    gone = "decision-log writer lost: the writer process is gone"
    assert logged(caplog, gone) == [gone]


def test_a_writer_that_cannot_start_fails_the_batch(
    tmp_path: Path, scenario: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    async def body(app: DevicegateApp) -> None:
        log = app.service.log
        await log.wait(decide(app))
        log._stop_process()
        app.service.store.engine.url = app.service.store.engine.url.set(drivername="nosuchdb")
        batch = decide(app)
        with pytest.raises(LogUnavailable):
            await log.wait(batch)
        assert batch.status == FAILED and log._proc is None

    caplog.set_level(logging.ERROR)
    run(tmp_path, scenario, body)
    reason = "the decision-log writer did not start: StoreError: cannot use store `nosuchdb:"
    assert logged(caplog, f"decision-log writer unavailable: {reason}")  # the writer's reason
    assert logged(caplog, f"decision log write failed (1 records): {reason}")


def test_buffered_answers_at_once_while_healthy_and_waits_once_a_batch_failed(
    tmp_path: Path, scenario: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(decision_log, "BUFFER_MAX", 3)

    async def body(app: DevicegateApp) -> None:
        log = app.service.log
        assert log.buffered
        batch = decide(app)
        assert not log.must_wait(batch) and log.answer_now(batch, lambda ok: None)
        await log.wait(batch)  # returns at once
        assert batch.status == OPEN
        await turn()
        assert batch.status == OPEN and log._open is batch  # collects for BUFFER_INTERVAL
        for _ in range(2):
            decide(app)
        assert len(batch.records) == 3 and not log.must_wait(batch)  # at BUFFER_MAX: not yet
        assert batch.early == 3
        decide(app)
        assert len(batch.records) == 4 and log.must_wait(batch)  # over BUFFER_MAX: wait
        assert batch.early == 3  # the fourth request waits for the commit
        await log._committed(batch)
        assert batch.status == COMMITTED
        rename(app, "decisions", "decisions_gone")
        failed = decide(app)
        await log._committed(failed)
        assert failed.status == FAILED and log._failing
        after = decide(app)
        assert log.must_wait(after)  # failing: even buffered requests wait for their batch
        await turn()
        assert log._in_flight and log._in_flight[0] is after  # sent at once, not after 2 ms
        with pytest.raises(LogUnavailable):
            await log.wait(after)
        rename(app, "decisions_gone", "decisions")
        healed = decide(app)
        await log.wait(healed)
        assert healed.status == COMMITTED and not log._failing

    run(tmp_path, scenario, body, log_ack="buffered")


def test_buffered_records_answered_early_are_counted_lost_when_their_batch_fails(
    tmp_path: Path, scenario: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """`buffered` answers before the commit; when that batch then fails, the requests it
    answered are lost: counted (`lost`, the `on_lost` hook behind the metric) and logged."""

    async def body(app: DevicegateApp) -> None:
        log = app.service.log
        lost: list[int] = []
        failures: list[int] = []
        log._on_lost, log._on_failure = lost.append, lambda: failures.append(1)
        rename(app, "decisions", "decisions_gone")
        batch = decide(app)
        decide(app, IPHONE_SAFARI)
        assert batch.early == 2 and not log.must_wait(batch)  # both answered at once
        await log._committed(batch)
        assert batch.status == FAILED and log.lost == 2 and lost == [2] and failures == [1]
        waiting = decide(app)  # failing now: the next request waits and is not lost
        assert waiting.early == 0
        with pytest.raises(LogUnavailable):
            await log.wait(waiting)
        assert log.lost == 2 and lost == [2] and failures == [1, 1]
        rename(app, "decisions_gone", "decisions")

    caplog.set_level(logging.ERROR)
    run(tmp_path, scenario, body, log_ack="buffered")
    early = "2 decisions answered before their commit (--log-ack buffered) are lost"
    assert logged(caplog, early) == [early]
    assert logged(caplog, "decision log write failed (2 records): ")


def test_a_record_appended_before_the_log_starts_waits_for_the_first_batch(
    tmp_path: Path, scenario: tuple[Path, Path]
) -> None:
    """Before `start` there is no loop to send on: the record stays in the open batch and
    goes with the first batch sent once the log runs."""
    app = make_app(tmp_path, *scenario)
    log = app.service.log
    early = decide(app)
    assert log.pending == 1 and not log._scheduled and early.status == OPEN

    async def body(app: DevicegateApp) -> None:
        batch = decide(app)
        assert batch is early
        await log.wait(batch)
        assert batch.status == COMMITTED and log.committed == 2

    run_app(app, body)
    assert app.service.store.count("decisions") == 2


class StuckWriter:
    """A writer process that does not exit once its input is closed, and whose input pipe is
    already broken: what `_stop_process` must still get rid of."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.killed = False
        self.stdout = io.BytesIO()

        class BrokenPipe(io.BytesIO):
            def close(self) -> None:
                raise BrokenPipeError("the writer is gone")

        self.stdin = BrokenPipe()

    def wait(self, timeout: float) -> int:
        self.waits.append(timeout)
        if not self.killed:
            raise subprocess.TimeoutExpired("log_writer", timeout)
        return -9

    def kill(self) -> None:
        self.killed = True


def test_a_writer_that_does_not_exit_is_killed(tmp_path: Path, scenario: tuple[Path, Path]) -> None:
    """Stopping the writer closes its input (a broken pipe is no error) and gives it 30 s to
    finish its batch; one still running then is killed and reaped (5 s)."""
    log = make_app(tmp_path, *scenario).service.log  # not started: no loop, no reader
    stuck = StuckWriter()
    log._proc = stuck  # type: ignore[assignment]
    log._stop_process()
    assert log._proc is None and stuck.killed and stuck.waits == [30, 5]
    assert stuck.stdout.closed
    log._stop_process()  # no writer: nothing to do
    assert stuck.waits == [30, 5]


def test_close_writes_what_is_queued_then_ends_the_writer(
    tmp_path: Path, scenario: tuple[Path, Path]
) -> None:
    app = make_app(tmp_path, *scenario)

    async def main() -> None:
        await app.startup()
        log = app.service.log
        decide(app)
        await turn()
        decide(app)  # one in flight, one open
        writer = log._proc
        await app.shutdown()
        assert log._proc is None and writer is not None and writer.returncode == 0
        assert log.pending == 0 and log.committed == 2

    asyncio.run(main())
    assert app.service.store.count("decisions") == 2


def test_an_unknown_ack_mode_is_refused(tmp_path: Path, scenario: tuple[Path, Path]) -> None:
    app = make_app(tmp_path, *scenario)
    with pytest.raises(ValueError, match="unknown log acknowledgement mode 'sometimes'"):
        DecisionLog(app.service.store, id_prefix="x-", ack="sometimes")


def test_a_writer_holding_a_batch_survives_the_release_removing_its_marker(
    tmp_path: Path,
) -> None:
    """`WriterHold.release` removes the marker as well as the hold file (a killed writer
    leaves one behind); when a live writer holds a batch at that moment — a new writer that
    received the next batch before the release — it commits that batch, it does not die on
    the marker it can no longer remove."""
    import threading

    from devicegate.server import log_writer

    hold = WriterHold(tmp_path)
    hold.engage()
    failed: list[BaseException] = []

    def holding() -> None:
        try:
            log_writer.hold(str(hold.path), 7, 1)
        except BaseException as exc:  # the test reports it
            failed.append(exc)

    writer = threading.Thread(target=holding)
    writer.start()
    assert hold.wait() == (7, 1)
    hold.marker.unlink()  # as `release` does, first here so that the order is certain
    hold.release()
    writer.join(5)
    assert not writer.is_alive() and failed == []


def sent_frames(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, bool, list[int], int]]:
    """Every batch frame the log writes to its writer, as (number, reset, new template ids,
    records); the frames still go to the writer."""
    frames: list[tuple[int, bool, list[int], int]] = []
    write = decision_log.write_frame

    def recording(stream: IO[bytes], message: object) -> None:
        if isinstance(message, tuple):
            number, reset, new, records = message
            frames.append((number, reset, [tid for tid, _ in new], len(records)))
        write(stream, message)

    monkeypatch.setattr(decision_log, "write_frame", recording)
    return frames


def test_batches_are_numbered_in_order_and_templates_start_over_only_past_the_bound(
    tmp_path: Path, scenario: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each batch carries the next number (the writer echoes it and reports it when held),
    a template goes to the writer once, and both sides start over only once the writer holds
    more than `TEMPLATES_MAX`: then the batch's templates go again with the reset flag."""
    monkeypatch.setattr(decision_log, "TEMPLATES_MAX", 1)
    frames = sent_frames(monkeypatch)

    async def body(app: DevicegateApp) -> None:
        log = app.service.log
        tids = []
        for agent in (ANDROID_CHROME, IPHONE_SAFARI, ANDROID_CHROME, ANDROID_CHROME):
            batch = decide(app, agent)
            tids.append(batch.records[-1][3])
            await log.wait(batch)
            assert batch.status == COMMITTED
        android, iphone = tids[0], tids[1]
        assert android != iphone and tids[2] == tids[3] == android
        assert frames == [
            (1, False, [android], 1),
            (2, False, [iphone], 1),  # the writer holds 1 template: not past the bound
            (3, True, [android], 1),  # it holds 2: start over, send the template again
            (4, False, [], 1),
        ]
        assert log._sent == {android} and app.service.store.count("decisions") == 4

    run(tmp_path, scenario, body)


def test_a_batch_that_cannot_be_sent_fails_with_the_reason_and_the_next_goes_to_a_new_writer(
    tmp_path: Path,
    scenario: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A pipe to the writer that breaks while the writer still runs: the batch fails closed
    and the log says why, then the next batch is sent to a new writer."""
    write = decision_log.write_frame

    def broken(stream: IO[bytes], message: object) -> None:
        if isinstance(message, tuple):
            raise BrokenPipeError(32, "Broken pipe")
        write(stream, message)

    async def body(app: DevicegateApp) -> None:
        log = app.service.log
        writer = log._proc
        assert writer is not None and writer.poll() is None
        monkeypatch.setattr(decision_log, "write_frame", broken)
        batch = decide(app)
        with pytest.raises(LogUnavailable):
            await log.wait(batch)
        assert batch.status == FAILED and log._proc is None and writer.returncode == 0
        monkeypatch.setattr(decision_log, "write_frame", write)
        healed = decide(app)
        await log.wait(healed)
        assert healed.status == COMMITTED and log.committed == 1

    caplog.set_level(logging.ERROR)
    run(tmp_path, scenario, body)
    reason = "cannot send to the writer: [Errno 32] Broken pipe"
    assert logged(caplog, "decision-log writer lost: ") == [f"decision-log writer lost: {reason}"]
    assert logged(caplog, "decision log write failed") == [
        f"decision log write failed (1 records): {reason}"
    ]


def test_a_failed_read_from_the_writer_fails_the_batch_in_flight(
    tmp_path: Path,
    scenario: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A read of the writer's answers that fails (EIO, not "nothing yet") is the writer lost:
    the batch in flight fails closed — nothing of the failed read is taken for an answer —
    and the next batch goes to a new writer."""

    async def body(app: DevicegateApp) -> None:
        log = app.service.log
        batch = decide(app)
        await turn()  # sent: in flight, its answer not read yet
        writer = log._proc
        assert writer is not None and writer.stdout is not None and log._in_flight
        fd, read = writer.stdout.fileno(), os.read

        def failing(target: int, size: int) -> bytes:
            if target == fd:
                raise OSError(errno.EIO, "Input/output error")
            return read(target, size)

        with monkeypatch.context() as patch:
            patch.setattr(os, "read", failing)
            log._on_readable()
        assert batch.status == FAILED and not log._in_flight and log._proc is None
        with pytest.raises(LogUnavailable):
            await log.wait(batch)
        healed = decide(app)
        await log.wait(healed)
        assert healed.status == COMMITTED and log._proc is not None and log.committed == 1

    caplog.set_level(logging.ERROR)
    run(tmp_path, scenario, body)
    lost = "decision-log writer lost: the writer process exited (status None)"
    assert logged(caplog, "decision-log writer lost: ") == [lost]


def test_an_answer_that_arrives_in_pieces_is_put_together(
    tmp_path: Path, scenario: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pipe may hand over the writer's answer a few octets at a time: the log keeps what it
    has read until the frame is whole, and acknowledges the batch only then."""

    async def body(app: DevicegateApp) -> None:
        log = app.service.log
        assert log._loop is not None
        batch = decide(app)
        await turn()  # sent: in flight
        writer = log._proc
        assert writer is not None and writer.stdout is not None and log._in_flight
        fd, read = writer.stdout.fileno(), os.read
        log._loop.remove_reader(fd)  # the test reads, in pieces, instead of the loop
        ready, _, _ = await asyncio.to_thread(select.select, [fd], [], [], 20)
        assert ready == [fd]
        pieces = 0

        def piecemeal(target: int, size: int) -> bytes:
            nonlocal pieces
            if target == fd:
                pieces += 1
                return read(target, min(size, 3))
            return read(target, size)

        with monkeypatch.context() as patch:
            patch.setattr(os, "read", piecemeal)
            while batch.status == OPEN and pieces < 1000:
                log._on_readable()
        log._loop.add_reader(fd, log._on_readable)
        assert batch.status == COMMITTED and pieces > 2 and not log._in_flight
        assert log._buffer == b"" and log.committed == 1
        after = decide(app)
        await log.wait(after)
        assert after.status == COMMITTED and log._proc is writer and log.committed == 2

    run(tmp_path, scenario, body)


def test_the_writer_is_given_the_store_password_in_its_first_frame(
    tmp_path: Path,
    scenario: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The store URL goes to the writer whole — password included, or a PostgreSQL writer
    could not log in — in its first frame on the pipe, never on its command line."""
    started: list[tuple[list[str], object]] = []
    popen, write = subprocess.Popen, decision_log.write_frame

    def spawning(args: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        started.append((args, None))
        return popen(args, **kwargs)  # type: ignore[call-overload,no-any-return]

    def recording(stream: IO[bytes], message: object) -> None:
        if isinstance(message, dict):
            started[-1] = (started[-1][0], message)
        write(stream, message)

    async def body(app: DevicegateApp) -> None:
        log = app.service.log
        store = app.service.store
        log._stop_process()
        store.engine.url = store.engine.url.set(
            drivername="nosuchdb", username="devicegate", password="s3 cr@t"
        )
        with monkeypatch.context() as patch:
            patch.setattr(subprocess, "Popen", spawning)
            patch.setattr(decision_log, "write_frame", recording)
            with pytest.raises(LogUnavailable):  # no such database: the writer says so
                await log.wait(decide(app))
        ((args, first),) = started
        assert first == {
            "store": f"nosuchdb://devicegate:s3 cr%40t@/{tmp_path}/store.db",
            "id_prefix": log.id_prefix,
        }
        assert not any("cr%40t" in arg or "cr@t" in arg for arg in args)

    run(tmp_path, scenario, body)


class RefusingWriter:
    """A writer process that answers that it cannot start and then does not exit."""

    def __init__(self, args: list[str], **_: object) -> None:
        self.args, self.stdin, self.stdout = args, io.BytesIO(), io.BytesIO()
        decision_log.write_frame(self.stdout, ("error", "no store"))
        self.stdout.seek(0)
        self.waits: list[float | None] = []
        self.killed = False
        WRITERS.append(self)

    def wait(self, timeout: float | None = None) -> int:
        self.waits.append(timeout)
        assert timeout is not None, "waits for ever for a writer that does not exit"
        if self.killed:
            return -signal.SIGKILL
        raise subprocess.TimeoutExpired(self.args, timeout)

    def kill(self) -> None:
        self.killed = True


WRITERS: list[RefusingWriter] = []


def test_a_writer_that_refuses_and_does_not_exit_is_killed_after_10_s_and_fails_the_batch(
    tmp_path: Path,
    scenario: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Starting a writer blocks the loop, so a writer that refuses to start is given 10 s to
    exit, not for ever; then it is killed (no writer outlives its log) and the batch fails
    closed with the reason the writer gave, like any writer that cannot start."""
    WRITERS.clear()

    async def body(app: DevicegateApp) -> None:
        log = app.service.log
        log._stop_process()
        batch = decide(app)
        with monkeypatch.context() as patch:
            patch.setattr(subprocess, "Popen", RefusingWriter)
            with pytest.raises(LogUnavailable):
                await asyncio.wait_for(log.wait(batch), 20)
        assert batch.status == FAILED and log._proc is None
        assert [(writer.waits, writer.killed) for writer in WRITERS] == [([10, 5], True)]
        assert all(writer.stdin.closed and writer.stdout.closed for writer in WRITERS)

    caplog.set_level(logging.ERROR)
    run(tmp_path, scenario, body)
    assert logged(caplog, "decision-log writer unavailable: ") == [
        "decision-log writer unavailable: the decision-log writer did not start: no store"
    ]


def writer_that_cannot_start(
    tmp_path: Path,
    scenario: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    script: str,
) -> list[str]:
    """Start the log's writer as the shell `script`, which reads the start of its first frame
    (so that frame is sent whole) and then does not answer: the batch must fail closed with
    no writer left. The reasons logged."""
    writer = tmp_path / "writer.sh"
    writer.write_text("#!/bin/sh\nhead -c 4 >/dev/null\n" + script)
    writer.chmod(0o755)

    async def body(app: DevicegateApp) -> None:
        log = app.service.log
        log._stop_process()
        batch = decide(app)
        with monkeypatch.context() as patch:
            patch.setattr(sys, "executable", str(writer))
            with pytest.raises(LogUnavailable):
                await asyncio.wait_for(log.wait(batch), 20)
        assert batch.status == FAILED and log._proc is None

    caplog.set_level(logging.ERROR)
    run(tmp_path, scenario, body)
    return logged(caplog, "decision-log writer unavailable: ")


def test_a_writer_that_exits_without_a_word_fails_the_batch_with_its_status(
    tmp_path: Path,
    scenario: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A writer that ends before it answers (exit status 1) cannot start: the batch fails
    closed, and the reason given is its exit status."""
    reasons = writer_that_cannot_start(tmp_path, scenario, monkeypatch, caplog, "exit 1\n")
    reason = "the decision-log writer did not start: exited with status 1"
    assert reasons == [f"decision-log writer unavailable: {reason}"]


def test_a_writer_that_neither_answers_nor_exits_is_killed(
    tmp_path: Path,
    scenario: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A real writer process that closes its output without a word and then hangs: the
    batch fails closed, and the process is gone, not left running beside the server."""
    monkeypatch.setattr(decision_log, "START_FAILED_EXIT", 0.5)
    pid_file = tmp_path / "writer.pid"
    hang = f"echo $$ > {pid_file}\nexec >&-\nexec sleep 60\n"
    reasons = writer_that_cannot_start(tmp_path, scenario, monkeypatch, caplog, hang)
    reason = "gave no answer and had not exited after 0.5 s: killed"
    assert reasons == [
        f"decision-log writer unavailable: the decision-log writer did not start: {reason}"
    ]
    with pytest.raises(ProcessLookupError):  # killed and reaped
        os.kill(int(pid_file.read_text()), 0)


def test_the_default_ack_mode_is_durable(tmp_path: Path, scenario: tuple[Path, Path]) -> None:
    app = make_app(tmp_path, *scenario)
    assert not DecisionLog(app.service.store, id_prefix="x-").buffered


def test_durable_with_nothing_decided_returns_at_once(
    tmp_path: Path, scenario: tuple[Path, Path]
) -> None:
    """Before any decision the newest batch is the empty open one: nothing to wait for."""

    async def body(app: DevicegateApp) -> None:
        log = app.service.log
        assert log.latest is log._open and not log.must_wait(log.latest)
        await asyncio.wait_for(app.service.durable(), 5)
        assert not log._in_flight and log.committed == 0

    run(tmp_path, scenario, body)


def test_a_log_whose_writer_never_started_closes_cleanly(
    tmp_path: Path, scenario: tuple[Path, Path]
) -> None:
    """A server whose writer cannot start at startup still shuts down without an error."""
    app = make_app(tmp_path, *scenario)
    store = app.service.store
    store.engine.url = store.engine.url.set(drivername="nosuchdb")
    log = DecisionLog(store, id_prefix="x-")

    async def main() -> None:
        with pytest.raises(LogUnavailable):
            log.start(asyncio.get_running_loop())
        await asyncio.wait_for(log.close(), 5)
        assert log._proc is None

    asyncio.run(main())


def test_the_log_counts_into_the_server_metrics(
    tmp_path: Path, scenario: tuple[Path, Path]
) -> None:
    """The hooks the server gives the log feed its metrics: each committed batch's size,
    each failed batch, and each record answered early (`buffered`) whose batch then failed."""

    async def body(app: DevicegateApp) -> None:
        log = app.service.log
        sample = app.service.metrics.registry.get_sample_value
        committed = decide(app)
        await log._committed(committed)
        assert committed.status == COMMITTED
        assert sample("devicegate_log_batch_size_count") == 1
        assert sample("devicegate_log_batch_size_sum") == 1
        rename(app, "decisions", "decisions_gone")
        failed = decide(app)
        decide(app, IPHONE_SAFARI)
        await log._committed(failed)
        assert failed.status == FAILED and failed.early == 2
        assert sample("devicegate_log_write_failures_total") == 1
        assert sample("devicegate_log_lost_records_total") == 2
        assert sample("devicegate_log_batch_size_count") == 1
        rename(app, "decisions_gone", "decisions")

    run(tmp_path, scenario, body, log_ack="buffered")


def test_records_lost_by_two_failed_batches_add_up(
    tmp_path: Path, scenario: tuple[Path, Path]
) -> None:
    """`lost` counts every record answered early whose batch failed, over the server's life:
    a second failed batch adds to the first."""

    async def body(app: DevicegateApp) -> None:
        log = app.service.log
        for early in (2, 1):
            rename(app, "decisions", "decisions_gone")
            failed = decide(app)
            for _ in range(early - 1):
                decide(app, IPHONE_SAFARI)
            await log._committed(failed)
            assert failed.status == FAILED and failed.early == early
            rename(app, "decisions_gone", "decisions")
            healed = decide(app)  # waits (failing), commits: the log is healthy again
            await log.wait(healed)
            assert healed.status == COMMITTED and not log._failing
        assert log.lost == 3
        assert (
            app.service.metrics.registry.get_sample_value("devicegate_log_lost_records_total") == 3
        )

    run(tmp_path, scenario, body, log_ack="buffered")
