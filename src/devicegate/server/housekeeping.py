"""What `serve` does beside answering: say that it is alive, and keep the decision log to its
retention.

Both run off the event loop (`asyncio.to_thread`) and never on the hot path; a failure is
logged and tried again at the next interval — an unreachable store must not stop a server
whose answers wait on the decision log anyway.

* **Heartbeat** every `heartbeats.INTERVAL`, and within a second of a new policy version (a
  reload, a directory or inventory update): one upsert of this instance's row — host, pid,
  software, policy version — so the console lists every `serve` on the store and flags a
  stale one or one on another policy.
* **Retention** (`serve --log-retention DAYS`): once an hour, decisions older than that many
  days are deleted in batches of primary keys (`store.retention.prune_decisions`), after the
  rollups have caught up to the cut-off, so what the console shows of them stays. Several
  instances may prune the same store: the rollup updater takes one lock at a time, and
  deleting an id twice deletes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from datetime import UTC, datetime, timedelta

from devicegate import installed_version
from devicegate.server.service import ServerService
from devicegate.store.heartbeats import INTERVAL, record_heartbeat
from devicegate.store.retention import prune_decisions
from devicegate.store.rollups import RollupUpdater

log = logging.getLogger("devicegate.server")

#: how often retention runs (its first run is one interval after the start)
PRUNE_EVERY = timedelta(hours=1)
#: seconds between pruning batches: the decision log's writer gets the store in between
PRUNE_PAUSE = 0.05


class Housekeeping:
    """The heartbeat and retention tasks of one `serve` process."""

    def __init__(
        self,
        service: ServerService,
        *,
        instance: str,
        retention: timedelta | None = None,
        beat_every: timedelta = INTERVAL,
        prune_every: timedelta = PRUNE_EVERY,
    ) -> None:
        self.service = service
        self.instance = instance
        self.retention = retention
        self.beat_every = beat_every
        self.prune_every = prune_every
        self.started_at = datetime.now(UTC)
        self.pruned = 0
        self._tasks: list[asyncio.Task[None]] = []

    @staticmethod
    def instance_of(host: str, port: int) -> str:
        """A name that survives a restart: the machine and the port (one row per server)."""
        return f"{socket.gethostname()}:{host}:{port}"

    def _beat(self, version: str) -> None:
        record_heartbeat(
            self.service.store,
            self.instance,
            policy_version=version,
            started_at=self.started_at,
            software=installed_version(),
        )

    def _prune(self) -> int:
        assert self.retention is not None
        snapshot = self.service.snapshot

        def unit_of(user: str) -> str | None:
            found = snapshot.directory.get(user)
            return found.unit if found is not None else None

        updater = RollupUpdater(self.service.store, unit_of, str(snapshot.timezone))
        return prune_decisions(
            self.service.store, self.retention, updater=updater, pause=PRUNE_PAUSE
        )

    async def _beats(self) -> None:
        loop = asyncio.get_running_loop()
        beaten, due = "", 0.0
        while True:
            version = self.service.snapshot.version
            if version != beaten or loop.time() >= due:
                try:
                    await asyncio.to_thread(self._beat, version)
                    beaten = version
                except Exception as exc:  # the store may be down: try again next time
                    log.warning("heartbeat failed: %s: %s", type(exc).__name__, exc)
                due = loop.time() + self.beat_every.total_seconds()
            await asyncio.sleep(min(1.0, self.beat_every.total_seconds()))

    async def _prunes(self) -> None:
        while True:
            await asyncio.sleep(self.prune_every.total_seconds())
            try:
                deleted = await asyncio.to_thread(self._prune)
            except Exception as exc:
                log.warning("decision-log retention failed: %s: %s", type(exc).__name__, exc)
                continue
            self.pruned += deleted
            if deleted:
                log.info("retention: deleted %d decisions older than %s", deleted, self.retention)

    def start(self) -> None:
        self._tasks.append(asyncio.ensure_future(self._beats()))
        if self.retention is not None:
            self._tasks.append(asyncio.ensure_future(self._prunes()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()


__all__ = ["PRUNE_EVERY", "Housekeeping"]
