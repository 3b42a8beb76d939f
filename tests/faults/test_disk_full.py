"""A full disk under the SQLite store: the test mounts a small tmpfs for the store, fills it
under the mixed load, frees it again.

While the disk is full every answer whose commit needs space fails closed (503, Postfix
DEFER) and nothing is answered unlogged — a commit that fits in space SQLite already holds
(the WAL rewritten from its start after a checkpoint overwrites its own pages) succeeds, and
its answers are normal and logged; `PRAGMA integrity_check` is clean afterwards; once space
is freed service is normal again without a restart."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require
from tests.faults.conftest import Record
from tests.faults.population import CLOSED
from tests.faults.soak import logged_decisions
from tests.faults.underload import outcomes_between, under_load

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SIZE = "96m"  # room enough after the filler goes: the log grows ~2 MB/s under the load
FULL_FOR = 5.0
RECOVERY = 2.0


@contextlib.contextmanager
def small_filesystem(path: Path) -> Iterator[Path]:
    """A tmpfs of `SIZE` mounted at `path` (root only, as the test machine and CI are)."""
    require(os.getuid() == 0, "mounting a small filesystem needs root")
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path) -> Path:
    """Write zeros to a file on the filesystem until it is full."""
    filler = path / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 1 << 12, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    return filler


def test_disk_full_under_the_sqlite_store(tmp_path: Path, record: Record) -> None:
    with small_filesystem(tmp_path / "disk") as disk:
        database = disk / "store.db"
        store = f"sqlite:///{database}"
        with under_load(tmp_path, store) as run:
            time.sleep(2)
            began = time.monotonic()
            run.windows.append((began, began + 3600))
            filler = fill(disk)
            full = time.monotonic()
            time.sleep(FULL_FOR)
            filler.unlink()
            freed = time.monotonic()
            run.windows[0] = (began, freed + RECOVERY)
            time.sleep(4)
        stats = run.running.stats
        assert stats is not None
        with sqlite3.connect(database) as conn:
            integrity = conn.execute("PRAGMA integrity_check").fetchall()
        logged = logged_decisions(store)
    acknowledged = run.warm.acknowledged + stats.acknowledged
    answers = stats.timeline
    during = outcomes_between(answers, full + 0.5, freed)
    after = outcomes_between(answers, freed + RECOVERY, float("inf"))
    assert stats.errors == 0 and stats.unexpected == 0, stats.examples
    assert integrity == [("ok",)], integrity
    assert during[CLOSED] > 0, "the full disk never made the log fail"
    assert after[CLOSED] == 0 and sum(after.values()) > 0, after
    # every answer given is a committed decision, during the full disk too; no commit that
    # failed was answered (nothing kills the writer here, so nothing is logged unanswered)
    assert logged == acknowledged, f"acknowledged {acknowledged}, logged {logged}"
    record(
        "disk_full",
        full_s=round(freed - full, 1),
        failed_closed_during=during[CLOSED],
        committed_during=sum(n for o, n in during.items() if o != CLOSED),
        acknowledged=acknowledged,
        logged=logged,
        lost=max(0, acknowledged - logged),
        integrity=integrity[0][0],
    )
