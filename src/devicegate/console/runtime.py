"""What the console process keeps running beside its pages: the policy it follows, the store,
and the rollup updater.

The policy, directory and inventory are `serve`'s inputs (`sources.Inputs`): files are
watched by modification time and, once they have stopped changing, loaded and compiled off to
the side and swapped in whole; a directory or inventory given as a source (LDAP, an MDM) is
kept current by its refresher from the store's accepted versions. An invalid policy is
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
from devicegate.sources.inputs import Inputs
from devicegate.store import Store
from devicegate.store.rollups import RollupUpdater

log = logging.getLogger("devicegate.console")


def open_inputs(config: ConsoleConfig, store: Store) -> Inputs:
    """The console's inputs, as `serve` reads them: the same files or the same sources."""
    return Inputs(config.policy, config.directory, config.devices, store=store)


@dataclass(frozen=True, slots=True)
class Refusal:
    at: datetime
    error: str


class Runtime:
    def __init__(
        self,
        config: ConsoleConfig,
        snapshot: Snapshot,
        store: Store,
        inputs: Inputs | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self._snapshot = snapshot
        self.inputs = inputs if inputs is not None else open_inputs(config, store)
        self.inputs.on_change = self._adopt
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
            snapshot = self.inputs.reload()
        except (DevicegateError, OSError, ValueError) as exc:
            text = exc.one_line() if isinstance(exc, DevicegateError) else str(exc)
            self.refused = Refusal(datetime.now(UTC), text)
            log.error("policy reload refused: %s; still showing %s", text, self._snapshot.version)
            return False
        self._adopt(snapshot)
        return True

    def _adopt(self, snapshot: Snapshot) -> None:
        """Swap in a snapshot: a reload's, or a source refresher's new directory version."""
        self._snapshot = snapshot
        self.refused = None
        self.loaded_at = datetime.now(UTC)
        log.info("policy %s loaded", snapshot.version)

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
        self.inputs.start()

    def stop(self) -> None:
        self.inputs.stop()
        self._stop.set()
        for thread in self._threads:
            thread.join(5)


__all__ = ["Refusal", "Runtime", "open_inputs"]
