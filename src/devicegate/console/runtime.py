"""What the console process keeps running beside its pages: the policy it follows, the store,
and the rollup updater.

The policy files (and the directory and inventory) are watched by modification time; a
change is loaded and compiled off to the side and swapped in whole. An invalid policy is
refused — the old one stays and the refusal is shown on every page — as `serve` does on
reload. The rollup updater runs in a thread, a second at most per round, so the pages read
rollups that trail the log by a few seconds and never scan it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from devicegate.console.config import ConsoleConfig
from devicegate.errors import DevicegateError
from devicegate.policy import Snapshot
from devicegate.store import Store
from devicegate.store.rollups import RollupUpdater

log = logging.getLogger("devicegate.console")


def load(config: ConsoleConfig) -> Snapshot:
    from devicegate.cli.common import load_snapshot

    return load_snapshot(list(config.policy), config.directory, config.devices, quiet=True)


@dataclass(frozen=True, slots=True)
class Refusal:
    at: datetime
    error: str


class Runtime:
    def __init__(self, config: ConsoleConfig, snapshot: Snapshot, store: Store) -> None:
        self.config = config
        self.store = store
        self._snapshot = snapshot
        self.refused: Refusal | None = None
        self.loaded_at = datetime.now(UTC)
        self._mtimes = self._stat()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.updater = RollupUpdater(store, self.unit_of, str(snapshot.timezone))
        self.rollup_error: str | None = None

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    def now(self) -> datetime:
        return self.config.at or datetime.now(UTC)

    def unit_of(self, user: str) -> str | None:
        found = self._snapshot.directory.get(user)
        return found.unit if found is not None else None

    # ---- following the files --------------------------------------------------------------
    def _files(self) -> list[Path]:
        c = self.config
        return [*c.policy, *(p for p in (c.directory, c.devices) if p is not None)]

    def _stat(self) -> tuple[float, ...]:
        out = []
        for path in self._files():
            try:
                out.append(path.stat().st_mtime)
            except OSError:
                out.append(-1.0)
        return tuple(out)

    def check_files(self) -> bool:
        """Reload when a file changed; True when a new snapshot is in force."""
        mtimes = self._stat()
        if mtimes == self._mtimes:
            return False
        self._mtimes = mtimes
        try:
            snapshot = load(self.config)
        except (DevicegateError, OSError, ValueError) as exc:
            text = exc.one_line() if isinstance(exc, DevicegateError) else str(exc)
            self.refused = Refusal(datetime.now(UTC), text)
            log.error("policy reload refused: %s; still showing %s", text, self._snapshot.version)
            return False
        self._snapshot = snapshot
        self.refused = None
        self.loaded_at = datetime.now(UTC)
        log.info("policy %s loaded", snapshot.version)
        return True

    # ---- background work -----------------------------------------------------------------
    def roll_up(self) -> None:
        try:
            self.updater.catch_up(seconds=self.config.rollup_budget)
            self.rollup_error = None
        except sa.exc.SQLAlchemyError as exc:
            self.rollup_error = str(exc.__class__.__name__)
            log.warning("rollup update failed: %s", exc)

    def _loop(self, interval: float, work: object) -> None:
        assert callable(work)
        while not self._stop.wait(interval):
            try:
                work()
            except Exception:  # a background failure must not end the thread
                log.exception("console background task failed")

    def start(self) -> None:
        for interval, work in (
            (self.config.rollup_interval, self.roll_up),
            (self.config.reload_interval, self.check_files),
        ):
            thread = threading.Thread(target=self._loop, args=(interval, work), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)


__all__ = ["Refusal", "Runtime", "load"]
